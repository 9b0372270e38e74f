"""A browser walk that touches everything: every page on both demos, every slider moved, every select
changed, a point of every scatter and map clicked, in headless Chromium against a `streamlit run app.py`.

It records each page's time to first chart and each interaction's wait, and every exception shown on a
page or logged by the server. `tests/test_browser_walk.py` fails on any exception; run as a script it prints
the timings (for a closing note), e.g. on a copy of the demo folders with precomputed views:

    python scripts/app_walk.py [--demo-dir /tmp/demo_copy] [--limit N]

Buttons are not pressed (they start training or a long computation on request, which is what they are for).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app_browser import PAGE_TIMEOUT_MS, AppBrowserError, launch, serve_app, wait_until_idle  # noqa: E402

from prunelab.methods.manidp.config import NAME as MANIDP  # noqa: E402
from prunelab.methods.slimming.config import NAME as SLIMMING  # noqa: E402

CHARTS = ".js-plotly-plot, [data-testid='stVegaLiteChart'], [data-testid='stArrowVegaLiteChart']"
FIRST_VIEW = f"{CHARTS}, [data-testid='stDataFrame']"  # the Runs page opens on its table
PAGES = ("", "lessons", "runs", "live", SLIMMING, "per_image", "similarity", "ablations", "speed")
RUN_PAGES = {"live": None, SLIMMING: SLIMMING, "per_image": MANIDP, "similarity": MANIDP}
IDLE_TIMEOUT_S = 120.0  # an interaction still running after this counts as a problem
SLOW_S = 5.0  # the bar: no page's first chart, no interaction, later than this on a warm server


@dataclass
class Walk:
    """What a walk saw: per page its time to first chart, per interaction its wait, and the problems."""

    first_chart: dict[str, float] = field(default_factory=dict)
    waits: list[tuple[str, str, float]] = field(default_factory=list)  # (page, action, seconds)
    problems: list[str] = field(default_factory=list)

    def slow(self, limit: float = SLOW_S) -> list[str]:
        pages = [f"{page}: first chart after {s:.1f} s" for page, s in self.first_chart.items() if s > limit]
        return pages + [f"{page}: {action} waited {s:.1f} s" for page, action, s in self.waits if s > limit]

    def report(self) -> str:
        lines = ["page | time to first chart (s) | interactions | slowest interaction (s)", "---|---|---|---"]
        for page, seconds in self.first_chart.items():
            waits = [(s, a) for p, a, s in self.waits if p == page and "skipped" not in a]
            slowest = max(waits, default=(0.0, ""))
            lines.append(f"{page} | {seconds:.1f} | {len(waits)} | {slowest[0]:.1f} {slowest[1]}")
        skipped = [f"{p}: {a}" for p, a, _ in self.waits if "skipped" in a]
        return "\n".join(lines + ([f"not done: {'; '.join(skipped)}"] if skipped else []))


def demo_visits() -> list[tuple[str, str]]:
    """(label, URL path) of every page: pages that show one run once on each demo, opened on the demo's lesson run
    (`?run=<id>`, see prunelab.methods.manidp.lesson_runs); the others once, labelled with the first demo (their URL
    names no demo: they pick the dataset inside, and their dataset select is one of the widgets a walk touches)."""
    from prunelab.analysis import results
    from prunelab.methods.manidp import lesson_runs

    visits = []
    for number, folder in enumerate(results.demo_run_dirs()):
        table = results.runs_table([folder])
        demo = folder.name.removesuffix("_runs")
        runs = {MANIDP: lesson_runs.opening_run(table), SLIMMING: None, None: None}
        slim = table[(table["method"] == SLIMMING) & (table["state"] == "done")]
        runs[SLIMMING] = str(slim["path"].iloc[0]) if len(slim) else None
        runs[None] = runs[MANIDP] or runs[SLIMMING]
        for page in PAGES:
            if page not in RUN_PAGES and number > 0:  # the same URL on every demo: visited on the first
                continue
            run = runs[RUN_PAGES[page]] if page in RUN_PAGES else None
            query = f"?run={Path(run).name}" if run else ""
            visits.append((f"{page or 'home'} [{demo}]", f"{page}{query}"))
    return visits


def _problems(page: Any) -> list[str]:
    found = []
    exceptions = page.locator("[data-testid='stException']")
    for i in range(exceptions.count()):
        found.append(exceptions.nth(i).inner_text()[:300])
    return found


def _settle(page: Any, walk: Walk, label: str, action: str, started: float) -> None:
    try:
        wait_until_idle(page, quiet_s=0.6, timeout_s=IDLE_TIMEOUT_S)
    except AppBrowserError:
        walk.problems.append(f"{label}, after {action}: still running after {IDLE_TIMEOUT_S:.0f} s")
    walk.waits.append((label, action, time.perf_counter() - started - 0.6))
    walk.problems += [f"{label}, after {action}: {text}" for text in _problems(page)]


def _act(page: Any, walk: Walk, label: str, action: str, do: Any) -> None:
    started = time.perf_counter()
    try:
        do()
    except Exception as error:  # noqa: BLE001 - a widget that re-rendered away: noted, not fatal
        walk.waits.append((label, f"{action} (skipped: {type(error).__name__})", 0.0))
        page.keyboard.press("Escape")
        return
    _settle(page, walk, label, action, started)


def _widgets(page: Any, walk: Walk, label: str, limit: int) -> None:
    """Move every slider, change every select, multiselect, radio and segmented control (up to `limit` of
    each kind), waiting for the rerun after each."""
    for i in range(min(page.locator("[data-testid='stSlider'] [role='slider']").count(), limit)):
        thumb = page.locator("[data-testid='stSlider'] [role='slider']").nth(i)
        _act(page, walk, label, f"slider {i}", lambda thumb=thumb: (thumb.focus(), thumb.press("ArrowLeft")))
    for testid in ("stSelectbox", "stMultiSelect"):
        for i in range(min(page.locator(f"[data-testid='{testid}']").count(), limit)):
            box = page.locator(f"[data-testid='{testid}']").nth(i)

            def choose(box: Any = box) -> None:  # the option after the highlighted one (a multiselect: added)
                box.scroll_into_view_if_needed(timeout=5000)
                box.locator("input").first.click(timeout=5000)
                page.locator("[role='option']").first.wait_for(timeout=5000)
                page.keyboard.press("ArrowDown")
                page.keyboard.press("Enter")
                page.keyboard.press("Escape")

            _act(page, walk, label, f"{testid} {i}", choose)
    for selector in ("[data-testid='stRadio'] label:not(:has(input:checked))",
                     "[data-testid='stButtonGroup'] button[kind*='Active']:not([aria-checked='true'])"):
        for i in range(min(page.locator(selector).count(), limit)):
            option = page.locator(selector).nth(0)
            _act(page, walk, label, f"option {i}", lambda option=option: option.click(timeout=5000))


# the pixel (relative to the chart) of the first marker of the chart's first scatter trace, SVG or WebGL
# (plotly draws a scatter of over 1,000 points with WebGL, which has no DOM element per point); null if none
_FIRST_MARKER = """(gd) => {
  const trace = (gd._fullData || []).find(t => (t.type === 'scatter' || t.type === 'scattergl')
      && String(t.mode || 'markers').includes('markers') && t.x && t.x.length && t.visible === true);
  if (!trace) return null;
  const layout = gd._fullLayout;
  const xa = layout[trace.xaxis.replace('x', 'xaxis')], ya = layout[trace.yaxis.replace('y', 'yaxis')];
  for (let i = 0; i < trace.x.length; i++) {
    const x = xa.l2p(xa.d2l(trace.x[i])) + xa._offset, y = ya.l2p(ya.d2l(trace.y[i])) + ya._offset;
    if (isFinite(x) && isFinite(y)) return [x, y];
  }
  return null;
}"""


def _points(page: Any, walk: Walk, label: str, limit: int) -> None:
    """Click one point of every scatter (and sub-network map) on the page."""
    clicked = 0
    for i in range(page.locator(".js-plotly-plot").count()):
        if clicked >= limit:
            return
        chart = page.locator(".js-plotly-plot").nth(i)
        try:
            chart.scroll_into_view_if_needed(timeout=5000)
            where = chart.evaluate(_FIRST_MARKER)
        except Exception:  # noqa: BLE001 - redrawn meanwhile: the next chart
            continue
        if where is None:
            continue

        def click(chart: Any = chart, where: list[float] = where) -> None:
            box = chart.bounding_box()
            page.mouse.click(box["x"] + where[0], box["y"] + where[1])

        _act(page, walk, label, f"point of scatter {i}", click)
        clicked += 1


def walk_app(url: str, visits: list[tuple[str, str]], limit: int = 12, shots: Path | None = None,
             touch: Any = None, point_limit: int | None = None) -> Walk:
    """Open every visit's page (after one warm-up request), record its time to first chart, then touch
    every widget and scatter on it (up to `limit` of each kind; only on the visits `touch(label)` is true
    for, when given)."""
    from playwright.sync_api import sync_playwright

    walk = Walk()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url, wait_until="domcontentloaded")  # warm-up: the first request builds the caches
        page.wait_for_selector(FIRST_VIEW, timeout=PAGE_TIMEOUT_MS)
        wait_until_idle(page)
        for label, path in visits:
            started = time.perf_counter()
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            page.wait_for_selector(FIRST_VIEW, timeout=PAGE_TIMEOUT_MS)
            walk.first_chart[label] = time.perf_counter() - started
            _settle(page, walk, label, "opening (until idle)", started)
            walk.problems += [f"{label}: {text}" for text in _problems(page)]
            if touch is None or touch(label):
                _widgets(page, walk, label, limit)
                _points(page, walk, label, limit if point_limit is None else point_limit)
            if shots is not None:
                name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        browser.close()
    return walk


def server_problems(log: Path) -> list[str]:
    """Exceptions the server logged (a traceback, an uncaught app exception)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    return [chunk[:600] for chunk in text.split("\n\n") if "Traceback" in chunk or "Uncaught app exception" in chunk]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-dir", type=Path, help="a folder of <name>_runs demo folders (default: assets/)")
    parser.add_argument("--limit", type=int, default=12, help="widgets of each kind touched per page")
    parser.add_argument("--shots", type=Path, help="save a screenshot of each page here")
    parser.add_argument("--only", help="walk only the pages whose label holds this text (e.g. per_image)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        env = {"PRUNELAB_NO_DEMO": "0", "PRUNELAB_RUNS_DIR": str(base / "runs")}
        if args.demo_dir is not None:
            env["PRUNELAB_DEMO_DIR"] = str(args.demo_dir.resolve())
        import os

        os.environ.update(env)  # demo_visits reads the same demo folders as the server
        (base / "runs").mkdir()
        with serve_app(base, env) as url:
            visits = [visit for visit in demo_visits() if args.only is None or args.only in visit[0]]
            walk = walk_app(url, visits, args.limit, args.shots)
        problems = walk.problems + server_problems(next(base.glob("streamlit-*.log"), base / "none"))
    print(walk.report())
    for line in walk.slow():
        print("slow:", line)
    for line in problems:
        print("PROBLEM:", line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
