"""The app in a real browser: a headless `streamlit run app.py` on a free localhost port, and headless
Chromium (Playwright, `/usr/bin/chromium`) to open its pages.

Shared by the browser tests (tests/test_browser.py, tests/test_browser_live.py) and the README's
screenshot script (scripts/screenshots.py). Nothing here needs pytest: failures raise `AppBrowserError`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 90.0
PAGE_TIMEOUT_MS = 90_000


class AppBrowserError(RuntimeError):
    """The server did not start, or a page did not finish running in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, poll_s: float = 0.5,
                 timeout_s: float = START_TIMEOUT_S) -> None:
    """Return once the server answers /_stcore/health; raise if it exits or stays silent."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AppBrowserError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(poll_s)
    raise AppBrowserError(f"streamlit did not answer /_stcore/health within {timeout_s:.0f} s")


@contextlib.contextmanager
def serve_app(log_dir: Path, env: Mapping[str, str], poll_s: float = 0.5,
              timeout_s: float = START_TIMEOUT_S, script_args: Sequence[str] = ()) -> Iterator[str]:
    """A fresh headless `streamlit run app.py` with `env` added to this process's environment (e.g.
    PRUNELAB_RUNS_DIR, PRUNELAB_NO_DEMO, PRUNELAB_CACHE_DIR) and `script_args` given to app.py (after `--`, e.g.
    `--viewer`); yields its URL once it answers /_stcore/health (polled every `poll_s`), stops it afterwards."""
    with serve_app_process(log_dir, env, poll_s, timeout_s, script_args) as (url, _):
        yield url


@contextlib.contextmanager
def serve_app_process(log_dir: Path, env: Mapping[str, str], poll_s: float = 0.5, timeout_s: float = START_TIMEOUT_S,
                      script_args: Sequence[str] = ()) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve_app`, yielding the server's process too (its pid: what a benchmark measures the memory of)."""
    port = free_port()
    log = log_dir / f"streamlit-{port}.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "localhost",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             *(["--", *script_args] if script_args else [])],
            cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        wait_healthy(url, server, log, poll_s, timeout_s)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


def launch(playwright: Any) -> Any:
    """Headless Chromium from /usr/bin/chromium."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def wait_until_idle(page: Any, quiet_s: float = 1.5, timeout_s: float = 90.0) -> None:
    """Wait until the app has no script running (the status widget stays hidden for `quiet_s`)."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.25)
    raise AppBrowserError(f"the page was still running after {timeout_s:.0f} s")
