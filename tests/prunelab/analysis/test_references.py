"""The papers' published CIFAR-10 results: the figures as the papers state them, shown only for CIFAR-10."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunelab.analysis.references import CIFAR10_CLASSES, PUBLISHED, for_datasets, is_cifar10


def find(method: str, model: str) -> list:
    return [p for p in PUBLISHED if p.method == method and p.model == model]


def test_the_issues_headline_figures() -> None:
    (resnet56,) = find("manidp", "ResNet-56")
    assert (resnet56.top1, resnet56.flops_reduction) == (pytest.approx(93.64), pytest.approx(0.624))
    (resnet20,) = find("manidp", "ResNet-20")
    assert (resnet20.top1, resnet20.flops_reduction) == (pytest.approx(92.05), pytest.approx(0.542))
    (vgg,) = find("slimming", "VGG-19")
    assert vgg.top1 == pytest.approx(93.80) and "70% of all BN channels pruned" in vgg.setting


def test_every_entry_has_a_budget_a_source_and_sane_figures() -> None:
    for point in PUBLISHED:
        assert point.dataset == "cifar10" and point.budget and point.source
        assert 90.0 < point.top1 < 100.0 and 90.0 < point.baseline_top1 < 100.0
        assert 0.0 < point.flops_reduction < 1.0
        assert point.budget in point.label and f"{point.top1:.2f}%" in point.description
    assert {p.budget for p in PUBLISHED if p.method == "manidp"} == {"400 epochs from a pretrained model"}
    assert {p.budget for p in PUBLISHED if p.method == "slimming"} == {"160 + 160 epochs"}


def make_folder(root: Path, classes: tuple[str, ...] | list[str]) -> Path:
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
    return root


def test_which_datasets_are_cifar10(tmp_path: Path) -> None:
    cifar = make_folder(tmp_path / "cifar", [c.capitalize() for c in CIFAR10_CLASSES])
    other = make_folder(tmp_path / "other", [f"c{i}" for i in range(10)])
    assert is_cifar10("cifar10") and is_cifar10(f"folder:{cifar}")
    assert not is_cifar10("shapes") and not is_cifar10("cifar100") and not is_cifar10(f"folder:{other}")
    assert not is_cifar10(f"folder:{tmp_path / 'missing'}")
    assert for_datasets(["cifar10", f"folder:{cifar}"]) == list(PUBLISHED)
    assert for_datasets(["cifar10", "shapes"]) == [] and for_datasets([]) == []
    # a demo trained on a folder that is not on this machine: its shipped test images name the classes
    absent = f"folder:{tmp_path / 'elsewhere'}"
    assert not is_cifar10(absent) and is_cifar10(absent, CIFAR10_CLASSES)
    assert not is_cifar10(absent, ["cat", "dog"]) and not is_cifar10("shapes", CIFAR10_CLASSES)
    assert for_datasets([absent], {absent: list(CIFAR10_CLASSES)}) == list(PUBLISHED)
