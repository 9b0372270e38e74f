"""The read-only viewer in a real browser: `streamlit run app.py -- --viewer` on the bundled demos, headless Chromium.

The Runs page shows the runs table and the one-line note, and no button, tab or form that starts, cancels, resumes or
deletes a run; the Overview links to browsing the runs instead of starting one. Skipped without /usr/bin/chromium.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_browser import CHROMIUM, PAGE_TIMEOUT_MS, launch, serve_app, wait_until_idle  # noqa: E402

from prunelab.analysis import results  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout"),
]

OFFER = re.compile(r"start|run the demo|cancel|delete|resume|restart|compute|upload", re.I)
TABLE = "[data-testid='stDataFrame']"
FORMS = "[data-testid='stForm'], [data-testid='stTab'], [data-testid='stFileUploader']"  # forms, tabs, uploads


@pytest.mark.timeout(600)
def test_the_runs_page_offers_no_action_in_a_viewer(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"PRUNELAB_RUNS_DIR": str(runs), "PRUNELAB_CACHE_DIR": str(tmp_path / "cache"), "PRUNELAB_NO_DEMO": "0",
           "PRUNELAB_VIEWER": "0"}  # the option alone makes it a viewer
    with serve_app(tmp_path, env, script_args=["--viewer"]) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{url}/runs")
        page.locator(TABLE).first.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        page.screenshot(path=str(tmp_path / "viewer-runs.png"), full_page=True)
        main = page.locator("[data-testid='stMain']")
        assert main.get_by_text("This PruneLab is a read-only viewer").count() == 1
        buttons = [text.strip() for text in page.locator("button").all_inner_texts()]
        assert not [text for text in buttons if OFFER.search(text)], buttons
        assert page.locator(FORMS).count() == 0
        assert page.locator("[data-testid='stSidebar']").get_by_text("Viewer: read-only").count() == 1
        page.goto(url)  # the Overview: a link to browse the runs, none to start one
        page.locator("[data-testid='stPlotlyChart']").first.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        links = [text.strip() for text in main.locator("[data-testid='stPageLink']").all_inner_texts()]
        assert any("Browse the runs" in text for text in links) and not any("Start a run" in t for t in links), links
        assert not [row for row in page.locator("[data-testid='stException']").all_inner_texts()]
        browser.close()
