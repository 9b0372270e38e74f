"""End to end: `streamlit run app.py` headless, every page opened in headless Chromium.

Each page must finish running, show its charts (Plotly/Vega charts, or the runs table on the home
page) and no exception. A page that fails is screenshot into the test's temporary folder. Skipped when
/usr/bin/chromium is missing (CI installs it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_browser import CHROMIUM, PAGE_TIMEOUT_MS, launch, serve_app, wait_until_idle  # noqa: E402

from prunelab.methods import METHODS  # noqa: E402
from tests.app_pages.fixture_runs import ensure_fixture_runs  # noqa: E402

CHARTS = ".js-plotly-plot, [data-testid='stVegaLiteChart'], [data-testid='stArrowVegaLiteChart']"
TABLE = "[data-testid='stDataFrame']"
# page file -> (url path, what must be visible, the method its fixture runs need)
PAGES = {
    "app_pages/home.py": ("", CHARTS, None),
    "app_pages/lessons.py": ("lessons", CHARTS, None),
    "app_pages/runs.py": ("runs", TABLE, None),
    "app_pages/live.py": ("live?run=fx-baseline", CHARTS, None),  # a finished run: no polling to wait out
    "app_pages/slimming.py": ("slimming", CHARTS, "slimming"),
    "app_pages/per_image.py": ("per_image", CHARTS, "manidp"),
    "app_pages/similarity.py": ("similarity", CHARTS, "manidp"),
    "app_pages/ablations.py": ("ablations", CHARTS, None),
    "app_pages/speed.py": ("speed", CHARTS, None),
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]


@contextlib.contextmanager
def _serve_app(base: Path, runs_dir: Path | None = None, demo: bool = False,
               cache_dir: Path | None = None) -> Iterator[str]:
    """A fresh headless `streamlit run app.py` on a free localhost port, reading the fixture runs (or
    `runs_dir`), the bundled demo hidden unless `demo`."""
    env = {"PRUNELAB_CACHE_DIR": str(cache_dir or base / "data-cache"), "PRUNELAB_NO_DEMO": "0" if demo else "1"}
    if runs_dir is not None:
        env["PRUNELAB_RUNS_DIR"] = str(runs_dir)
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PRUNELAB_CACHE_DIR", env["PRUNELAB_CACHE_DIR"])
            env["PRUNELAB_RUNS_DIR"] = str(ensure_fixture_runs(base / "fixture-runs"))
    with serve_app(base, env) as url:
        yield url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serve_app(tmp_path_factory.getbasetemp()) as url:
        yield url


@pytest.mark.timeout(1200)  # a fresh server and every page: 57 s on a loaded 2-core machine
def test_every_page_renders_in_chromium(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    opened = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        for file, (url_path, expected, method) in PAGES.items():
            if not (ROOT / file).is_file() or (method is not None and method not in METHODS):
                continue
            started = time.perf_counter()
            page.goto(f"{app_url}/{url_path}", wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid='stApp']", timeout=PAGE_TIMEOUT_MS)
            page.wait_for_selector(expected, timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page, quiet_s=0.6)  # after its charts showed: the run began
            seconds = time.perf_counter() - started
            exceptions = page.locator("[data-testid='stException']").count()
            traceback = "Traceback" in page.inner_text("body")
            charts = page.locator(expected).count()
            if exceptions or traceback or not charts:  # the page as it failed, for the report
                shot = tmp_path / f"{file.split('/')[-1].removesuffix('.py')}.png"
                page.screenshot(path=str(shot), full_page=True)
                pytest.fail(f"{file}: {exceptions} exceptions shown, traceback text shown: {traceback}, "
                            f"{charts} charts ({shot})")
            opened.append(f"{file} {seconds:.1f}s")
        browser.close()
    print("opened:", ", ".join(opened))
    assert opened and opened[0].startswith("app_pages/home.py")


def test_a_page_url_as_a_fresh_servers_first_request_gets_the_apps_navigation(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """A deep link as a fresh server's first request runs app.py, so the page has the app's navigation (a page
    file Streamlit ran by itself, as its legacy discovery of a `pages/` folder would, would not)."""
    from playwright.sync_api import sync_playwright

    with _serve_app(tmp_path_factory.getbasetemp()) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/ablations", wait_until="domcontentloaded")
        page.wait_for_selector("h1:has-text('Ablations and sweeps')", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        page.screenshot(path=str(tmp_path / "deep-link.png"), full_page=True)
        navigation = page.inner_text("[data-testid='stSidebarNav']")
        browser.close()
    assert "Per-image MACs" in navigation, navigation  # the titles given to st.navigation in app.py
    assert "common" not in navigation.lower() and "run widgets" not in navigation.lower(), navigation
