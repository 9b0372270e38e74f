"""Screenshots of a demo's pages for the README, taken in headless Chromium from a fresh server.

    python scripts/screenshots.py --dataset cifar10-demo --out docs/images

The server reads an empty runs folder and the bundled demos (assets/*_runs). For the demo whose dataset
is `--dataset` (as the run pickers name it: `shapes`, or a folder dataset's folder name such as
`cifar10-demo`) it saves:
- `<prefix>-home.png`: the Overview with that demo chosen (accuracy against MACs, the image strip);
- `<prefix>-per-image.png`: per-image MACs against complexity, for the demo's ManiDP run `--run`;
- `<prefix>-gallery.png`: that run's cheapest and costliest test images;
- `<prefix>-subnetworks.png`: the UMAP of its gate vectors (the Similarity page).
`<prefix>` is the dataset name. Each shot is the part of the page between two headings, so a shot shows
one view. Needs /usr/bin/chromium and Playwright (the test requirements).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_browser import (  # noqa: E402
    CHROMIUM,
    PAGE_TIMEOUT_MS,
    AppBrowserError,
    launch,
    serve_app,
    wait_until_idle,
)

VIEWPORT = {"width": 1400, "height": 900}
TALL = {"width": 1400, "height": 4200}  # the app scrolls inside its own container: render a page whole
# (file name suffix, url path, run picker key or None, heading the shot starts at, heading it stops before)
SHOTS = [
    ("per-image", "per_image", "pi_run", "MACs against complexity", "One image"),
    ("gallery", "per_image", "pi_run", "Gallery: images ranked by MACs", "What if the target density"),
    ("subnetworks", "similarity", "sim_run", "Sub-network space", None),
]


def choose(page: Any, key: str, text: str) -> None:
    """Pick the option containing `text` in the selectbox with widget key `key` (typed, then Enter)."""
    box = page.locator(f".st-key-{key} input")
    box.click()
    box.fill(text)
    page.locator("[role='option']", has_text=text).first.click(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)


def heading_top(page: Any, text: str) -> float:
    heading = page.locator("h1, h2, h3", has_text=text).first
    heading.wait_for(timeout=PAGE_TIMEOUT_MS)
    box = heading.bounding_box()
    if box is None:
        raise AppBrowserError(f"heading {text!r} is not on the page")
    return float(box["y"])


def section(page: Any, path: Path, start: str, stop: str | None) -> None:
    """Save the part of the page from heading `start` down to heading `stop` (or the page's end)."""
    top = heading_top(page, start) - 8
    if stop:
        bottom = heading_top(page, stop) - 8
    else:  # the page's last element
        last = page.locator("[data-testid='stElementContainer']").last.bounding_box()
        bottom = float(last["y"] + last["height"]) + 16
    page.screenshot(path=str(path), clip={"x": 0, "y": top, "width": TALL["width"], "height": bottom - top})


def take(url: str, dataset: str, run: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot", timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        choice = page.locator(".st-key-home_dataset button", has_text=dataset)
        if choice.count():  # several demos: the home page offers a choice
            choice.first.click()
            wait_until_idle(page)
        saved.append(out / f"{dataset}-home.png")
        page.screenshot(path=str(saved[-1]))
        page.set_viewport_size(TALL)
        for name, path, key, start, stop in SHOTS:
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            page.wait_for_selector(f".st-key-{key}", timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(page)
            choose(page, key, f"{run} · {dataset}")
            saved.append(out / f"{dataset}-{name}.png")
            section(page, saved[-1], start, stop)
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="cifar10-demo", help="the demo's dataset as pickers name it")
    parser.add_argument("--run", default="demo-manidp-both-s0", help="the ManiDP run shown (its name)")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "runs").mkdir()
        env = {"PRUNELAB_RUNS_DIR": str(base / "runs"), "PRUNELAB_NO_DEMO": "0",
               "PRUNELAB_CACHE_DIR": str(base / "cache")}
        with serve_app(base, env) as url:
            for path in take(url, args.dataset, args.run, args.out.resolve()):
                print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
