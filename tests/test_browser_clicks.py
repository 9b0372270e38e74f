"""Clicks and layout on the shipped demos in headless Chromium (issue 31):

- a point of the Per-image page's MACs-against-complexity scatter opens that image (the click raised
  `KeyError: 0` and the rest of the page vanished);
- a gallery holds exactly the chosen number of images per row (8 rendered 7 + 1), and no image caption breaks
  inside a word ("automo bile"), on the Per-image gallery and the CIFAR-10 Overview's strip.

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

from prunelab.analysis import results
from tests.test_browser import CHROMIUM, PAGE_TIMEOUT_MS, _serve_app, launch, wait_until_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(not results.DEMO_RUNS_DIR.is_dir(), reason="the bundled demo is not in this checkout"),
]

SCATTER = ".st-key-pi_scatter .js-plotly-plot"
RUN_PICKER = ".st-key-pi_run input[role='combobox']"
IMAGE_PICKER = ".st-key-pi_image input[role='combobox']"
IDLE_TIMEOUT_S = 300.0  # the page computes its what-if on a shared 2-core CPU
QUIET_S = 0.6  # idle: no script running for this long (each wait follows a chart drawn or a 1 s pause after a click)
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


def test_clicking_a_point_of_the_complexity_scatter_opens_its_image(demo_url: str, tmp_path: Path) -> None:
    """On each demo's ManiDP run in turn (one page, the run picker switched), the point clicked is the image shown."""
    from playwright.sync_api import sync_playwright

    clicked = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{demo_url}/per_image", wait_until="domcontentloaded")
        page.wait_for_selector(SCATTER, timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
        for dataset in ("shapes", "cifar10-demo"):
            if f" {dataset} · " not in page.locator(RUN_PICKER).input_value():
                page.locator(RUN_PICKER).fill(f"{dataset} · manidp")
                page.locator("[role='option']").first.click()
                time.sleep(1)
                wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
            assert f" {dataset} · " in page.locator(RUN_PICKER).input_value()
            scatter = page.locator(SCATTER)
            scatter.scroll_into_view_if_needed()
            wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
            point = scatter.evaluate(POINT_JS)
            page.mouse.click(point["x"], point["y"])
            time.sleep(1)
            wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
            errors = _exceptions(page)
            chosen = page.locator(IMAGE_PICKER).input_value() if page.locator(IMAGE_PICKER).count() else ""
            if errors or chosen.strip() != f"#{point['index']}":
                page.screenshot(path=str(tmp_path / f"per-image-click-{dataset}.png"))
            clicked[dataset] = (errors, chosen.strip(), f"#{point['index']}")
        browser.close()
    for dataset, (errors, chosen, wanted) in clicked.items():
        assert not errors, (dataset, errors)
        assert chosen == wanted, (dataset, chosen, wanted)


# captions (text nodes of every image caption) whose lines break between two letters of a word: a line ends
# only at a space or at the zero-width space the captions put after their arrow
BROKEN_WORDS_JS = """() => {
  const broken = [];
  document.querySelectorAll("[data-testid='stImageCaption'] p").forEach((p) => {
    const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent, range = document.createRange();
      let top = null;
      for (let i = 0; i < text.length; i++) {
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect || !rect.width) continue;
        const after = text[i - 1];  // the last character of the line above, when this one starts a line
        if (top !== null && rect.top > top + 2 && !/\\s/.test(after) && after !== '\\u200b') broken.push(text);
        top = rect.top;
      }
    }
  });
  return broken;
}"""
FIRST_ROW_JS = """(e) => Array.from(e.querySelectorAll("[data-testid='stImageContainer']"))
  .map((c) => Math.round(c.getBoundingClientRect().top))"""


def _per_row(page: Any, gallery: int) -> list[int]:
    """How many images each row of the page's `gallery`-th image list holds, top to bottom."""
    tops = page.locator("[data-testid='stImage']").nth(gallery).evaluate(FIRST_ROW_JS)
    return [tops.count(top) for top in sorted(set(tops))]


def test_a_gallery_holds_the_chosen_number_per_row_and_no_caption_breaks_a_word(demo_url: str,
                                                                                 tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{demo_url}/per_image", wait_until="domcontentloaded")
        page.wait_for_selector(SCATTER, timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
        at_8 = _per_row(page, 1)  # the cheapest images (the selected image's comes first)
        page.locator(".st-key-pi_count input[type='range']").focus()
        page.keyboard.press("End")  # the slider's largest choice
        time.sleep(1)
        wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
        chosen = int(page.locator(".st-key-pi_count input[type='range']").input_value())
        at_most = _per_row(page, 1)
        page.screenshot(path=str(tmp_path / "gallery.png"))
        broken_gallery = page.evaluate(BROKEN_WORDS_JS)
        page.goto(demo_url, wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
        page.get_by_text("cifar10-demo", exact=True).first.click()
        time.sleep(1)
        wait_until_idle(page, quiet_s=QUIET_S, timeout_s=IDLE_TIMEOUT_S)
        page.screenshot(path=str(tmp_path / "home-cifar10.png"))
        broken_strip = page.evaluate(BROKEN_WORDS_JS)
        strip_captions = page.locator("[data-testid='stImageCaption']").count()
        browser.close()
    assert at_8 == [8], at_8
    assert at_most == [chosen], (chosen, at_most)
    assert not broken_gallery, broken_gallery
    assert strip_captions == 12 and not broken_strip, broken_strip
