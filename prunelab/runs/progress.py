"""Thread-safe live progress of one run, readable from any thread (the app polls it).

The trainer writes; the job manager, CLI progress bar and pages read `snapshot()`. A cancel request
is a flag the trainer checks at every batch boundary.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from prunelab.runs.run_format import ACTIVE_STATES


def accuracy_text(metrics: dict[str, Any], digits: int = 3) -> str:
    """'test acc 0.712', plus 'at density 0.70' when the model was measured with gates (ManiDP), so an
    accuracy on screen always says which network it belongs to; '' without a test accuracy."""
    acc = metrics.get("test_acc")
    if acc is None:
        return ""
    density = metrics.get("test_density")
    return f"test acc {acc:.{digits}f}" + (f" at density {density:.2f}" if density is not None else "")


class Cancelled(Exception):
    """Raised inside a trainer when its job was asked to stop."""


class Progress:
    def __init__(self, run_id: str = "", log_lines: int = 50) -> None:
        self.run_id = run_id
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._state: dict[str, Any] = {
            "run_id": run_id, "state": "queued", "phase": None, "epoch": 0, "epochs_total": 0,
            "batch": 0, "batches": 0, "fraction": 0.0, "eta_s": None, "metrics": {},
            "started_at": None, "error": None,
        }
        self._listeners: list[Any] = []

    # writers (trainer / job manager)
    def update(self, **fields: Any) -> None:
        with self._lock:
            self._state.update(fields)
            started = self._state.get("started_at")
            fraction = float(self._state.get("fraction") or 0.0)
            if self._state.get("state") not in ACTIVE_STATES:  # ended (cancelled, failed, done): no ETA
                self._state["eta_s"] = None
            elif started and 0.0 < fraction < 1.0:
                elapsed = time.time() - started
                self._state["eta_s"] = elapsed * (1.0 - fraction) / fraction
            elif fraction >= 1.0:
                self._state["eta_s"] = 0.0
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self.snapshot())

    def add_listener(self, callback: Any) -> None:
        """`callback(snapshot)` after every update (the CLI's terminal progress bar)."""
        with self._lock:
            self._listeners.append(callback)

    def log(self, line: str) -> None:
        with self._lock:
            self._log.append(f"[{time.strftime('%H:%M:%S')}] {line}")

    # readers (any thread)
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            state = dict(self._state)
            state["metrics"] = dict(state.get("metrics") or {})
            state["log"] = list(self._log)
            state["cancel_requested"] = self._cancel.is_set()
            return state

    # cancellation
    def request_cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by request")
