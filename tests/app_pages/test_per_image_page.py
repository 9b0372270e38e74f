"""The Per-image MACs page through AppTest, against the real fixture runs and an empty runs folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import spearmanr
from streamlit.testing.v1 import AppTest

from prunelab.analysis.results import class_names
from tests.app_pages.page_helpers import fixture_run, frame_with, metric, url_param
from tests.app_pages.page_helpers import plotly_figures as figures
from tests.app_pages.page_helpers import trace_values as values

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "per_image.py")
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
    # histogram, MACs vs complexity, per-layer density; the what-if draws only once asked (a button)
    assert len(at.get("plotly_chart")) == 3
    images = at.get("image")
    assert len(images) >= 3  # the selected image, the cheapest row, the most expensive row (then the what-if's)
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
    gallery = at.get("image")[1:3]
    expected = min(4, int((table["label"] == label).sum()))
    assert all(len(row.captions) == expected for row in gallery)
    assert all(caption.split()[1].startswith(f"{name}→") for row in gallery for caption in row.captions)


def test_complexity_axis_switch(manidp_run: Path) -> None:
    at = render(manidp_run)
    options = at.radio(key="pi_axis").options
    at.radio(key="pi_axis").set_value(options[-1]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 3


def test_what_if_shows_the_cores_figures_at_each_density(manidp_run: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A density not stored is computed only when asked (a button), stored next to the run, and then shows the
    figures `what_if` gives."""
    from prunelab.analysis import views
    from prunelab.methods.manidp.whatif import what_if

    runs = tmp_path / "runs"
    shutil.copytree(manidp_run, runs / RUN, ignore=shutil.ignore_patterns("whatif_curve.parquet"))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render()
    assert at.select_slider(key="pi_whatif_density").value == pytest.approx(0.7)  # the run's own target density
    for density in (0.7, 0.4):
        at.select_slider(key="pi_whatif_density").set_value(density).run()
        assert not any(m.label == "Test accuracy at this density" for m in at.metric)  # nothing computed unasked
        at.button(key="pi_whatif_compute").click().run()
        assert not at.exception
        assert density in views.whatif_densities(runs / RUN)
        result = what_if(runs / RUN, density)
        assert metric(at, "Test accuracy at this density") == f"{result.test_acc:.1%}"
        assert metric(at, "Mean MACs per image at this density") == f"{result.macs['mean'] / 1e6:.3f} M"
        assert metric(at, "Spread of MACs per image (std)") == f"{result.macs['std'] / 1e6:.3f} M"
        assert metric(at, "Mean density on the test images") == f"{result.density_measured:.3f}"
        moves = frame_with(at, "cheap", "costly")
        assert moves.to_numpy().tolist() == result.moves.to_numpy().tolist()
        text = " ".join(c.value for c in at.caption)
        assert f"{len(result.moved)} of {len(result.per_image)} test images change half" in text
        galleries = at.get("image")[3:]  # after the selected image and the cheapest / costliest rows
        crossed = [len(result.crossed(a, b)) for a, b in (("cheap", "costly"), ("costly", "cheap"))]
        assert [len(g.captions) for g in galleries] == [min(8, n) for n in crossed if n]
    histogram = figures(at)[-1]["data"]
    assert len(values(histogram[1]["x"])) == len(result.per_image)


def test_what_if_needs_the_gated_model(manidp_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(manidp_run, runs / "no-model", ignore=shutil.ignore_patterns("*.pt"))
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    at = render()
    assert any("needs the run's gated model (model.pt)" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 3  # the what-if draws nothing


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


def test_the_hover_shows_the_loss_as_a_plain_number(manidp_run: Path) -> None:
    """Issue 31: plotly's default hover format wrote a loss of 0.000496 as 'CE loss=495.7877μ'."""
    at = render(manidp_run)
    scatter = figures(at)[1]
    assert scatter["data"] and all("CE loss=%{x:.3f}" in t["hovertemplate"] for t in scatter["data"])


def test_a_click_on_the_complexity_scatter_opens_that_image(manidp_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: Plotly hands a clicked point's custom data back as a typed-array row, {"0": value}; the page
    read it as a list and raised KeyError: 0. (tests/test_browser_clicks.py clicks in Chromium.)"""
    from types import SimpleNamespace

    import streamlit

    table = pd.read_parquet(manidp_run / "per_image.parquet")
    clicked = int(table.sort_values(["macs", "index"])["index"].iloc[-1])  # not the selectbox's first choice
    real = streamlit.plotly_chart

    def plotly_chart(figure: object, *args: object, **kwargs: object) -> object:
        result = real(figure, *args, **kwargs)
        if str(kwargs.get("key", "")) == "pi_scatter":
            return SimpleNamespace(selection=SimpleNamespace(points=[{"customdata": {"0": clicked}}]))
        return result

    monkeypatch.setattr(streamlit, "plotly_chart", plotly_chart)
    at = render(manidp_run)
    assert at.selectbox(key="pi_image").value == clicked
    assert at.get("image")[0].captions[0].startswith(f"#{clicked} ")


def test_opens_on_the_full_method_and_shares_the_run_as_a_url(manidp_run: Path) -> None:
    """The full method's run (with its model) is the default; `?run=<id>` opens another and the page writes
    the chosen run's id into the URL."""
    plain = manidp_run.parent / "fx-manidp-plain"
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.selectbox(key="pi_run").value == str(manidp_run)
    assert url_param(at, "run") == manidp_run.name
    if not (plain / "per_image.parquet").is_file():
        pytest.skip("the plain ManiDP fixture run is not available")
    shared = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    shared.query_params["run"] = plain.name
    shared.run()
    assert not shared.exception and shared.selectbox(key="pi_run").value == str(plain)
