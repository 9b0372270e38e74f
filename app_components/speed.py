"""The Speed page's drawing: a speed benchmark result (`benchmarks/bench_speed.py`, shipped under
`assets/speed/`) read with an error on the page when it cannot be, its caption, and its Plotly figures.
Nothing here measures or computes: the tables and bounds come from `prunelab.speed.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from prunelab.speed import report
from prunelab.speed.figures import layer_figure as layer_figure  # the core's figures, drawn by the Speed page
from prunelab.speed.figures import op_split_figure as op_split_figure
from prunelab.speed.figures import speedup_figure as speedup_figure
from prunelab.speed.figures import union_figure as union_figure

EXECUTOR_LABELS = {"sparse_executor": "sparse executor (one image at a time)",
                   "batched_executor": "batched executor (union of the batch's channels)"}


@st.cache_data(show_spinner=False, max_entries=8)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return report.read_result(Path(path))


def load(path: Path) -> dict[str, Any] | None:
    """The result JSON, or None (with an error on the page) when it is unreadable or holds no speed rows."""
    try:
        result = _load(str(path), path.stat().st_mtime)
    except (OSError, ValueError) as error:
        st.error(f"`{path.name}` cannot be read: {error}")
        return None
    if not result.get("speed_rows"):
        st.error(f"`{path.name}` holds no `speed_rows`: it is not a speed benchmark result.")
        return None
    return result


# --- text ------------------------------------------------------------------------------------------------
def machine_caption(result: dict[str, Any]) -> str:
    """The caption under the result's picker: where and when it was measured, and how to read its figures."""
    machine, git = result.get("machine", {}), result.get("git", {})
    load = result.get("details", {}).get("speed", {})
    cpu = f"CPU, {machine.get('cpu_count')} cores ({machine.get('processor') or 'x86_64'})"
    device = machine.get("cuda_device") or cpu
    commit = (git.get("commit") or "?")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")
    return (f"Measured {result.get('time', '?')} on {device}, torch {machine.get('torch_version')}, code {commit}. "
            f"Load average before / after: {load.get('load_average_before')} / {load.get('load_average_after')} "
            "(a shared machine: other jobs were running, so single figures are noisy; every ratio is the median of "
            "per-round ratios taken side by side). One thread reads thread CPU time, two threads wall time.")
