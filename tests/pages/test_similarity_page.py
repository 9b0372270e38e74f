"""The Similarity page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.page_helpers import fixture_run
from tests.pages.page_helpers import plotly_figures as figures
from tests.pages.page_helpers import trace_values as values

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "similarity.py")
# A fresh installation's first UMAP imports and compiles umap-learn's numba kernels (~60 s on 2 busy
# cores, once: they are cached on disk afterwards); later renders take well under a second.
TIMEOUT = 240
RUN, PLAIN = "fx-manidp-full", "fx-manidp-plain"


def render(run: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    if run is not None:
        at.selectbox(key="sim_run").set_value(str(run)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reference_gap(probe: np.lib.npyio.NpzFile, layer: int) -> float:
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
    probe = np.load(manidp_run / "probe.npz")
    charts = figures(at)
    assert len(charts) == 4  # T/R/T-R heatmaps, gap bars, UMAP of gates, UMAP of features
    t, r, diff = (values(trace["z"]) for trace in charts[0]["data"])
    order = np.argsort(probe["labels"], kind="stable")
    assert np.allclose(t, probe["T_0"][np.ix_(order, order)]) and np.allclose(diff, t - r)
    assert at.metric[0].value == f"{reference_gap(probe, 0):.3f}"
    for umap in charts[2:]:
        points = sum(len(values(trace["x"])) for trace in umap["data"])
        assert points == len(probe["indices"])


def test_layer_select_and_umap_options(manidp_run: Path) -> None:
    at = render(manidp_run)
    probe = np.load(manidp_run / "probe.npz")
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
    at.multiselect(key="sim_compare").set_value([str(manidp_run), str(plain)]).run()
    bars = figures(at)[1]["data"]
    assert len(bars) == 2 and any("neither" in bar["name"] for bar in bars)
    for bar, path in zip(bars, (manidp_run, plain), strict=True):
        probe = np.load(path / "probe.npz")
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
