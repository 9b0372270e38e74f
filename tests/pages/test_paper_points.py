"""The papers' published CIFAR-10 results on the Ablations chart: drawn for a CIFAR-10 run, never for shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from prunelab.engine import run_training
from prunelab.references import CIFAR10_CLASSES, PUBLISHED
from prunelab.store import RunStore
from tests.pages.fixture_runs import fixture_config

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "ablations.py")
TIMEOUT = 60


def cifar_like_folder(root: Path) -> Path:
    """PNG release layout with CIFAR-10's class names: 2 train and 1 test image per class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 1)):
        for name in CIFAR10_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def cifar_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar-runs")
    data = cifar_like_folder(tmp_path_factory.mktemp("cifar-like"))
    config = fixture_config("cifar-baseline", 1, {"name": "baseline"}, dataset=f"folder:{data}")
    config = config.model_copy(update={"train": config.train.model_copy(update={"batch_size": 10})})
    run_training(config, RunStore(root).create(config, "cifar-baseline"))
    return root


def scatter(at: AppTest) -> dict:
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return next(c for c in charts if c["layout"]["title"]["text"].startswith("Accuracy against MACs"))


def render(runs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_published_points_on_a_cifar10_chart(cifar_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(cifar_runs, monkeypatch)
    assert at.radio(key="abl_x").value == "MACs reduction"  # CIFAR-10 runs open on the axis the papers use
    traces = [t for t in scatter(at)["data"] if t["name"].startswith("published")]
    assert len(traces) == 2
    shown = {(round(x, 4), round(y, 4), text) for t in traces for x, y, text in zip(t["x"], t["y"], t["text"],
                                                                                   strict=True)}
    assert shown == {(round(p.flops_reduction, 4), round(p.top1 / 100, 4), p.label) for p in PUBLISHED}
    labels = " ".join(text for _, _, text in shown)
    assert "ManiDP ResNet-56 · 400 epochs from a pretrained model" in labels
    assert "Slimming VGG-19 · 160 + 160 epochs" in labels
    assert any("Stars: the papers' own CIFAR-10 results" in c.value for c in at.caption)
    at.radio(key="abl_x").set_value("MACs per image").run()  # papers state reductions, not MACs: no stars
    assert not [t for t in scatter(at)["data"] if t["name"].startswith("published")]


def test_no_published_points_for_shapes(runs_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(runs_env, monkeypatch)
    assert at.radio(key="abl_x").value == "MACs per image"
    for axis in ("MACs per image", "MACs reduction"):
        at.radio(key="abl_x").set_value(axis).run()
        assert not at.exception
        assert not [t for t in scatter(at)["data"] if t["name"].startswith("published")]
