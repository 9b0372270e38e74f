"""App responsiveness: seconds to render every page with AppTest, and `streamlit run` start-up time.

The runs folder holds real benchmark runs (baseline, slimming, and a ManiDP run whose per-image
table has 10,000 records). Each page the app registers (app_components/shell.py) is rendered headless with
`streamlit.testing.v1.AppTest`:

- cold: a new AppTest after `st.cache_data.clear()` / `st.cache_resource.clear()` (first visit after
  a run changed on disk: every file is read again);
- warm: a second `run()` of the same AppTest (a rerun after a widget change, caches filled);
- first visit: one render in a fresh Python process (the page's imports included, as for the first
  visitor after the server started).

`app_start_s`: from launching `python -m streamlit run app.py` (headless, free port) until
`/_stcore/health` answers 200.

In headless Chromium (Playwright, /usr/bin/chromium) on the shipped demos: seconds from the first request to
a fresh server until the Overview's first chart is drawn, and every page's first chart on the warm server
(median of 3) reloaded by URL (a new session each time: the front end loads again) and reached by a click
in the sidebar from the Runs page (in-app navigation, one session: what a user does), against the targets of
issue 32 (3 s and 1 s): `--browser-only` measures just these.

    python benchmarks/bench_app.py --quick --out /tmp/app.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import bench_manidp
import bench_slimming
import common

sys.path.insert(0, str(common.ROOT / "scripts"))
from app_browser import serve_app  # noqa: E402

SIZES = {False: {"cold": 3, "warm": 2, "starts": 3}, True: {"cold": 5, "warm": 5, "starts": 5}}
START_TIMEOUT_S = 120.0


def app_pages() -> list[str]:
    """Page files the app registers (`PAGES` of app_components/shell.py), in navigation order."""
    from app_components.shell import PAGES

    return [page.file for page in PAGES]


@contextlib.contextmanager
def app_environment(runs_dir: Path) -> Iterator[None]:
    """Point the app at `runs_dir` (demo runs hidden), from the repository root, like the page tests."""
    saved = {k: os.environ.get(k) for k in ("PRUNELAB_RUNS_DIR", "PRUNELAB_NO_DEMO")}
    cwd = Path.cwd()
    os.environ.update({"PRUNELAB_RUNS_DIR": str(runs_dir), "PRUNELAB_NO_DEMO": "1"})
    os.chdir(common.ROOT)
    try:
        yield
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def render_page(page: str, cold: int, warm: int) -> dict[str, Any]:
    """Cold and warm render seconds of one page; exceptions on the page are reported, not raised."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    path = str(common.ROOT / page)
    cold_s, warm_s, errors = [], [], []
    for _ in range(cold):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(path, default_timeout=300)
        start = time.perf_counter()
        at.run()
        cold_s.append(time.perf_counter() - start)
        errors += [str(e.value)[:300] for e in at.exception]
        for _ in range(warm):
            start = time.perf_counter()
            at.run()
            warm_s.append(time.perf_counter() - start)
    return {"cold": common.summarize(cold_s), "warm": common.summarize(warm_s), "errors": errors}


FIRST_VISIT_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[2])
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
start = time.perf_counter()
at.run()
print("SECONDS", time.perf_counter() - start, len(at.exception))
"""


def first_visit(page: str, runs_dir: Path) -> float | None:
    """Seconds of a page's first render in a FRESH Python process (its imports included: the first
    visit after the server started), measured inside that process; None if it failed."""
    env = {**os.environ, "PRUNELAB_RUNS_DIR": str(runs_dir), "PRUNELAB_NO_DEMO": "1"}
    command = [sys.executable, "-c", FIRST_VISIT_SCRIPT, str(common.ROOT / page), str(common.ROOT)]
    done = subprocess.run(command, cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith("SECONDS"):
            _, seconds, errors = line.split()
            return float(seconds) if errors == "0" else None
    return None


def app_start_once(runs_dir: Path) -> float:
    """Seconds from launching `streamlit run app.py` until /_stcore/health answers 200."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs, serve_app(
            Path(logs), {"PRUNELAB_RUNS_DIR": str(runs_dir), "PRUNELAB_NO_DEMO": "1"},
            poll_s=0.05, timeout_s=START_TIMEOUT_S):
        return time.perf_counter() - start


CHART = "[data-testid='stPlotlyChart'] .main-svg"  # a drawn Plotly chart
TARGETS_S = {"overview_first_chart": 3.0, "page_first_chart_warm": 1.0}  # issue 32, part 6


def _first_chart_s(page: Any, url: str, timeout_ms: float) -> float | None:
    """Seconds from requesting `url` until its first Plotly chart is drawn; None when the page draws none
    within `timeout_ms` (a page whose first view is a table or a message)."""
    start = time.perf_counter()
    page.goto(url)
    try:
        page.locator(CHART).first.wait_for(state="visible", timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError: no chart on this page's first view
        return None
    return time.perf_counter() - start


def _navigate_s(page: Any, url_path: str, timeout_ms: float, via: str = "runs") -> float | None:
    """Seconds from clicking the sidebar's link to `url_path` (in-app navigation: one session, the front end
    loaded) until that page's first chart is drawn; None when it draws none within `timeout_ms`. It starts
    from the page `via`, which draws no chart, so the first chart seen is the new page's."""
    from app_browser import wait_until_idle

    def link(path: str) -> Any:
        return page.locator(f"[data-testid='stSidebarNav'] a[href$='/{path}']").first

    link(via).click()
    page.wait_for_url(lambda url: urlparse(url).path.endswith(f"/{via}"), timeout=timeout_ms)
    wait_until_idle(page)
    if page.locator(CHART).count():
        raise RuntimeError(f"the page {via!r} draws a chart: it cannot tell the next page's first chart")
    start = time.perf_counter()
    link(url_path).click()
    try:
        page.locator(CHART).first.wait_for(state="visible", timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError: no chart on this page's first view
        return None
    return time.perf_counter() - start


def browser_benchmark(repeats: int = 3, timeout_ms: float = 30_000) -> dict[str, Any]:
    """The shipped demos in headless Chromium on a fresh `streamlit run app.py`: seconds from the first
    request to the Overview's first chart (a cold server), then, for every page, from its request to its first
    chart on the warm server (median of `repeats`), against TARGETS_S. An empty runs folder beside the demos."""
    from app_browser import launch, wait_until_idle
    from playwright.sync_api import sync_playwright

    from app_components.shell import PAGES

    with tempfile.TemporaryDirectory() as tmp:
        runs, logs = Path(tmp) / "runs", Path(tmp)
        runs.mkdir()
        env = {"PRUNELAB_RUNS_DIR": str(runs), "PRUNELAB_CACHE_DIR": str(Path(tmp) / "cache")}
        with serve_app(logs, env, timeout_s=START_TIMEOUT_S) as url, sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            overview = _first_chart_s(page, url, timeout_ms)
            wait_until_idle(page)
            warm: dict[str, dict[str, Any]] = {}
            for entry in PAGES:
                seconds = []
                for _ in range(repeats):
                    seconds.append(_first_chart_s(page, f"{url}/{entry.url_path}", timeout_ms))
                    wait_until_idle(page)
                    if seconds[0] is None:  # a page whose first view draws no chart (Runs): once is enough
                        break
                drawn = [s for s in seconds if s is not None]
                warm[entry.url_path] = {"median": common.summarize(drawn)["median"] if drawn else None,
                                        "runs": seconds}
                common.log(f"browser {entry.url_path}: first chart warm {warm[entry.url_path]['median']} s")
            page.goto(url)  # in-app navigation: the sidebar, page after page, in one session
            page.locator(CHART).first.wait_for(state="visible", timeout=timeout_ms)
            wait_until_idle(page)
            charted = [entry for entry in PAGES[1:] if warm[entry.url_path]["median"] is not None]
            clicks: dict[str, list[float | None]] = {entry.url_path: [] for entry in charted}
            for _ in range(repeats):  # each page with a chart, reached from the Runs page (no chart)
                for entry in charted:
                    clicks[entry.url_path].append(_navigate_s(page, entry.url_path, timeout_ms))
                    wait_until_idle(page)
            navigation = {name: (common.summarize([s for s in seconds if s is not None])["median"]
                                 if any(s is not None for s in seconds) else None) for name, seconds in clicks.items()}
            common.log(f"browser in-app navigation, first chart: {navigation}")
            browser.close()
    common.log(f"browser overview: first chart {overview} s from the first request")
    return {"browser_overview_first_chart_s": overview,
            "browser_page_first_chart_warm_s": {name: r["median"] for name, r in warm.items()},
            "browser_detail": warm, "browser_navigation_first_chart_s": navigation,
            "browser_navigation_detail": clicks, "browser_targets_s": TARGETS_S}


def app_benchmark(dataset: str, full: bool, work: common.WorkDir, seed: int = 0) -> dict[str, Any]:
    sizes = SIZES[full]
    manidp = bench_manidp.ensure_manidp_run(work, dataset, full, seed)
    bench_slimming.ensure_slimming_run(work, dataset, full, seed)
    records = len(__import__("pandas").read_parquet(manidp.file("per_image.parquet")))
    runs_dir = work.store.root
    load_before = common.load_average()
    pages: dict[str, Any] = {}
    with app_environment(runs_dir):
        for page in app_pages():
            if not (common.ROOT / page).is_file():
                continue
            pages[page] = render_page(page, sizes["cold"], sizes["warm"])
            pages[page]["first_visit_fresh_process"] = first_visit(page, runs_dir)
            common.log(f"page {page}: cold {common.fmt(pages[page]['cold'])} s, warm "
                       f"{common.fmt(pages[page]['warm'])} s, first visit "
                       f"{pages[page]['first_visit_fresh_process']} s, errors {len(pages[page]['errors'])}")
    starts = [app_start_once(runs_dir) for _ in range(sizes["starts"])]
    common.log(f"app start: {common.fmt(common.summarize(starts))} s")
    return {
        "page_render_s": {page: result["cold"]["median"] for page, result in pages.items()},
        "page_render_warm_s": {page: result["warm"]["median"] for page, result in pages.items()},
        "page_render_first_visit_s": {page: r["first_visit_fresh_process"] for page, r in pages.items()},
        "page_render_detail": pages, "page_render_per_image_records": records,
        "page_render_runs": sorted(p.name for p in runs_dir.iterdir() if p.is_dir()),
        "app_start_s": common.summarize(starts)["median"], "app_start_s_stats": common.summarize(starts),
        "app_load_average": [load_before, common.load_average()],
    }


def main() -> None:
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--browser-only", action="store_true",
                        help="only the shipped demos in headless Chromium (no bench runs, no AppTest)")
    args = parser.parse_args()
    common.apply_threads(args.threads, args.clock)
    result: dict[str, Any] = {}
    if not args.browser_only:
        with common.WorkDir(args.work) as work:
            result = app_benchmark(args.dataset, args.full, work, args.seed)
    result.update(browser_benchmark())
    result["provenance"] = common.provenance()
    print({k: v for k, v in result.items()
           if k in ("page_render_s", "app_start_s", "browser_overview_first_chart_s",
                    "browser_page_first_chart_warm_s")})
    if args.out:
        common.write_json(args.out, result)


if __name__ == "__main__":
    main()
