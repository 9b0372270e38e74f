"""The Speed page through AppTest: it renders the shipped benchmark result (assets/speed/cpu.json), and says what
is missing when there is no result or an unreadable one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from prunelab.speed.report import HEADLINES, SPEED_DIR_ENV
from tests.app_pages.page_helpers import plotly_figures

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "speed.py")
SHIPPED = ROOT / "assets" / "speed" / "cpu.json"
TIMEOUT = 60


def render() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.delenv(SPEED_DIR_ENV, raising=False)
    monkeypatch.chdir(ROOT)
    return json.loads(SHIPPED.read_text())


def test_shipped_result_is_a_real_measurement(shipped: dict) -> None:
    assert shipped["speed_rows"] and shipped["machine"]["cpu_count"] and shipped["git"]["commit"]
    config = shipped["details"]["speed"]["config"]
    assert config["width"] == 1.0 and set(config["models"]) == {"resnet56", "vgg16"}
    assert {r["batch"] for r in shipped["speed_rows"]} == {1, 8, 64}
    assert {r["threads"] for r in shipped["speed_rows"]} == {1, 2}


def test_renders_the_shipped_result(shipped: dict) -> None:
    at = render()
    assert at.title[0].value.startswith("Speed")
    headlines = next(df.value for df in at.dataframe if "measured (worse model)" in df.value.columns)
    assert headlines["measured (worse model)"].tolist() == pytest.approx([shipped[k] for k in HEADLINES])
    figures = plotly_figures(at)
    assert len(figures) == 4  # speedups, per-layer rates, op split, union widths
    rows = [r for r in shipped["speed_rows"] if r["kind"] == "static" and r["model"] == "resnet56"]
    bars = [trace for trace in figures[0]["data"] if trace["type"] == "bar"]
    assert len(bars) == len({(r["form"], r["threads"]) for r in rows})  # one bar series per form and thread count
    assert any("Fixed cost per layer" in str(m.value) for m in at.markdown)


def test_switches_to_the_dynamic_rows_of_vgg(shipped: dict) -> None:
    at = render()
    at.radio(key="speed_kind").set_value("dynamic").run()
    at.selectbox(key="speed_model").set_value("vgg16").run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "pruned_form" in df.value.columns)
    expected = [r for r in shipped["speed_rows"] if r["kind"] == "dynamic" and r["model"] == "vgg16"]
    assert len(table) == len(expected)
    assert set(table["pruned_form"]) == {"sparse_executor", "batched_executor"}


def test_says_how_to_measure_when_there_is_no_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPEED_DIR_ENV, str(tmp_path))
    at = render()
    assert any("run_all.py --quick --only speed" in str(i.value) for i in at.info)
    assert not at.get("plotly_chart")
    (tmp_path / "broken.json").write_text("{not json")
    at = render()
    assert any("broken.json" in str(e.value) for e in at.error)
    assert not at.get("plotly_chart")


def test_opens_from_the_app_navigation(shipped: dict) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/speed.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.startswith("Speed")
