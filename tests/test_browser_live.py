"""End to end in headless Chromium: the home page opens on a chart, and a run started from the form is
watched while it trains.

The tests share one server (module scope), started with an empty runs folder and the bundled demo visible:

1. Its first request, to the home page, shows a Plotly chart above the fold; the seconds it took are
   printed (no timing assertion: a generous timeout).
2. A walk over every page of both demos (scripts/app_walk.py) meets no exception.
3. A short run started from the Runs page's form (shapes, 256 training images, the default model at width
   0.125, many cheap epochs) is opened on the Live training page through the form's link, and its curve
   chart gains points while it trains (the chart's markers are counted, then counted again).

Skipped when /usr/bin/chromium is missing, like tests/test_browser.py whose server helpers these share.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import CHROMIUM, PAGE_TIMEOUT_MS, _serve_app, launch, wait_until_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]

PLOTLY = ".js-plotly-plot"
CURVE_CHART = ".st-key-live_curves .js-plotly-plot"
# the form's inputs by widget key -> value (a tiny run: a few batches per epoch, many epochs)
FORM = {"form_train_size": "256", "form_test_size": "100", "form_width": "0.125", "form_epochs": "40",
        "form_batch_size": "64", "form_threads": "1"}
GROWTH_TIMEOUT_S = 240.0
WALK_LIMIT = 1  # widgets of each kind touched per page (CI time; the script form touches every one)
WALK_POINTS = 2  # scatters clicked per page: both sub-network maps


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, runs folder) of a fresh server over an empty runs folder, the bundled demo visible."""
    base = tmp_path_factory.mktemp("live-server")
    runs = base / "runs"
    runs.mkdir()
    with _serve_app(base, runs_dir=runs, demo=True, cache_dir=base / "cache") as url:
        yield url, runs


def test_fresh_server_home_page_shows_a_chart(server: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        started = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(PLOTLY, timeout=PAGE_TIMEOUT_MS)
        seconds = time.perf_counter() - started
        chart = page.locator(PLOTLY).first
        box = chart.bounding_box()
        wait_until_idle(page)
        page.screenshot(path=str(tmp_path / "home.png"))
        body = page.inner_text("body")
        browser.close()
    print(f"home page chart visible {seconds:.1f} s after the first request to a fresh server "
          f"(screenshot {tmp_path / 'home.png'})")
    assert box is not None and box["y"] < 900, box  # above the fold of a 1400x900 window
    assert "Traceback" not in body
    assert "Cheapest images" in body and "Network Slimming" in body and "ManiDP" in body


@pytest.mark.timeout(1200)  # every page of both demos in a real browser: 96 s on a loaded 2-core machine
def test_a_walk_touches_every_page_on_both_demos(server: tuple[str, Path]) -> None:
    """Every page (scripts/app_walk.py), the pages of one run on each demo: its sliders moved, its selects changed,
    a point of each scatter and map clicked; no exception on a page or in the server's log. Prints each page's time
    to first chart (the script form prints the same for every widget: `python scripts/app_walk.py`)."""
    from app_walk import PAGES, RUN_PAGES, demo_visits, server_problems, walk_app

    url, runs = server
    with pytest.MonkeyPatch.context() as patch:  # the server shows the demo; this process lists it alike
        patch.setenv("PRUNELAB_NO_DEMO", "0")
        visits = demo_visits()

    walk = walk_app(url, visits, limit=WALK_LIMIT, point_limit=WALK_POINTS)  # no screenshots: problems are text
    print(walk.report())
    assert set(walk.first_chart) == {label for label, _ in visits}
    assert len(visits) == len(PAGES) + len(RUN_PAGES)  # 9 pages, the 4 of one run on the second demo too
    assert sum(1 for _, action, _ in walk.waits if action.startswith("point")) >= 2  # scatters were clicked
    problems = walk.problems + server_problems(next(runs.parent.glob("streamlit-*.log")))
    assert not problems, "\n".join(problems)


def _fill_form(page: Any) -> None:
    page.get_by_text("baseline", exact=True).first.click()
    for key, value in FORM.items():
        field = page.locator(f".st-key-{key} input")
        field.fill(value)
        field.press("Tab")


def _points(page: Any) -> int:
    """Markers of the curve chart's first trace (training loss): one per epoch logged."""
    chart = page.locator(CURVE_CHART).last  # the newest drawing while a redraw replaces the old one
    return chart.locator(".scatterlayer .trace").first.locator("path.point").count()


def test_a_run_started_from_the_form_is_watched_while_it_trains(server: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, runs = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/runs", wait_until="domcontentloaded")
        page.wait_for_selector(".st-key-form_epochs input", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        _fill_form(page)
        page.get_by_role("button", name="Start run").click()
        link = page.get_by_role("link", name="Watch it train")
        link.wait_for(timeout=PAGE_TIMEOUT_MS)
        link.click()
        page.wait_for_selector(f"{CURVE_CHART} .scatterlayer path.point", timeout=PAGE_TIMEOUT_MS)
        first = _points(page)
        deadline = time.monotonic() + GROWTH_TIMEOUT_S
        later = first
        while later <= first and time.monotonic() < deadline:
            time.sleep(1.0)
            later = _points(page)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        body = page.inner_text("body")
        browser.close()
    print(f"epochs on the curve chart: {first} when first drawn, {later} later (screenshot {tmp_path / 'live.png'})")
    assert later > first, "the curve did not gain points while the run trained"
    assert "Traceback" not in body
    run_dirs = [p for p in runs.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1 and (run_dirs[0] / "metrics.jsonl").is_file()
