"""The Overview (home) page through AppTest: the bundled demo charted on a first visit with no runs of
one's own, the strip of cheapest and costliest images, one sentence per method, and links one click
away; the user's runs charted when there is no demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_components import charts, paper_points
from prunelab.analysis import results
from tests.app_pages.page_helpers import plotly_figures
from tests.app_pages.page_helpers import trace_values as values

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def render_home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("PruneLab")
    return at


@pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout")
def test_first_visit_charts_the_demo(empty_runs_dir: Path, data_cache_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(empty_runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    monkeypatch.chdir(ROOT)
    at = render_home()
    chart = plotly_figures(at)[0]
    groups = {trace.get("legendgroup") for trace in chart["data"]}
    assert {"baseline", "slimming", "manidp"} <= groups
    assert "mine" not in groups  # no runs of one's own yet
    demo = results.runs_table(results.run_roots())
    demo = demo[demo["dataset"] == demo["dataset"].iloc[0]]  # the first demo's dataset is charted first
    from prunelab.analysis.tables import ablation_table

    # a variant: its method's settings and form, a control's the variant it controls (tables.parent_variants)
    variants = ablation_table(demo).groupby(["method", "variant", "epochs_total"], dropna=False).ngroups
    assert sum(len(values(t["x"])) for t in chart["data"]) == variants  # one point per variant, over seeds
    text = " ".join(str(m.value) for m in at.markdown)
    assert "**Baseline**" in text and "**Network Slimming**" in text and "**ManiDP**" in text
    assert "Cheapest images" in text and "Costliest images" in text
    images = at.get("image")
    assert len(images) == 2 and all(len(strip.proto.imgs) == 6 for strip in images)
    assert {element.proto.page for element in at.get("page_link")} == {"runs", "live"}  # one click away


def test_without_the_demo_the_users_runs_are_charted(runs_env: Path) -> None:
    at = render_home()
    chart = plotly_figures(at)[0]
    assert chart["data"] and "mine" not in {trace.get("legendgroup") for trace in chart["data"]}
    assert any("your finished runs" in str(c.value) for c in at.caption)
    assert not at.get("image")  # the strip shows a demo ManiDP run


@pytest.mark.skipif(not (ROOT / "assets" / "cifar10_runs").is_dir(), reason="the CIFAR-10 demo is not in this checkout")
def test_cifar10_overview_says_top_right_is_best(empty_runs_dir: Path, data_cache_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On CIFAR-10 the chart's x axis is the MACs reduction: its captions must say top-right is best."""
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(empty_runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    monkeypatch.chdir(ROOT)
    at = render_home()
    cifar = next(o for o in at.segmented_control(key="home_dataset").options if "cifar10" in o)
    at.segmented_control(key="home_dataset").set_value(cifar).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "MACs reduction" in plotly_figures(at)[0]["layout"]["xaxis"]["title"]["text"]
    captions = " ".join(str(c.value) for c in at.caption)
    assert "top-right is best" in captions.lower() and "top-left" not in captions.lower()


def _demo_home(monkeypatch: pytest.MonkeyPatch, runs_dir: Path) -> AppTest:
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs_dir))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    monkeypatch.chdir(ROOT)
    return render_home()


def _points(chart: dict) -> list[dict]:
    """Every variant's point of an accuracy-against-MACs chart (the papers' stars left out) with its marker."""
    found = []
    for trace in chart["data"]:
        if trace["name"].startswith(paper_points.TRACE_PREFIX):
            continue
        for x, y in zip(values(trace["x"]), values(trace["y"]), strict=True):
            found.append({"x": float(x), "y": float(y), "name": trace["name"], "group": trace.get("legendgroup"),
                          **{key: trace["marker"].get(key) for key in ("color", "symbol", "size")}})
    return found


@pytest.mark.skipif(not (ROOT / "assets" / "cifar10_runs").is_dir(), reason="the demos are not in this checkout")
@pytest.mark.parametrize("demo", ["shapes", "cifar10"])
def test_every_demo_point_is_named_coloured_by_method_and_visible(demo: str, empty_runs_dir: Path,
                                                                  data_cache_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 31: one legend entry per variant (the 4-epoch pretrain parent named apart from the baseline),
    the method's one colour, and no point hidden under another at the same place."""
    at = _demo_home(monkeypatch, empty_runs_dir)
    option = next(o for o in at.segmented_control(key="home_dataset").options if demo in o)
    at.segmented_control(key="home_dataset").set_value(option).run()
    chart = plotly_figures(at)[0]
    points = _points(chart)
    names = [p["name"] for p in points]
    assert len(names) == len(set(names))  # one named point per variant
    assert sum(name.startswith("pretrain") for name in names) == 1
    assert sum(name.startswith("baseline") for name in names) == 1
    assert all(p["color"] == charts.METHOD_COLOURS[p["group"]] for p in points)
    span_x = max(p["x"] for p in points) - min(p["x"] for p in points)
    span_y = max(p["y"] for p in points) - min(p["y"] for p in points)
    for i, below in enumerate(points):  # drawn in this order: a later point lies on top of an earlier one
        for above in points[i + 1:]:
            if abs(below["x"] - above["x"]) < 0.02 * span_x and abs(below["y"] - above["y"]) < 0.02 * span_y:
                assert (above["size"] < below["size"]
                        or (above["size"] == below["size"] and above["symbol"] != below["symbol"])), (below, above)
    stars = [t for t in chart["data"] if t["name"].startswith(paper_points.TRACE_PREFIX)]
    assert bool(stars) == (demo == "cifar10")
    for trace in stars:  # the method's colour; labels outside the plotting area are not clipped
        method = "manidp" if "ManiDP" in trace["name"] else "slimming"
        assert trace["marker"]["color"] == charts.METHOD_COLOURS[method] and trace["cliponaxis"] is False
    labelled = [(x, y, pos) for t in stars for x, y, pos in zip(t["x"], t["y"], t["textposition"], strict=True)]
    for i, (x, y, pos) in enumerate(labelled):  # two stars close together never put their labels on one side
        for x2, y2, pos2 in labelled[i + 1:]:
            if abs(x - x2) < paper_points.NEAR and abs(y - y2) < 0.02:
                assert pos != pos2, ((x, y, pos), (x2, y2, pos2))


@pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout")
def test_a_users_run_of_another_width_stays_off_the_demos_chart(fixture_runs_dir: Path, tmp_path: Path,
                                                                data_cache_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture runs are resnet20 at width 0.25, the shapes demo at 0.5: they are left off (and said to
    be); a copy of a demo run, the demo's own setting, is drawn beside it."""
    at = _demo_home(monkeypatch, fixture_runs_dir)
    chart = plotly_figures(at)[0]
    assert "mine" not in {t.get("legendgroup") for t in chart["data"]}
    assert any("use another model or width than the demo" in str(c.value) for c in at.caption)
    runs = tmp_path / "runs"
    demo_run = next(results.DEMO_RUNS_DIR.glob("*-demo-baseline-s0"))
    shutil.copytree(demo_run, runs / "my-baseline")
    at = _demo_home(monkeypatch, runs)
    mine = [t for t in plotly_figures(at)[0]["data"] if t.get("legendgroup") == "mine"]
    assert len(mine) == 1 and len(values(mine[0]["x"])) == 1
