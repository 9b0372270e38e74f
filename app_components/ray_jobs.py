"""Suites on Ray from the app: the suite form's backend choice, the process-wide Ray runner, its jobs.

A suite started on Ray is handed to one `prunelab.ray_backend.RaySuiteRunner` per runs folder, created on
first use and kept for the life of the server (like the job manager); the Ray connection it needs is made
once (`ray_backend.connect`: a local instance, or the cluster at the address given). The Jobs panel lists
its runs next to the job manager's, and its Cancel buttons reach them.
"""

from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from prunelab.jobs import JobInfo
from prunelab.ray_backend import RayBackendError, RaySuiteRunner, connect
from prunelab.store import default_runs_dir

BACKEND_LABELS = {"local": "This app (one run at a time)", "ray": "Ray (each run a Ray task)"}
_RUNNERS: dict[str, RaySuiteRunner] = {}  # runs folder -> its runner, for the life of the server
_LOCK = threading.Lock()


def backend_input() -> dict[str, Any]:
    """The backend widgets of the suite form: where the runs train and, on Ray, each run's share."""
    left, middle, right = st.columns([2, 3, 2])
    backend = left.radio("Backend", list(BACKEND_LABELS), format_func=BACKEND_LABELS.__getitem__,
                         key="suite_backend")
    address = middle.text_input("Ray cluster (Ray only)", key="suite_ray_address", placeholder="HOST:PORT",
                                help="The head node's address that `ray start --head` prints. Empty: start a "
                                "local Ray instance on this machine. Every node must see the runs folder at the "
                                "same path (a shared filesystem).")
    cpus = right.number_input("CPUs per run (Ray only)", value=1.0, min_value=0.25, max_value=1024.0, step=1.0,
                              key="suite_ray_cpus")
    gpus = right.number_input("GPUs per run (Ray only)", value=0.0, min_value=0.0, max_value=64.0, step=0.5,
                              key="suite_ray_gpus", help="Fractions share a GPU: 0.5 runs two runs per GPU.")
    return {"backend": backend, "address": address.strip() or None, "num_cpus": float(cpus),
            "num_gpus": float(gpus)}


def runner(address: str | None) -> RaySuiteRunner:
    """The runs folder's Ray runner, connecting this server to Ray first if needed (RayBackendError)."""
    runs_dir = str(default_runs_dir().resolve())
    with _LOCK:
        connect(address)
        if runs_dir not in _RUNNERS:
            _RUNNERS[runs_dir] = RaySuiteRunner(runs_dir)
        return _RUNNERS[runs_dir]


def submit_suite(choice: dict[str, Any], suite: Any, local_submit: Any) -> list[str] | None:
    """Start `suite` where `choice` says: `local_submit(suite)` (the job manager) or Ray. A Ray problem
    (unreachable cluster, bad share) is shown on the page and gives None."""
    if choice["backend"] != "ray":
        return local_submit(suite)
    try:
        with st.spinner("Connecting to Ray…"):
            return runner(choice["address"]).submit_suite(suite, choice["num_cpus"], choice["num_gpus"])
    except RayBackendError as error:
        st.error(f"Cannot start on Ray: {error}")
        return None


def jobs() -> list[JobInfo]:
    """Every run of the Ray runners started in this server, in submission order."""
    with _LOCK:
        runners = list(_RUNNERS.values())
    return [job for ray_runner in runners for job in ray_runner.jobs()]


def cancel(manager: Any, run_id: str) -> None:
    """Cancel `run_id` wherever it runs: a Ray task of this server, else the job manager's job."""
    with _LOCK:
        runners = list(_RUNNERS.values())
    if not any(ray_runner.cancel(run_id) for ray_runner in runners):
        manager.cancel(run_id)


def where(job: JobInfo) -> str:
    """' · Ray on node-1' for a run trained by a Ray task, '' otherwise."""
    if job.progress.get("backend") != "ray":
        return ""
    node = job.progress.get("node")
    return f" · Ray on {node}" if node else " · Ray"
