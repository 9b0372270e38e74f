"""A class on one machine: the app as a read-only viewer (`PRUNELAB_VIEWER=1`) on the shipped demos, serving many
browser sessions at once.

A fresh headless `streamlit run app.py` (viewer mode, the demos in assets/demo_runs and assets/cifar10_runs, an
empty runs folder, a fresh cache folder) is opened first by one session, the lecturer's; once the server is idle
again (the app compiles the UMAP kernels in the background once: a lecturer's visit before class lets it finish), by
one more session alone (a warm server's time for one student, under the same machine load), then by `--sessions`
sessions at once (20: a room of students; `--spread S` starts them evenly over S seconds instead, a room joining
over a minute), each a context of one headless Chromium (Playwright, /usr/bin/chromium).
Every session opens the Overview by its URL and waits for its first chart, goes to the Runs page by the sidebar
(the runs table: no chart there), then to the Per-image MACs page by the sidebar and waits for its first chart: the
seconds from the request (or the click) to a drawn chart are each session's time to first chart.

The server's memory is the resident set size (RSS, from /proc) of its process tree: idle after start, after the
lecturer's session, its peak while the sessions load (sampled every 0.25 s), with every session open and idle, and
after they are closed. A session's cost is (RSS with every session open - RSS after the lecturer's) / sessions, and
at the peak (peak - RSS after the lecturer's) / sessions; the server's CPU seconds (user + system, /proc) over the
same span are given per session too: what sizes a class, whatever else the machine runs.

The browsers run on the same machine as the server and share its cores, whereas a class's browsers run on the
students' own machines. `--browser-nice N` (default 10) starts them N nice levels below the server, so each browser
process gets less CPU than the server (twenty of them together still outweigh it); their own work (loading and
compiling Streamlit's front end, drawing) waits for the cores they share. The times to first chart are therefore an
upper bound for a class; `--browser-nice 0` puts the browsers level with the server: the worst case.

`--clients protocol` leaves the browsers out: each session is a WebSocket to the server speaking Streamlit's own
protocol (`protocol_session`: the rerun requests a browser sends for the three pages, and the server's messages read
until each script has finished), so the times are the server's alone, from a page's request to its first chart
element leaving the server: what a class sees when the students' browsers run on their own machines, plus the few
seconds their own browser takes to load the front end and draw (the browser run's one session alone gives that).

    nice -n 10 python benchmarks/bench_viewer.py --sessions 20 --out /tmp/viewer.json
    python benchmarks/bench_viewer.py --sessions 20 --clients protocol --out /tmp/viewer-server.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import common

sys.path.insert(0, str(common.ROOT / "scripts"))
from app_browser import CHROMIUM, CHROMIUM_ARGS, serve_app_process  # noqa: E402

CHART = "[data-testid='stPlotlyChart'] .main-svg"  # a drawn Plotly chart
TABLE = "[data-testid='stDataFrame']"
SAMPLE_S = 0.25
SETTLE_S = 5.0  # after the sessions have drawn their charts: let the server finish what it started
IDLE_CPU_S = 0.1  # the server is idle when its tree used less CPU than this over IDLE_WINDOW_S
IDLE_WINDOW_S = 2.0
IDLE_WAIT_S = 300.0
PAGE = "per_image"


# ----------------------------------------------------------------------------------------------
# memory and CPU of a process tree, from /proc


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (children, their children, ...), from /proc/<pid>/stat's parent ids."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """Resident set size of `pid`'s process tree in MiB (VmRSS of each process, summed)."""
    return sum(_status_kib(child, "VmRSS") for child in process_tree(pid)) / 1024


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process tree of `pid` has used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for child in process_tree(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


async def server_idle(pid: int) -> float:
    """Wait until the server's tree stays idle for IDLE_WINDOW_S (after the lecturer's session: the background
    compile of the UMAP kernels the app starts once, as a lecturer's early visit would have let it finish), at most
    IDLE_WAIT_S; returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < IDLE_WAIT_S:
        before = tree_cpu_s(pid)
        await asyncio.sleep(IDLE_WINDOW_S)
        if tree_cpu_s(pid) - before < IDLE_CPU_S:
            break
    return time.perf_counter() - started


@contextmanager
def peak_rss(pid: int) -> Iterator[dict[str, float]]:
    """The highest tree RSS of `pid` (MiB) while the block runs, sampled every SAMPLE_S seconds."""
    held = {"peak_mib": tree_rss_mib(pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            held["peak_mib"] = max(held["peak_mib"], tree_rss_mib(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------------------------
# one session


async def session(browser: Any, url: str, timeout_ms: float, delay_s: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """One student, arriving `delay_s` seconds late: the Overview by its URL, the Runs page, then the Per-image page
    by the sidebar; returns the browser context (left open) and the seconds to each page's first chart from its own
    request or click (None and the error when it failed)."""
    await asyncio.sleep(delay_s)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(timeout_ms)
    context.set_default_navigation_timeout(timeout_ms)
    page = await context.new_page()
    times: dict[str, Any] = {"overview_s": None, f"{PAGE}_s": None, "error": None}

    def link(path: str) -> Any:
        return page.locator(f"[data-testid='stSidebarNav'] a[href$='/{path}']").first

    try:
        start = time.perf_counter()
        await page.goto(url, wait_until="commit")  # the chart is what is waited for, not every script's load
        await page.locator(CHART).first.wait_for(state="visible", timeout=timeout_ms)
        times["overview_s"] = time.perf_counter() - start
        await link("runs").click()
        await page.locator(TABLE).first.wait_for(state="visible", timeout=timeout_ms)
        await page.locator(CHART).first.wait_for(state="detached", timeout=timeout_ms)  # the Overview's is gone
        start = time.perf_counter()
        await link(PAGE).click()
        await page.locator(CHART).first.wait_for(state="visible", timeout=timeout_ms)
        times[f"{PAGE}_s"] = time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 - a session that times out is reported, the others go on
        times["error"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return context, times


def rerun_request(page: str) -> bytes:
    """The message a browser sends to run a page (`page`: its URL path, '' for the Overview): Streamlit's BackMsg
    with a rerun_script request, as its front end sends on load and on a sidebar link."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    message.rerun_script.page_name = page
    return message.SerializeToString()


async def run_page(socket: Any, page: str, timeout_s: float) -> float | None:
    """Ask the server to run `page` over an open session's WebSocket and read its messages until the script has
    finished; returns the seconds to its first Plotly chart element (None when it drew none)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    started, first_chart = time.perf_counter(), None
    await socket.send(rerun_request(page))
    while True:
        message = ForwardMsg()
        message.ParseFromString(await asyncio.wait_for(socket.recv(), timeout_s))
        kind = message.WhichOneof("type")
        if (first_chart is None and kind == "delta" and message.delta.WhichOneof("type") == "new_element"
                and message.delta.new_element.WhichOneof("type") == "plotly_chart"):
            first_chart = time.perf_counter() - started
        if kind == "script_finished":
            return first_chart


async def protocol_session(url: str, timeout_s: float, delay_s: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """One student as the server sees it, arriving `delay_s` seconds late: a WebSocket to Streamlit's endpoint
    that asks for the Overview, the Runs page and the Per-image page in turn, as a browser does; returns the socket
    (left open) and the seconds from each request to the page's first chart element leaving the server. What the
    student's own browser adds (loading the front end, drawing) is left out: it runs on the student's machine."""
    import websockets

    await asyncio.sleep(delay_s)
    times: dict[str, Any] = {"overview_s": None, f"{PAGE}_s": None, "error": None}
    socket = None
    try:
        socket = await websockets.connect(url.replace("http", "ws", 1) + "/_stcore/stream",
                                          subprotocols=["streamlit"], max_size=None, open_timeout=timeout_s)
        times["overview_s"] = await run_page(socket, "", timeout_s)
        await run_page(socket, "runs", timeout_s)
        times[f"{PAGE}_s"] = await run_page(socket, PAGE, timeout_s)
    except Exception as error:  # noqa: BLE001 - a session that times out is reported, the others go on
        times["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return _Closing(socket), times


class _Closing:
    """What `class_of` closes after the wave: a protocol session's socket (None when it never opened)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


def niced_chromium(folder: Path, steps: int) -> Path:
    """/usr/bin/chromium, or with `steps` > 0 a launcher in `folder` that starts it `steps` nice levels below this
    process (the server's level): the browsers then take the CPU the server leaves."""
    if steps == 0:
        return CHROMIUM
    launcher = folder / "chromium-niced"
    launcher.write_text(f'#!/bin/sh\nexec nice -n {steps} {CHROMIUM} "$@"\n')
    launcher.chmod(0o755)
    return launcher


class Browsers:
    """Students with browsers: one headless Chromium (`chromium`), a context per session (`session`)."""

    def __init__(self, url: str, timeout_ms: float, chromium: Path) -> None:
        self.url, self.timeout_ms, self.chromium = url, timeout_ms, chromium

    async def __aenter__(self) -> Browsers:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(executable_path=str(self.chromium),
                                                                args=CHROMIUM_ARGS, headless=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._browser.close()
        await self._playwright.stop()

    async def open(self, delay_s: float = 0.0) -> tuple[Any, dict[str, Any]]:
        return await session(self._browser, self.url, self.timeout_ms, delay_s)


class ProtocolClients:
    """Students as the server sees them, their browsers elsewhere: each a WebSocket speaking Streamlit's own protocol
    (`protocol_session`)."""

    def __init__(self, url: str, timeout_ms: float) -> None:
        self.url, self.timeout_s = url, timeout_ms / 1000

    async def __aenter__(self) -> ProtocolClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def open(self, delay_s: float = 0.0) -> tuple[Any, dict[str, Any]]:
        return await protocol_session(self.url, self.timeout_s, delay_s)


async def class_of(clients: Browsers | ProtocolClients, server_pid: int, sessions: int,
                   spread_s: float = 0.0) -> dict[str, Any]:
    """The lecturer's session, then `sessions` at once (or started evenly over `spread_s` seconds); memory and CPU
    of the server around them."""
    memory: dict[str, float] = {"idle_mib": tree_rss_mib(server_pid)}
    async with clients:
        lecturer, first = await clients.open()
        waited = await server_idle(server_pid)
        cpu_alone = tree_cpu_s(server_pid)
        student, alone = await clients.open()
        cpu_alone = tree_cpu_s(server_pid) - cpu_alone
        await student.close()
        await server_idle(server_pid)
        memory["after_lecturer_mib"] = tree_rss_mib(server_pid)
        common.log(f"lecturer's session: {first}; the server idle {waited:.0f} s later; one more alone: {alone} "
                   f"({cpu_alone:.1f} CPU s of the server); server RSS {memory['idle_mib']:.0f} -> "
                   f"{memory['after_lecturer_mib']:.0f} MiB")
        cpu_before, load_before = tree_cpu_s(server_pid), common.load_average()
        started = time.perf_counter()
        with peak_rss(server_pid) as peak:
            opened = await asyncio.gather(*(clients.open(spread_s * i / sessions) for i in range(sessions)))
            all_drawn_s = time.perf_counter() - started
            await asyncio.sleep(SETTLE_S)
        memory["peak_while_loading_mib"] = peak["peak_mib"]
        memory["with_sessions_open_mib"] = tree_rss_mib(server_pid)
        cpu_s = tree_cpu_s(server_pid) - cpu_before
        load_after = common.load_average()
        for context, _ in opened:
            await context.close()
        await lecturer.close()
        await asyncio.sleep(2 * SETTLE_S)
        memory["after_closing_mib"] = tree_rss_mib(server_pid)
    times = [found for _, found in opened]
    memory["per_session_mib"] = (memory["with_sessions_open_mib"] - memory["after_lecturer_mib"]) / sessions
    memory["per_session_at_peak_mib"] = (memory["peak_while_loading_mib"] - memory["after_lecturer_mib"]) / sessions
    drawn = {key: [t[key] for t in times if t[key] is not None] for key in ("overview_s", f"{PAGE}_s")}
    return {
        "sessions": sessions, "spread_s": spread_s, "lecturer_first_chart_s": first,
        "one_session_alone_first_chart_s": alone,
        "server_cpu_s_one_session_alone": cpu_alone, "server_idle_after_lecturer_s": waited, "server_rss": memory,
        "first_chart_s": {key: common.summarize(values) for key, values in drawn.items()},
        "sessions_failed": [t["error"] for t in times if t["error"]],
        "all_sessions_drawn_s": all_drawn_s, "server_cpu_s": cpu_s, "server_cpu_s_per_session": cpu_s / sessions,
        "load_average": [load_before, load_after], "per_session": times,
    }


def viewer_benchmark(sessions: int, timeout_s: float, browser_nice: int, spread_s: float = 0.0,
                     clients: str = "browser") -> dict[str, Any]:
    """A fresh viewer server on the shipped demos (an empty runs folder, a fresh cache folder) and `class_of`: the
    sessions in browsers `browser_nice` levels below the server, or (`clients` "protocol") as WebSocket clients."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        env = {"PRUNELAB_VIEWER": "1", "PRUNELAB_RUNS_DIR": str(runs), "PRUNELAB_CACHE_DIR": str(Path(tmp) / "cache"),
               "PRUNELAB_NO_DEMO": "0"}
        with serve_app_process(Path(tmp), env) as (url, server):
            time.sleep(2.0)  # the server answers health checks before it has settled
            kind = (ProtocolClients(url, timeout_s * 1000) if clients == "protocol"
                    else Browsers(url, timeout_s * 1000, niced_chromium(Path(tmp), browser_nice)))
            result = asyncio.run(class_of(kind, server.pid, sessions, spread_s))
    return {**result, "clients": clients, "browser_nice": browser_nice if clients == "browser" else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions opened at once (default 20)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="seconds over which the sessions start, evenly (default 0: all at once)")
    parser.add_argument("--clients", choices=["browser", "protocol"], default="browser",
                        help="browser: a headless Chromium context per session, on this machine (default); protocol: "
                             "a WebSocket per session speaking Streamlit's protocol, the server alone")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a session waits for a chart")
    parser.add_argument("--browser-nice", type=int, default=10,
                        help="nice levels the browsers run below the server (default 10; 0: level with it)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as one JSON object here")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 200:
        parser.error(f"--sessions {args.sessions}: between 1 and 200 (each is a Chromium context on this machine)")
    if not 0 <= args.browser_nice <= 19:
        parser.error(f"--browser-nice {args.browser_nice}: between 0 and 19 (nice's levels)")
    if not 0 <= args.spread <= 3600:
        parser.error(f"--spread {args.spread}: between 0 and 3600 seconds")
    if args.clients == "browser" and not CHROMIUM.exists():
        parser.error(f"needs {CHROMIUM} (apt-get install -y chromium)")
    result = viewer_benchmark(args.sessions, args.timeout, args.browser_nice, args.spread, args.clients)
    result["provenance"] = common.provenance()
    memory, charts = result["server_rss"], result["first_chart_s"]
    common.log(f"{args.sessions} {args.clients} sessions over {args.spread:g} s: server RSS "
               f"{memory['after_lecturer_mib']:.0f} -> "
               f"{memory['with_sessions_open_mib']:.0f} MiB ({memory['per_session_mib']:.1f} MiB per session, peak "
               f"{memory['peak_while_loading_mib']:.0f}); first chart (median [q25, q75]): Overview "
               f"{common.fmt(charts['overview_s'], 2)} s, Per-image {common.fmt(charts[f'{PAGE}_s'], 2)} s; "
               f"failed {len(result['sessions_failed'])}")
    if args.out:
        common.write_json(args.out, result)


if __name__ == "__main__":
    main()
