"""The guided tours in headless Chromium: a step's URL opens that step and the browser's back and forward buttons
walk the steps; a walk through both tours over the shipped demos shows no exception and no step waits more than
3 s for its chart after the first load (the timings are printed); charts offer Plotly's PNG download; and the
handout (`python -m prunelab report`) renders every chart from a file with the network blocked.

The tours read the bundled demos here (pointed at explicitly: `PRUNELAB_NO_DEMO=0` and an empty runs folder), the
runs a lecturer's tour shows. Skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_browser import CHROMIUM, PAGE_TIMEOUT_MS, launch, serve_app, wait_until_idle  # noqa: E402

from prunelab.analysis import results, tours  # noqa: E402
from tests.helpers import run_cli  # noqa: E402

STEP_WAIT_S = 3.0  # the longest a step may wait for its chart after the first load
QUIET_S = 0.6  # idle: no script running for this long (each wait follows a step's new chart, so its rerun began)
EXCEPTION = "[data-testid='stException']"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the tours read the shipped demos"),
]


def chart_of(tour: str, step: int) -> str:
    """The drawn chart of a step (its plotly_chart's key names the step: a new step's chart, never the last one's)."""
    return f".st-key-tour_chart_{tour}_{step} .main-svg"


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("lessons-server")
    (base / "runs").mkdir()
    env = {"PRUNELAB_NO_DEMO": "0", "PRUNELAB_RUNS_DIR": str(base / "runs"),
           "PRUNELAB_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "data-cache")}
    with serve_app(base, env) as url:
        yield url


def heading(page: object) -> str:
    return page.locator("h3").first.inner_text().strip()  # type: ignore[attr-defined]


@pytest.mark.timeout(900)
def test_a_steps_url_opens_that_step_and_back_and_forward_walk_the_steps(demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    step = tours.TOURS["manidp"].steps[3]
    dataset = "cifar10-demo" if results.CIFAR_DEMO_RUNS_DIR.is_dir() else "shapes"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{demo_url}/lessons?tour=manidp&step=4&dataset={dataset}", wait_until="domcontentloaded")
        page.wait_for_selector(chart_of("manidp", 4), timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S)
        page.screenshot(path=str(tmp_path / "deep-link.png"), full_page=True)
        assert heading(page) == f"4. {step.title}"
        assert f"tour=manidp&step=4&dataset={dataset}" in page.inner_text("[data-testid='stCode']")
        assert page.locator(EXCEPTION).count() == 0
        page.get_by_role("button", name="Next step →").click()
        page.wait_for_selector(chart_of("manidp", 5), timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S)
        assert "step=5" in page.url and heading(page).startswith("5. ")
        page.go_back()
        page.wait_for_selector(chart_of("manidp", 4), timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S)
        assert "step=4" in page.url and heading(page) == f"4. {step.title}"
        page.go_forward()
        page.wait_for_selector(chart_of("manidp", 5), timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S)
        assert "step=5" in page.url and heading(page).startswith("5. ")
        assert page.locator(EXCEPTION).count() == 0
        page.goto(demo_url, wait_until="domcontentloaded")  # a chart of another page, drawn with Streamlit's defaults
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=PAGE_TIMEOUT_MS)
        page.hover(".js-plotly-plot")
        assert page.locator(".js-plotly-plot [data-title^='Download plot as a PNG']").count() >= 1
        browser.close()


@pytest.mark.timeout(900)
def test_a_walk_through_both_tours_waits_at_most_3_s_for_each_chart(demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    timings: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        started = time.perf_counter()
        page.goto(f"{demo_url}/lessons?tour=slimming&step=1&dataset=shapes", wait_until="domcontentloaded")
        page.wait_for_selector(chart_of("slimming", 1), timeout=PAGE_TIMEOUT_MS)
        first_load = time.perf_counter() - started
        wait_until_idle(page, quiet_s=QUIET_S)
        page.hover(".st-key-tour_chart_slimming_1 .js-plotly-plot")  # Plotly's modebar shows on hover
        assert page.locator(".st-key-tour_chart_slimming_1 [data-title^='Download plot as a PNG']").count() == 1
        for key, tour in tours.TOURS.items():
            for number in range(1, len(tour.steps) + 1):
                if (key, number) == ("slimming", 1):
                    continue
                if number == 1:  # the next tour: its own control
                    page.locator(".st-key-lesson_tour").get_by_text(tour.title, exact=True).click()
                else:
                    page.get_by_role("button", name="Next step →").click()
                clicked = time.perf_counter()
                page.wait_for_selector(chart_of(key, number), timeout=PAGE_TIMEOUT_MS)
                timings[f"{key} {number}"] = time.perf_counter() - clicked
                wait_until_idle(page, quiet_s=QUIET_S)
                if page.locator(EXCEPTION).count() or "Traceback" in page.inner_text("body"):
                    page.screenshot(path=str(tmp_path / f"{key}-{number}.png"), full_page=True)
                    pytest.fail(f"step {number} of the {key} tour shows an exception ({tmp_path / key}-{number}.png)")
        browser.close()
    print(f"first load {first_load:.2f} s; each step's chart after its click: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
    slow = {name: round(seconds, 2) for name, seconds in timings.items() if seconds > STEP_WAIT_S}
    assert not slow, slow


@pytest.mark.timeout(600)
def test_the_handout_draws_every_chart_with_the_network_blocked(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "lesson.html"
    code, _, stderr = run_cli("report", str(results.DEMO_RUNS_DIR), "--out", str(out))
    assert code == 0, stderr
    requested, errors = [], []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def offline(route: object) -> None:  # a file and its data URIs load; anything else is refused
            url = route.request.url  # type: ignore[attr-defined]
            if url.startswith(("file:", "data:")):
                route.continue_()  # type: ignore[attr-defined]
            else:
                requested.append(url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", offline)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(out.as_uri())
        charts = page.locator(".chart").count()
        drawn_js = ("[...document.querySelectorAll('.chart')].filter(c => c.querySelector("  # a trace, or a heatmap's
                    "'svg.main-svg g.trace, svg.main-svg g.hm image')).length")  # image, drawn in Plotly's SVG
        page.wait_for_function(f"n => {drawn_js} >= n", arg=charts, timeout=60_000)
        drawn = page.evaluate(drawn_js)
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        page.screenshot(path=str(tmp_path / "handout.png"))
        browser.close()
    size = out.stat().st_size
    print(f"handout {size / 1e6:.2f} MB: {drawn} of {charts} charts drawn offline, {len(requested)} requests refused")
    assert charts == sum(len(tour.steps) for tour in tours.TOURS.values()) and drawn == charts
    assert broken == 0 and not errors and not requested
