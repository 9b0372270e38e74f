"""`python -m prunelab list`: every run as a table row, broken ones with the file and the problem."""

from __future__ import annotations

import argparse
from typing import Any

from prunelab.cli.args import runs_root
from prunelab.cli.display import format_table

LIST_COLUMNS = ("run", "method", "dataset", "model", "state", "progress", "test_acc", "MMACs/img", "problem")


def cmd_list(args: argparse.Namespace) -> int:
    """Every run as a table row; a run with a missing or corrupt file is listed `broken` with the reason."""
    from prunelab.runs.store import RunStore

    rows = [list_row(entry) for entry in RunStore(runs_root(args)).scan(check_artefacts=True)]
    if not rows:
        print(f"no runs in {runs_root(args)}")
        return 0
    print(format_table(rows, LIST_COLUMNS))
    return 0


def list_row(entry: Any) -> dict[str, str]:
    """One `list` row from a RunInfo or a BrokenRun (prunelab.runs.store.RunStore.scan); a run whose owner is
    gone shows as `interrupted` (prunelab.runs.ownership.effective_state)."""
    from prunelab.runs.ownership import effective_state

    config = entry.config
    row = {"run": entry.run_id, "method": config.method.name if config else "",
           "dataset": config.data.dataset if config else "", "model": config.model.name if config else "",
           "state": "broken" if entry.broken else effective_state(entry.path, entry.status), "progress": "",
           "test_acc": "", "MMACs/img": "",
           "problem": "; ".join(entry.problems)}
    status, summary = getattr(entry, "status", None) or {}, getattr(entry, "summary", None) or {}
    if status:
        row["progress"] = f"{100 * float(status.get('fraction') or 0):.0f}%"
    acc, macs = summary.get("test_acc"), summary.get("macs_per_image")
    row["test_acc"] = f"{acc:.4f}" if acc is not None else ""
    row["MMACs/img"] = f"{macs / 1e6:.2f}" if macs is not None else ""
    return row
