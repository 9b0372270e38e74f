"""The app shell through AppTest: navigation, and every page rendering against fixture runs and none."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
ANALYSIS_PAGES = [f"app_pages/{name}.py" for name in ("slimming", "per_image", "similarity", "ablations")]
PAGES = ["app_pages/home.py", "app_pages/lessons.py", "app_pages/runs.py", "app_pages/live.py"] + [
    page for page in ANALYSIS_PAGES if (ROOT / page).is_file()]
TIMEOUT = 120


def open_page(page: str) -> tuple[AppTest, float]:
    """Run the app, switch to `page` and run it; returns the app and the page's render time (s)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(page)
    started = time.perf_counter()
    at.run()
    return at, time.perf_counter() - started


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = [str(e.value) for e in (*at.markdown, *at.error, *at.warning, *at.info)]
    assert not any("Traceback" in text for text in texts)


@pytest.mark.slow
def test_home_is_the_overview_and_lists_existing_pages(runs_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert at.title[0].value.startswith("PruneLab")
    assert any("Network Slimming" in str(m.value) for m in at.markdown)
    assert at.get("plotly_chart")  # the home page opens on a chart (here: the fixture runs')
    titles = {}
    for page in PAGES:  # every page file that exists is registered with st.navigation and opens its own page
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.title, page
        titles[page] = at.title[0].value
    assert len(set(titles.values())) == len(PAGES), titles


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_fixture_runs(runs_env: Path, page: str) -> None:
    at, seconds = open_page(page)
    assert_clean(at)
    print(f"{page}: rendered in {seconds:.2f} s with fixture runs")


@pytest.mark.parametrize("page", PAGES)
def test_page_explains_what_is_missing_with_no_runs(empty_runs_env: Path, page: str) -> None:
    at, seconds = open_page(page)
    assert_clean(at)
    # a helpful message instead of charts (the sidebar caption of app.py is on every page: not counted)
    messages = [str(e.value) for e in at.info]
    assert any("Start" in text for text in messages), messages  # which run to start, and where
    assert not at.get("plotly_chart"), page
    print(f"{page}: rendered in {seconds:.2f} s with no runs")


def test_the_browser_gets_short_errors_only() -> None:
    """An uncaught error shows its type and a generic message; the traceback, which names the server's paths,
    goes to the server's log (`--client.showErrorDetails=full` turns details on for debugging)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "type"
