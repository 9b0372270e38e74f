"""Terminal output of the commands: the training progress bar, the suite display, plain tables.

Progress goes to stderr through tqdm, only when stderr is a terminal (a log file gets no redrawn lines);
results go to stdout. Every string from a run directory (its name, its config's, its status.json's) passes
through `prunelab.runs.safe_text.printable` on its way to the terminal: a table cell, a suite line, an error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from prunelab.runs.progress import accuracy_text
from prunelab.runs.run_format import ACTIVE_STATES
from prunelab.runs.safe_text import printable

if TYPE_CHECKING:
    from prunelab.scheduling.protocol import Scheduler

STEPS = 1000  # bar resolution: a run's fraction in thousandths


class ProgressBar:
    """A tqdm bar on stderr fed by Progress listeners (snapshots of prunelab.runs.progress.Progress)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = tqdm(total=STEPS, file=stream, dynamic_ncols=True, disable=not tty, leave=True,
                         bar_format="{percentage:5.1f}%|{bar}| {desc} [{elapsed}<{remaining}]")

    def __call__(self, snap: dict[str, Any]) -> None:
        metrics = snap.get("metrics") or {}
        acc = f" {accuracy_text(metrics)}" if "test_acc" in metrics else ""
        self._bar.set_description_str(printable(
            f"{snap.get('phase') or ''} epoch {snap.get('epoch', 0)}/{snap.get('epochs_total', 0)} "
            f"batch {snap.get('batch', 0)}/{snap.get('batches', 0)}{acc}"), refresh=False)
        done = min(STEPS, max(0, int(STEPS * float(snap.get("fraction") or 0.0))))
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def format_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain fixed-width table for the terminal, every cell `printable`."""
    cells = [[printable(row.get(col, "")) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


class SuiteDisplay:
    """One line per job state change and an overall progress bar (tqdm), on `stream` (stderr). Without a
    terminal the bar is replaced by one 'overall' line per 10%, so a log file gets whole lines only."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._states: dict[str, str] = {}
        self._tenths = -1
        self._bar = tqdm(total=STEPS, file=self.stream, dynamic_ncols=True, disable=not self._tty,
                         bar_format="{percentage:5.1f}%|{bar}| {desc} [{elapsed}<{remaining}]")

    def update(self, jobs: list[Any], weights: dict[str, float]) -> None:
        total = len(jobs)
        for index, job in enumerate(jobs, 1):
            if self._states.get(job.run_id) == job.state:
                continue
            self._states[job.run_id] = job.state
            self._line(f"[{index}/{total}] {job.name or job.run_id}: {job.state}{_state_detail(job)}")
        self._draw_bar(jobs, weights)

    def _line(self, text: str) -> None:
        text = printable(text)
        if self._tty:
            self._bar.write(text, file=self.stream)  # above the bar, which tqdm redraws
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _draw_bar(self, jobs: list[Any], weights: dict[str, float]) -> None:
        fraction = overall_fraction(jobs, weights)
        ended = sum(job.state not in ACTIVE_STATES for job in jobs)
        if not self._tty:
            if int(10 * fraction) > self._tenths:
                self._tenths = int(10 * fraction)
                self._line(f"overall {100 * fraction:.0f}% ({ended}/{len(jobs)} ended)")
            return
        now = ""
        running = [job for job in jobs if job.state == "running"]
        if running:
            snap = running[0].progress
            now = (f" | {running[0].name or running[0].run_id} {snap.get('phase') or ''} "
                   f"epoch {snap.get('epoch', 0)}/{snap.get('epochs_total', 0)} "
                   f"batch {snap.get('batch', 0)}/{snap.get('batches', 0)}")
        self._bar.set_description_str(printable(f"{ended}/{len(jobs)} ended{now}"), refresh=False)
        self._bar.update(min(STEPS, max(0, int(STEPS * fraction))) - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _state_detail(job: Any) -> str:
    if job.state == "failed" and job.error:
        return f" ({job.error})"
    metrics = job.progress.get("metrics") or {}
    if job.state == "done" and "test_acc" in metrics:
        return f" ({accuracy_text(metrics)})"
    return ""


def overall_fraction(jobs: list[Any], weights: dict[str, float]) -> float:
    """Epoch-weighted mean of the jobs' fractions; ended jobs count as complete."""
    total = sum(weights.get(job.run_id, 1.0) for job in jobs)
    if total <= 0:
        return 0.0
    done = 0.0
    for job in jobs:
        live = job.state in ACTIVE_STATES
        fraction = float(job.progress.get("fraction") or 0.0) if live else 1.0
        done += weights.get(job.run_id, 1.0) * min(1.0, max(0.0, fraction))
    return done / total


def watch_suite(manager: Scheduler, weights: dict[str, float], poll_s: float) -> list[Any] | None:
    """Show a suite's progress until every run has ended; returns the final jobs, or None when cancelled
    with Ctrl-C (the runs still going are cancelled; finished runs and checkpoints stay). `manager` is any
    scheduler (a `JobManager` or a `RaySuiteRunner`): `wait(timeout=)`, `jobs()`, `shutdown(cancel_running=)`."""
    display = SuiteDisplay()
    try:
        while not manager.wait(timeout=poll_s):
            display.update(manager.jobs(), weights)
    except KeyboardInterrupt:
        manager.shutdown(cancel_running=True)
        display.update(manager.jobs(), weights)
        display.close()
        print("suite cancelled; finished runs and checkpoints are kept", file=sys.stderr)
        return None
    jobs = manager.jobs()
    display.update(jobs, weights)
    display.close()
    manager.shutdown(cancel_running=False)  # every run has ended: nothing left to cancel
    return list(jobs)
