"""The Overview (home) page through AppTest: the bundled demo charted on a first visit with no runs of
one's own, the strip of cheapest and costliest images, one sentence per method, and links one click
away; the user's runs charted when there is no demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from prunelab import results
from tests.pages.page_helpers import plotly_figures
from tests.pages.page_helpers import trace_values as values

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
    by_method = {trace["name"]: trace for trace in chart["data"]}
    assert {"baseline", "slimming", "manidp"} <= set(by_method)
    assert "your runs" not in by_method  # no runs of one's own yet
    demo = results.runs_table(results.run_roots())
    demo = demo[demo["dataset"] == demo["dataset"].iloc[0]]  # the first demo's dataset is charted first
    variants = demo.groupby(["method", "sparsity_lambda", "complexity", "similarity", "epochs_total"],
                            dropna=False).ngroups
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
    assert chart["data"] and "your runs" not in {trace["name"] for trace in chart["data"]}
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
