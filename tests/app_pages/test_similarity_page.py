"""The Similarity page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from prunelab.analysis.results import class_names
from prunelab.methods.manidp import lesson_runs
from tests.app_pages.page_helpers import OTHER_DATASET, fixture_run, runs_on_two_datasets
from tests.app_pages.page_helpers import plotly_figures as figures
from tests.app_pages.page_helpers import trace_values as values
from tests.helpers import probe_arrays

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "similarity.py")
# A fresh installation's first UMAP imports and compiles umap-learn's numba kernels (~60 s on 2 busy
# cores, once: they are cached on disk afterwards); later renders take well under a second.
TIMEOUT = 240
RUN, PLAIN = "fx-manidp-full", "fx-manidp-plain"


def render(run: Path | None = None, full_map: bool = True) -> AppTest:
    """The page on `run`; with `full_map`, its map of every test image computed first (a button, once: the map
    is stored next to the run)."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    if run is not None:
        at.selectbox(key="sim_run").set_value(str(run)).run()
    if full_map and any(button.key == "sim_umap_compute" for button in at.button):
        at.button(key="sim_umap_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reference_gap(probe: dict, layer: int) -> float:
    t, r = probe[f"T_{layer}"].astype(np.float64), probe[f"R_{layer}"].astype(np.float64)
    total = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            total += (t[i, j] - r[i, j]) ** 2
    return total ** 0.5


@pytest.fixture
def manidp_run(runs_env: Path) -> Path:
    return fixture_run(runs_env, RUN, "probe.npz")


def test_renders_heatmaps_gaps_and_umaps(manidp_run: Path) -> None:
    at = render(manidp_run)
    probe = probe_arrays(manidp_run)
    charts = figures(at)
    assert len(charts) == 4  # T/R/T-R heatmaps, gap bars, UMAP of gates, UMAP of features
    t, r, diff = (values(trace["z"]) for trace in charts[0]["data"])
    order = np.argsort(probe["labels"], kind="stable")
    layer = lesson_runs.heatmap_layer([probe[f"R_{i}"] for i in range(len(probe["layer_names"]))])
    assert at.selectbox(key="sim_layer").value == str(probe["layer_names"][layer])
    assert np.allclose(t, probe[f"T_{layer}"][np.ix_(order, order)]) and np.allclose(diff, t - r)
    assert at.metric[0].value == f"{reference_gap(probe, layer):.3f}"
    table = pd.read_parquet(manidp_run / "per_image.parquet")
    for umap in charts[2:]:  # every test image is a point, not only the probe images
        points = np.concatenate([values(trace["customdata"])[:, 0] for trace in umap["data"]])
        assert sorted(points.astype(int)) == table["index"].tolist()
        assert all(word in umap["data"][0]["hovertemplate"] for word in ("class", "prediction", "loss", "MACs"))
    assert any(f"Every one of the run's {len(table)} test images is a point" in c.value for c in at.caption)


def test_without_the_model_the_probe_images_are_shown(manidp_run: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(manidp_run, runs / "no-model", ignore=shutil.ignore_patterns("*.pt"))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render()
    probe = np.load(manidp_run / "probe.npz")
    for umap in figures(at)[2:]:
        points = np.concatenate([values(trace["customdata"])[:, 0] for trace in umap["data"]])
        assert sorted(points.astype(int)) == sorted(probe["indices"].tolist())
    assert any("probe images (probe.npz) are shown: this run has no model.pt" in c.value for c in at.caption)


def test_clicking_a_point_shows_its_image(manidp_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plotly selections cannot be made in AppTest, so st.plotly_chart answers as if point #k was clicked."""
    import streamlit

    table = pd.read_parquet(manidp_run / "per_image.parquet")
    clicked = int(table.sort_values("macs")["index"].iloc[-1])
    real = streamlit.plotly_chart

    def plotly_chart(figure: object, *args: object, **kwargs: object) -> object:
        result = real(figure, *args, **kwargs)
        if str(kwargs.get("key", "")) == "sim_umap_gates":
            return SimpleNamespace(selection=SimpleNamespace(points=[{"customdata": [clicked]}]))
        return result

    monkeypatch.setattr(streamlit, "plotly_chart", plotly_chart)
    at = render(manidp_run)
    row = table.set_index("index").loc[clicked]
    names = class_names(manidp_run)
    (image,) = at.get("image")
    assert image.captions == [f"#{clicked} {names[int(row['label'])]}→\u200b{names[int(row['pred'])]} · "
                              f"loss {row['loss']:.2f} · {row['macs'] / 1e6:.3f}\u00a0M"]


def test_layer_select_and_umap_options(manidp_run: Path) -> None:
    at = render(manidp_run)
    probe = probe_arrays(manidp_run)
    names = [str(n) for n in probe["layer_names"]]
    at.selectbox(key="sim_layer").set_value(names[-1]).run()
    assert at.metric[0].value == f"{reference_gap(probe, len(names) - 1):.3f}"
    at.selectbox(key="sim_umap_layer").set_value(names[2]).run()
    at.radio(key="sim_colour").set_value(at.radio(key="sim_colour").options[1]).run()  # colour by MACs
    assert not at.exception and len(at.get("plotly_chart")) == 4


def test_gap_bars_compare_runs(manidp_run: Path) -> None:
    plain = manidp_run.parent / PLAIN
    if not (plain / "probe.npz").is_file():
        pytest.skip("the plain ManiDP fixture run is not available")
    at = render(manidp_run)
    at.multiselect(key="sim_compare_shapes").set_value([str(manidp_run), str(plain)]).run()
    bars = figures(at)[1]["data"]
    assert len(bars) == 2 and any("neither" in bar["name"] for bar in bars)
    for bar, path in zip(bars, (manidp_run, plain), strict=True):
        probe = probe_arrays(path)
        expected = [reference_gap(probe, i) for i in range(len(probe["layer_names"]))]
        assert values(bar["y"]) == pytest.approx(expected, rel=1e-5)
    at.toggle(key="sim_scaled").set_value(True).run()
    scaled = figures(at)[1]["data"][0]
    size = len(np.load(manidp_run / "probe.npz")["indices"])
    assert values(scaled["y"]) == pytest.approx(values(bars[0]["y"]) / size, rel=1e-5)


def test_empty_runs_dir(empty_runs_env: Path) -> None:
    at = render()
    assert at.info and "manidp" in at.info[0].value.lower()
    assert not at.get("plotly_chart")


def test_the_runs_compared_are_on_the_chosen_runs_dataset(fixture_runs_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With ManiDP runs on two datasets, the ‖T − R‖ comparison offers only runs on the chosen run's one."""
    runs = runs_on_two_datasets(fixture_runs_dir, (RUN, PLAIN), tmp_path / "runs", monkeypatch)
    for chosen, expected in ((runs / RUN, {RUN, PLAIN}), (runs / f"{PLAIN}-other", {f"{RUN}-other", f"{PLAIN}-other"})):
        at = render(chosen)
        dataset = "shapes" if chosen.name in (RUN, PLAIN) else OTHER_DATASET
        compare = at.multiselect(key=f"sim_compare_{dataset}")
        assert len(compare.options) == 2  # the two runs on that dataset, preselected
        assert {Path(str(v)).name for v in compare.value} == expected


def test_the_full_map_is_computed_only_when_asked(manidp_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a stored map the page shows the probe images at once and offers the computation; once asked,
    the map is stored next to the run and read from there."""
    runs = tmp_path / "runs"
    shutil.copytree(manidp_run, runs / RUN, ignore=shutil.ignore_patterns("subnet_umap.npz"))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render(full_map=False)
    assert any("not computed yet" in c.value for c in at.caption)
    probe = np.load(manidp_run / "probe.npz")
    points = np.concatenate([values(trace["customdata"])[:, 0] for trace in figures(at)[2]["data"]])
    assert sorted(points.astype(int)) == sorted(probe["indices"].tolist())
    at.button(key="sim_umap_compute").click().run()
    assert not at.exception and (runs / RUN / "subnet_umap.npz").is_file()
    assert any("test images is a point" in c.value for c in at.caption)
