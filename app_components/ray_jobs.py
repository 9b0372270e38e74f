"""Suites on Ray from the app: the suite form's backend choice and the process-wide Ray runner.

A suite started on Ray is handed to one `prunelab.scheduling.ray_backend.RaySuiteRunner` per runs folder, created on
first use and held for the life of the server by `st.cache_resource` (like the job manager,
`common.get_job_manager`); the Ray connection it needs is made once (`ray_backend.connect`: a local
instance, or the cluster at the address given). Both are `prunelab.scheduling.protocol.Scheduler`s: the Jobs
panel lists the jobs of each (`run_widgets.schedulers`) and cancels a job through the scheduler that holds it.

The address field is shown only when the server's operator allowed joining a cluster
(`PRUNELAB_ALLOW_RAY_ADDRESS=1`, `ray_backend.address_allowed`): the server connects where it is told and
unpickles what Ray sends back, so a page's user does not pick the cluster on the operator's behalf.
"""

from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from app_components import common
from prunelab.runs.store import default_runs_dir
from prunelab.scheduling.limits import RAY_NUM_CPUS, RAY_NUM_GPUS
from prunelab.scheduling.protocol import JobInfo
from prunelab.scheduling.ray_backend import ALLOW_ADDRESS_ENV, RayBackendError, RaySuiteRunner, address_allowed, connect

BACKEND_LABELS = {"local": "This app (one run at a time)", "ray": "Ray (each run a Ray task)"}


class _RaySlot:
    """Where a runs folder's Ray runner lives once a suite has been started on Ray (the app imports and
    connects to Ray only then, so the slot stays empty until that moment)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runner: RaySuiteRunner | None = None


@st.cache_resource(show_spinner=False)
def _ray_slot(runs_dir: str) -> _RaySlot:
    return _RaySlot()


def _runs_dir() -> str:
    return str(default_runs_dir().resolve())


def backend_input() -> dict[str, Any]:
    """The backend widgets of the suite form: where the runs train and, on Ray, each run's share."""
    left, middle, right = st.columns([2, 3, 2])
    backend = left.radio("Backend", list(BACKEND_LABELS), format_func=BACKEND_LABELS.__getitem__,
                         key="suite_backend")
    if address_allowed():
        address = middle.text_input("Ray cluster (Ray only)", key="suite_ray_address", placeholder="HOST:PORT",
                                    help="The head node's address that `ray start --head` prints (HOST:PORT or "
                                    "ray://HOST:PORT). Empty: start a local Ray instance on this machine. Every node "
                                    "must see the runs folder at the same path (a shared filesystem).")
    else:
        address = ""
        middle.caption(f"Ray runs on a local instance started on this machine. Joining a Ray cluster by its address "
                       f"is off on this server; its operator turns it on by starting the app with "
                       f"`{ALLOW_ADDRESS_ENV}=1`.")
    cpus = right.number_input("CPUs per run (Ray only)", value=1.0, min_value=0.25,
                              max_value=float(RAY_NUM_CPUS.high), step=1.0, key="suite_ray_cpus",
                              help=f"{RAY_NUM_CPUS.what}: {RAY_NUM_CPUS.allowed()} ({RAY_NUM_CPUS.reason}).")
    gpus = right.number_input("GPUs per run (Ray only)", value=0.0, min_value=float(RAY_NUM_GPUS.low or 0.0),
                              max_value=float(RAY_NUM_GPUS.high), step=0.5, key="suite_ray_gpus",
                              help=f"Fractions share a GPU: 0.5 runs two runs per GPU; {RAY_NUM_GPUS.allowed()} "
                              f"({RAY_NUM_GPUS.reason}).")
    return {"backend": backend, "address": address.strip() or None, "num_cpus": float(cpus),
            "num_gpus": float(gpus)}


def runner(address: str | None) -> RaySuiteRunner:
    """The runs folder's Ray runner, connecting this server to Ray first if needed (RayBackendError)."""
    runs_dir = _runs_dir()
    slot = _ray_slot(runs_dir)
    with slot.lock:
        connect(address)
        if slot.runner is None:
            slot.runner = RaySuiteRunner(runs_dir)
        return slot.runner


def started_runner() -> RaySuiteRunner | None:
    """The runs folder's Ray runner if a suite has been started on Ray in this server, else None."""
    return _ray_slot(_runs_dir()).runner


def submit_suite(choice: dict[str, Any], suite: Any, local_submit: Any) -> list[str] | None:
    """Start `suite` where `choice` says: `local_submit(suite)` (the job manager) or Ray. A Ray problem
    (unreachable cluster, bad share) is shown on the page and gives None."""
    if choice["backend"] != "ray":
        return local_submit(suite)
    try:
        with st.spinner("Connecting to Ray…"):
            return runner(choice["address"]).submit_suite(suite, choice["num_cpus"], choice["num_gpus"])
    except RayBackendError as error:
        st.error(f"Cannot start on Ray: {common.md_text(error)}")
        return None


def where(job: JobInfo) -> str:
    """' · Ray on node-1' for a run trained by a Ray task, '' otherwise."""
    if job.progress.get("backend") != "ray":
        return ""
    node = job.progress.get("node")
    return f" · Ray on {common.md_text(node)}" if node else " · Ray"
