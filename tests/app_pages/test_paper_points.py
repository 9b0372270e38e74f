"""The papers' published CIFAR-10 results on the Ablations and home charts: drawn for CIFAR-10 runs (also
a demo whose PNG folder is not on this machine), never for shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from prunelab.analysis.references import CIFAR10_CLASSES, PUBLISHED
from prunelab.config import RunConfig
from prunelab.runs.store import RunStore
from prunelab.training.engine import run_training
from tests.app_pages.fixture_runs import fixture_config
from tests.app_pages.page_helpers import plotly_figures
from tests.helpers import write_folder_dataset

ROOT = Path(__file__).resolve().parents[2]
PAGE, APP = str(ROOT / "app_pages" / "ablations.py"), str(ROOT / "app.py")
TIMEOUT = 60


def cifar_run(root: Path, data: Path) -> RunConfig:
    """A 1-epoch baseline on a tiny folder dataset in the PNG release's layout with CIFAR-10's classes."""
    write_folder_dataset(data, classes=CIFAR10_CLASSES, per_class=2)
    config = fixture_config("cifar-baseline", 1, {"name": "baseline"}, dataset=f"folder:{data}")
    config = config.model_copy(update={"train": config.train.model_copy(update={"batch_size": 10})})
    run_training(config, RunStore(root).create(config, "cifar-baseline"))
    return config


@pytest.fixture(scope="module")
def cifar_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar-runs")
    cifar_run(root, tmp_path_factory.mktemp("cifar-like"))
    return root


def scatter(at: AppTest) -> dict:
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return next(c for c in charts if c["layout"]["title"]["text"].startswith("Accuracy against MACs"))


def published_traces(chart: dict) -> list[dict]:
    return [t for t in chart["data"] if t["name"].startswith("published")]


def render(runs: Path, monkeypatch: pytest.MonkeyPatch, page: str = PAGE) -> AppTest:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(page, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_published_points_on_a_cifar10_chart(cifar_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(cifar_runs, monkeypatch)
    assert at.radio(key="abl_x").value == "MACs reduction"  # CIFAR-10 runs open on the axis the papers use
    traces = published_traces(scatter(at))
    assert len(traces) == 2
    shown = {(round(x, 4), round(y, 4), text) for t in traces for x, y, text in zip(t["x"], t["y"], t["text"],
                                                                                   strict=True)}
    assert shown == {(round(p.flops_reduction, 4), round(p.top1 / 100, 4), p.model) for p in PUBLISHED}
    assert {t["name"] for t in traces} == {"published: ManiDP (paper, 400 epochs from a pretrained model)",
                                          "published: Network Slimming (paper, 160 + 160 epochs)"}
    hovers = " ".join(row[0] for t in traces for row in t["customdata"])
    assert all(p.description in hovers for p in PUBLISHED)
    assert any("Stars: the papers' own CIFAR-10 results" in c.value for c in at.caption)
    at.radio(key="abl_x").set_value("MACs per image").run()  # papers state reductions, not MACs: no stars
    assert not published_traces(scatter(at))


def test_published_points_on_the_home_chart(cifar_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(cifar_runs, monkeypatch, APP)  # no demo: the user's CIFAR-10 run is charted
    chart = plotly_figures(at)[0]
    assert chart["layout"]["title"]["text"].startswith("Accuracy against MACs reduction")
    assert sum(len(t["x"]) for t in published_traces(chart)) == len(PUBLISHED)


def test_a_demo_without_its_folder_is_known_by_its_shipped_test_images(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from prunelab.data import load_dataset
    from prunelab.data.test_pack import write_test_pack

    runs, data = tmp_path / "runs", tmp_path / "cifar-png"
    config = cifar_run(runs, data)
    write_test_pack(runs, config.data, load_dataset(config.data))
    shutil.rmtree(data)
    at = render(runs, monkeypatch)
    assert at.radio(key="abl_x").value == "MACs reduction"
    assert sum(len(t["x"]) for t in published_traces(scatter(at))) == len(PUBLISHED)


def test_no_published_points_for_shapes(runs_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(runs_env, monkeypatch)
    assert at.radio(key="abl_x").value == "MACs per image"
    for axis in ("MACs per image", "MACs reduction"):
        at.radio(key="abl_x").set_value(axis).run()
        assert not at.exception
        assert not published_traces(scatter(at))
    home = render(runs_env, monkeypatch, APP)
    assert not published_traces(plotly_figures(home)[0])
