"""The Per-image MACs page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr
from streamlit.testing.v1 import AppTest

from prunelab.results import class_names
from tests.pages.page_helpers import fixture_run, metric

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "per_image.py")
TIMEOUT = 60
RUN = "fx-manidp-full"


def render(run: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    if run is not None:
        at.selectbox(key="pi_run").set_value(str(run)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def manidp_run(runs_env: Path) -> Path:
    return fixture_run(runs_env, RUN, "per_image.parquet")


def test_renders_metrics_charts_and_gallery(manidp_run: Path) -> None:
    at = render(manidp_run)
    table = pd.read_parquet(manidp_run / "per_image.parquet")
    rho = spearmanr(table["macs"], table["loss"]).statistic
    assert metric(at, "Spearman ρ (MACs, loss)") == f"{rho:.3f}"
    assert metric(at, "Mean MACs (multiply-accumulates) per image") == f"{table['macs'].mean() / 1e6:.3f} M"
    assert len(at.get("plotly_chart")) == 3  # histogram, MACs vs complexity, per-layer density
    images = at.get("image")
    assert len(images) == 3  # the selected image, the cheapest row, the most expensive row
    cheapest = table.sort_values(["macs", "index"]).head(8)
    assert [c.split()[0] for c in images[1].captions] == [f"#{i}" for i in cheapest["index"]]


def test_select_image_shows_its_details(manidp_run: Path) -> None:
    at = render(manidp_run)
    table = pd.read_parquet(manidp_run / "per_image.parquet")
    costly = table.sort_values(["macs", "index"]).iloc[-1]
    at.selectbox(key="pi_image").set_value(int(costly["index"])).run()
    assert not at.exception
    names = class_names(manidp_run)
    detail = next(m.value for m in at.markdown if m.value.startswith("label **"))
    assert f"label **{names[int(costly['label'])]}**" in detail
    assert f"prediction **{names[int(costly['pred'])]}**" in detail
    assert f"loss {costly['loss']:.3f}" in detail
    assert at.get("image")[0].captions[0].startswith(f"#{int(costly['index'])} ")


def test_class_filter_and_gallery_size(manidp_run: Path) -> None:
    at = render(manidp_run)
    table = pd.read_parquet(manidp_run / "per_image.parquet")
    label = int(table["label"].iloc[0])
    at.selectbox(key="pi_class").set_value(label).run()
    at.slider(key="pi_count").set_value(4).run()
    assert not at.exception
    name = class_names(manidp_run)[label]
    gallery = at.get("image")[1:]
    expected = min(4, int((table["label"] == label).sum()))
    assert all(len(row.captions) == expected for row in gallery)
    assert all(caption.split()[1].startswith(f"{name}→") for row in gallery for caption in row.captions)


def test_complexity_axis_switch(manidp_run: Path) -> None:
    at = render(manidp_run)
    options = at.radio(key="pi_axis").options
    at.radio(key="pi_axis").set_value(options[-1]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 3


def test_run_without_per_image_table(manidp_run: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(manidp_run, runs / "broken", ignore=shutil.ignore_patterns("*.pt", "per_image.parquet"))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render()
    assert any("`per_image.parquet` is missing" in e.value for e in at.error)  # a finished run lacks it
    assert not at.get("plotly_chart")


def test_empty_runs_dir(empty_runs_env: Path) -> None:
    at = render()
    assert at.info and "manidp" in at.info[0].value.lower()
    assert not at.get("plotly_chart")
