"""The papers' published CIFAR-10 results, to set short PruneLab runs against (facts only).

Each entry is what the paper reports: top-1 test accuracy (100 - the reported test error), the
unpruned baseline's, the FLOPs reduction (the papers count multiply-adds, PruneLab's MACs), and the
training budget behind it. Sources: Liu et al., "Learning Efficient Convolutional Networks through
Network Slimming", ICCV 2017 (reference settings: 160 epochs of sparsity training, then fine-tuning
with the same 160-epoch schedule); Tang et al., "Manifold Regularized Dynamic Network Pruning",
CVPR 2021 (reference schedule: 400 epochs from a pretrained model). The figures are those gathered
in the project's method notes; nothing here is measured by PruneLab.

`for_datasets(datasets)` gives the entries only when every dataset shown is CIFAR-10: `cifar10`, or a
`folder:PATH` dataset whose classes are CIFAR-10's ten (`is_cifar10`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.config import NAME as SLIMMING

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

SLIMMING_PAPER = "Liu et al., Learning Efficient Convolutional Networks through Network Slimming, ICCV 2017"
MANIDP_PAPER = "Tang et al., Manifold Regularized Dynamic Network Pruning, CVPR 2021"
SLIMMING_BUDGET = "160 + 160 epochs"
SLIMMING_BUDGET_TEXT = "160 epochs of sparsity training, then 160 epochs of fine-tuning"
MANIDP_BUDGET = "400 epochs from a pretrained model"
MANIDP_BUDGET_TEXT = "400 epochs of training with the gates, starting from a pretrained model"


@dataclass(frozen=True)
class PublishedResult:
    """One result as the paper states it (CIFAR-10, top-1 in percent, FLOPs reduction as a fraction)."""

    method: str  # the method's name in PruneLab (prunelab.methods.<name>.config.NAME)
    model: str
    top1: float  # percent
    baseline_top1: float  # percent, the paper's unpruned model
    flops_reduction: float  # fraction of the unpruned model's FLOPs removed
    setting: str  # what was pruned, in the paper's words
    budget: str  # short, for a chart label
    budget_text: str
    source: str
    dataset: str = "cifar10"

    @property
    def label(self) -> str:
        """'ManiDP ResNet-56 · 400 epochs from a pretrained model'."""
        name = "ManiDP" if self.method == MANIDP else "Slimming"
        return f"{name} {self.model} · {self.budget}"

    @property
    def description(self) -> str:
        """One sentence with every figure and the source."""
        name = self.label.split(" · ")[0]
        return (f"{name} on CIFAR-10: {self.top1:.2f}% top-1 (unpruned {self.baseline_top1:.2f}%) with "
                f"{self.flops_reduction:.1%} fewer FLOPs, {self.setting}; {self.budget_text}. "
                f"Source: {self.source}.")


def _error_to_top1(error: float) -> float:
    return round(100.0 - error, 2)


PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult(SLIMMING, "VGG-19", _error_to_top1(6.20), _error_to_top1(6.34), 0.510,
                    "70% of all BN channels pruned (parameters -88.5%)", SLIMMING_BUDGET, SLIMMING_BUDGET_TEXT,
                    SLIMMING_PAPER),
    PublishedResult(SLIMMING, "ResNet-164", _error_to_top1(5.08), _error_to_top1(5.42), 0.237,
                    "40% of all BN channels pruned", SLIMMING_BUDGET, SLIMMING_BUDGET_TEXT, SLIMMING_PAPER),
    PublishedResult(SLIMMING, "ResNet-164", _error_to_top1(5.27), _error_to_top1(5.42), 0.449,
                    "60% of all BN channels pruned", SLIMMING_BUDGET, SLIMMING_BUDGET_TEXT, SLIMMING_PAPER),
    PublishedResult(MANIDP, "ResNet-20", _error_to_top1(7.95), _error_to_top1(7.78), 0.542,
                    "per-image sub-networks", MANIDP_BUDGET, MANIDP_BUDGET_TEXT, MANIDP_PAPER),
    PublishedResult(MANIDP, "ResNet-32", _error_to_top1(7.85), _error_to_top1(7.34), 0.632,
                    "per-image sub-networks", MANIDP_BUDGET, MANIDP_BUDGET_TEXT, MANIDP_PAPER),
    PublishedResult(MANIDP, "ResNet-56", _error_to_top1(6.36), _error_to_top1(6.30), 0.624,
                    "per-image sub-networks", MANIDP_BUDGET, MANIDP_BUDGET_TEXT, MANIDP_PAPER),
)


def is_cifar10(dataset: str, class_names: Iterable[str] | None = None) -> bool:
    """`cifar10`, or `folder:PATH` whose class names (`class_names`, e.g. from the test images shipped with a
    demo whose folder is not on this machine; else PATH's test, then train, class folders) are CIFAR-10's."""
    if dataset == "cifar10":
        return True
    if not dataset.startswith("folder:"):
        return False
    if class_names is not None and {str(name).lower() for name in class_names} == set(CIFAR10_CLASSES):
        return True
    return _folder_is_cifar10(str(Path(dataset[len("folder:"):]).expanduser().absolute()))


@functools.lru_cache(maxsize=64)
def _folder_is_cifar10(root: str) -> bool:
    for split in ("test", "train"):
        try:
            names = {entry.name.lower() for entry in os.scandir(Path(root) / split) if entry.is_dir()}
        except OSError:
            continue
        return names == set(CIFAR10_CLASSES)
    return False


def for_datasets(datasets: Iterable[str], class_names: Mapping[str, Iterable[str]] | None = None,
                 ) -> list[PublishedResult]:
    """The published results when every dataset in `datasets` (at least one) is CIFAR-10, else [].
    `class_names` maps a dataset to its class names where known (see `is_cifar10`)."""
    names = class_names or {}
    shown = {str(d) for d in datasets if d is not None and str(d) != "nan"}
    if not shown or not all(is_cifar10(d, names.get(d)) for d in shown):
        return []
    return list(PUBLISHED)
