"""Clicks on the shipped demos in headless Chromium: a point of the Per-image page's MACs-against-complexity
scatter opens that image (issue 31: the click raised `KeyError: 0` and the rest of the page vanished).

One server over an empty runs folder with the bundled demos visible. The point is clicked where Plotly
draws it (its pixel position read from the chart's own axes, as a reader's mouse would find it), on the
shapes demo and on the CIFAR-10 demo. Skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prunelab import results
from tests.test_browser import CHROMIUM, PAGE_TIMEOUT_MS, _serve_app, launch, wait_until_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout"),
]

SCATTER = ".st-key-pi_scatter .js-plotly-plot"
RUN_PICKER = ".st-key-pi_run input[role='combobox']"
IMAGE_PICKER = ".st-key-pi_image input[role='combobox']"
IDLE_TIMEOUT_S = 300.0  # the page computes its what-if on a shared 2-core CPU
# pixel position (page coordinates) and custom data of the point furthest right (the highest loss: where
# points do not overlap, so the click lands on it alone)
POINT_JS = """(gd) => {
  let best = null;
  gd._fullData.forEach((trace) => trace.x.forEach((x, i) => {
    if (best === null || x > best.trace.x[best.i]) best = {trace, i};
  }));
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: box.left + xa.l2p(xa.d2l(best.trace.x[best.i])), y: box.top + ya.l2p(ya.d2l(best.trace.y[best.i])),
          index: Number(best.trace.customdata[best.i][0])};
}"""


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("clicks-server")
    runs = base / "runs"
    runs.mkdir()
    with _serve_app(base, runs_dir=runs, demo=True, cache_dir=base / "cache") as url:
        yield url


def _exceptions(page: Any) -> list[str]:
    shown = page.locator("[data-testid='stException']")
    return [shown.nth(i).inner_text()[:500] for i in range(shown.count())]


@pytest.mark.parametrize("dataset", ["shapes", "cifar10-demo"])
def test_clicking_a_point_of_the_complexity_scatter_opens_its_image(demo_url: str, dataset: str,
                                                                    tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{demo_url}/per_image", wait_until="domcontentloaded")
        page.wait_for_selector(SCATTER, timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, timeout_s=IDLE_TIMEOUT_S)
        if f" {dataset} · " not in page.locator(RUN_PICKER).input_value():
            page.locator(RUN_PICKER).fill(f"{dataset} · manidp")
            page.locator("[role='option']").first.click()
            time.sleep(1)
            wait_until_idle(page, timeout_s=IDLE_TIMEOUT_S)
        assert f" {dataset} · " in page.locator(RUN_PICKER).input_value()
        scatter = page.locator(SCATTER)
        scatter.scroll_into_view_if_needed()
        wait_until_idle(page, timeout_s=IDLE_TIMEOUT_S)
        point = scatter.evaluate(POINT_JS)
        page.mouse.click(point["x"], point["y"])
        time.sleep(1)
        wait_until_idle(page, timeout_s=IDLE_TIMEOUT_S)
        page.screenshot(path=str(tmp_path / f"per-image-click-{dataset}.png"))
        errors = _exceptions(page)
        chosen = page.locator(IMAGE_PICKER).input_value() if page.locator(IMAGE_PICKER).count() else ""
        browser.close()
    assert not errors, errors
    assert chosen.strip() == f"#{point['index']}", (chosen, point)
