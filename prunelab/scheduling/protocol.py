"""What every scheduler offers: the `Scheduler` protocol and the `JobInfo` snapshot it reports.

Two schedulers implement it: `prunelab.scheduling.jobs.JobManager` (worker threads of this process) and
`prunelab.scheduling.ray_backend.RaySuiteRunner` (one Ray task per run). Neither imports the other; both change a
run's state only through `prunelab.runs.run_life`. The CLI watches a suite and the app lists, cancels and shuts
down jobs through this protocol alone, whichever scheduler holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from prunelab.runs.run_life import JobError

if TYPE_CHECKING:
    from prunelab.config import RunConfig
    from prunelab.scheduling.suites import Suite

__all__ = ["JobError", "JobInfo", "Scheduler"]


@dataclass
class JobInfo:
    """A snapshot of one job for tables and pages."""

    run_id: str
    state: str
    progress: dict[str, Any]
    name: str | None = None
    method: str | None = None
    suite: str | None = None
    depends_on: tuple[str, ...] = ()
    error: str | None = None
    submitted_at: float | None = None
    path: Path | None = None


@runtime_checkable
class Scheduler(Protocol):
    """Runs training jobs somewhere, for one runs folder (`runs_dir`).

    `submit` / `submit_suite` create each run directory (`queued`) and return run ids at once; `jobs()` /
    `job(run_id)` are snapshots (`JobInfo`) of the runs submitted here, in submission order; `cancel(run_id)`
    drops a queued run or asks a running one to stop at its next batch (False when it is not active here);
    `wait(timeout=)` blocks until every run has ended (False when `timeout` passed first); `shutdown`
    cancels what is left (or lets it finish) and stops. A request the scheduler cannot honour is a
    `JobError`. In viewer mode (`prunelab.runs.viewer.active()`) a scheduler is never made, and one made before
    refuses `submit`, `submit_suite` and `cancel` with a `prunelab.runs.viewer.ViewerModeError` (one line naming
    viewer mode and how to leave it) before anything is written.
    """

    runs_dir: Path

    def submit(self, config: RunConfig) -> str: ...

    def submit_suite(self, suite: Suite) -> list[str]: ...

    def cancel(self, run_id: str) -> bool: ...

    def jobs(self) -> list[JobInfo]: ...

    def job(self, run_id: str) -> JobInfo: ...

    def wait(self, *, timeout: float | None = None) -> bool: ...

    def shutdown(self, cancel_running: bool = True, timeout: float | None = None) -> None: ...
