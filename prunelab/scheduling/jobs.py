"""Background training jobs: a FIFO queue, bounded worker threads, cancel, recovery and resume.

`JobManager(runs_dir)` runs `prunelab.training.engine.run_training` for each submitted `RunConfig` in worker
threads (default one at a time: a 2-core CPU gains nothing from two). It is thread-safe, never
imports streamlit and is meant to live once per process (the app keeps it in `st.cache_resource`
and polls `jobs()`; the CLI waits on it).

`JobManager` is one `prunelab.scheduling.protocol.Scheduler` (the Ray runner is the other); it changes a run's state
only through `prunelab.runs.run_life`. Ownership and recovery (`prunelab.runs.ownership`, `prunelab.runs.run_life`):
whoever trains a run holds its `owner.lock` (claimed atomically; a second claimant gets
`JobError`/`RunBusyError` naming the owner) and refreshes it every `HEARTBEAT_S` seconds. A queued/running
run whose lock is stale (dead pid on this host, or no heartbeat for `STALE_AFTER_S`) shows as `interrupted`
in every view (`effective_state`), and `recover_interrupted` records that in status.json after taking the
stale lock over. status.json also names the owner (`owner`, `owner_pid`, `owner_host`, `heartbeat_at` at
the claim) for runs and readers without locks. `JobManager.resume(run_id)` continues an interrupted,
cancelled or failed run from its last epoch checkpoint (`Trainer.run(resume=True)`: metrics cut back to
the checkpoint, phases continue), or with `from_scratch=True` restarts it in place keeping only its config.
In viewer mode (`prunelab.runs.viewer`) no `JobManager` is made, and one made before refuses every request
(submit, submit a suite, resume, cancel) with a `ViewerModeError` in one line.

Datasets are shared: every job loads through `prunelab.data.load_dataset`, whose in-process cache
returns the same tensors for the same `DataConfig`, so the runs of a suite load their data once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunelab.config import RunConfig
from prunelab.runs import viewer
from prunelab.runs.ownership import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    OwnerLock,
    effective_state,
    new_token,
    register_token,
    release_token,
)
from prunelab.runs.ownership import status_orphan_reason as orphan_reason  # noqa: F401 - status-only check
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.run_format import ACTIVE_STATES, FINAL_STATES, RunDeleted, RunStoreError
from prunelab.runs.run_life import (
    RESUMABLE_STATES,  # noqa: F401 - what the Runs page offers to resume
    Heartbeat,
    JobError,
    claim_lock,
    publish_progress,
    record_queued,
    record_unstarted_end,
    recover_interrupted,
    requeue_for_resume,
    stopped_by_deletion,
)
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.limits import JOBS_RECENT, MAX_CONCURRENT
from prunelab.scheduling.protocol import JobInfo

if TYPE_CHECKING:
    from prunelab.scheduling.suites import Suite

log = logging.getLogger("prunelab.scheduling.jobs")


# ---------------------------------------------------------------------------------------------
# jobs


@dataclass
class _Job:
    run: RunDir
    config: RunConfig
    progress: Progress
    depends_on: tuple[str, ...] = ()
    resume: bool = False
    state: str = "queued"
    error: str | None = None
    submitted_at: float = field(default_factory=time.time)
    lock: OwnerLock | None = None  # held from submit/resume until the job ends

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def info(self) -> JobInfo:
        snap = self.progress.snapshot()
        snap["state"] = self.state
        return JobInfo(run_id=self.run_id, state=self.state, progress=snap, name=self.config.name,
                       method=self.config.method.name, suite=self.config.suite, depends_on=self.depends_on,
                       error=self.error or snap.get("error"), submitted_at=self.submitted_at,
                       path=self.run.path)


class JobManager:
    """Runs training jobs in background threads: FIFO queue, at most `max_concurrent` at a time (a thread
    each, within `prunelab.scheduling.limits.MAX_CONCURRENT`: ValueError naming it otherwise).

    `submit` returns the run id at once; `cancel` drops a queued job or stops a running one at the
    next batch boundary (state `cancelled`, checkpoints kept); a job that raises ends `failed` and the
    others go on. A job may depend on other runs: it starts only once they are `done` and fails with
    a clear message if one of them ends otherwise.
    """

    def __init__(self, runs_dir: str | Path | None = None, max_concurrent: int = 1, *, recover: bool = True,
                 heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S,
                 autostart: bool = True) -> None:
        viewer.refuse("cannot start the job manager")  # it would recover stale runs: a write into the runs folder
        MAX_CONCURRENT.check(max_concurrent, "max_concurrent")  # before anything is made: a thread each
        self.store = RunStore(runs_dir)
        self.runs_dir = self.store.root
        self.max_concurrent = max_concurrent
        self.stale_after_s = stale_after_s
        self.token = new_token()
        register_token(self.token)
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}  # every job this manager knows, in submission order
        self._queue: list[_Job] = []
        self._stopping = False
        self.recovered: list[str] = recover_interrupted(self.runs_dir, stale_after_s) if recover else []
        self._workers = [threading.Thread(target=self._worker, name=f"prunelab-job-{i}", daemon=True)
                         for i in range(max_concurrent)]
        self._heartbeat = Heartbeat(self._beat, heartbeat_s)
        if autostart:
            self.start()

    def start(self) -> None:
        """Start the worker threads (done by the constructor unless `autostart=False`)."""
        with self._cond:
            for worker in self._workers:
                if not worker.is_alive() and worker.ident is None:
                    worker.start()

    # submission -------------------------------------------------------------------------------
    def submit(self, config: RunConfig, run_id: str | None = None, depends_on: Sequence[str] = ()) -> str:
        """Create the run directory (state `queued`) and enqueue it; returns the run id immediately."""
        viewer.refuse("cannot start a run")
        self._check_open()
        run = self.store.create(config, run_id)  # None: '<timestamp>-<name>'
        try:
            lock = claim_lock(run, self.token, self.stale_after_s)
        except OSError as error:
            record_unstarted_end(run, "failed", f"{type(error).__name__}: {error}")
            raise
        record_queued(run, self.token, depends_on=depends_on)
        job = _Job(run, config, Progress(run.run_id), tuple(depends_on), lock=lock)
        note = f"queued (after {', '.join(depends_on)})" if depends_on else "queued"
        job.progress.log(note)
        run.log(note)
        try:
            self._enqueue(job)
        except JobError:
            record_unstarted_end(run, "cancelled", "cancelled: the job manager shut down")
            lock.release()
            raise
        return job.run_id

    def submit_suite(self, suite: Suite) -> list[str]:
        """Submit every run of a suite in order, wiring `init_from` and dependencies; returns run ids."""
        viewer.refuse("cannot start a suite")  # before its first run is made
        ids: dict[str, str] = {}
        for item in suite.runs:
            config, depends = item.config, ()
            if item.init_from is not None:
                parent = ids[item.init_from]
                config = item.with_init_from(parent)  # a run id: resolved under the runs folder
                depends = (parent,)
            ids[item.key] = self.submit(config, depends_on=depends)
        return list(ids.values())

    def resume(self, run_id: str, from_scratch: bool = False) -> str:
        """Continue a stopped run (interrupted, cancelled or failed) from its last epoch checkpoint.

        The run is claimed first, so of two resumes of one run exactly one succeeds (the other gets a
        JobError naming the owner). `from_scratch=True` restarts it in place instead: checkpoint, metrics,
        artefacts and summary are removed, config.json is kept.
        """
        viewer.refuse(f"cannot resume run {run_id}")
        self._check_open()
        try:
            run = self.store.open(run_id)
            config = run.read_config()
        except RunStoreError as error:
            raise JobError(str(error)) from None
        with self._cond:
            if run.run_id in self._jobs and self._jobs[run.run_id].state in ACTIVE_STATES:
                raise JobError(f"run {run.run_id} is already {self._jobs[run.run_id].state} in this manager")
        lock = claim_lock(run, self.token, self.stale_after_s)
        try:
            job = self._prepare_resume(run, config, lock, from_scratch)
            self._enqueue(job)
        except BaseException:
            lock.release()
            raise
        return run.run_id

    def _prepare_resume(self, run: RunDir, config: RunConfig, lock: OwnerLock, from_scratch: bool) -> _Job:
        """Check the claimed run can be resumed, record the resume and build its job."""
        resume, note = requeue_for_resume(run, self.token, lock, from_scratch, self.stale_after_s)
        job = _Job(run, config, Progress(run.run_id), resume=resume, lock=lock)
        job.progress.log(note)
        return job

    def _enqueue(self, job: _Job) -> None:
        with self._cond:
            if self._stopping:
                raise JobError("the job manager has been shut down")
            self._jobs[job.run_id] = job
            self._queue.append(job)
            self._cond.notify_all()

    def _check_open(self) -> None:
        if self._stopping:
            raise JobError("the job manager has been shut down")

    # control ----------------------------------------------------------------------------------
    def cancel(self, run_id: str) -> bool:
        """Drop a queued job or ask a running one to stop at its next batch; False if not active here."""
        viewer.refuse(f"cannot cancel run {run_id}")
        return self._cancel(run_id)

    def _cancel(self, run_id: str) -> bool:
        with self._cond:
            job = self._jobs.get(run_id)
            if job is None or job.state not in ACTIVE_STATES:
                return False
            if job.state == "queued":
                self._queue.remove(job)
                self._end_unstarted(job, "cancelled", "cancelled before it started")
            else:
                job.progress.request_cancel()
                job.progress.log("cancel requested")
            return True

    def _end_unstarted(self, job: _Job, state: str, message: str) -> None:
        """Finish a job that never reached the trainer (caller holds the lock)."""
        job.state = state
        job.error = message if state == "failed" else None
        record_unstarted_end(job.run, state, message)
        self._release(job)
        job.progress.update(state=state, error=job.error)
        job.progress.log(message)
        self._cond.notify_all()

    @staticmethod
    def _release(job: _Job) -> None:
        """Give up the job's owner lock (its final state is on disk)."""
        if job.lock is not None:
            job.lock.release()
            job.lock = None

    def shutdown(self, cancel_running: bool = True, timeout: float | None = None) -> None:
        """Stop the manager: queued jobs are cancelled; running ones are cancelled or, if not
        `cancel_running`, allowed to finish. Joins the worker threads."""
        with self._cond:
            if self._stopping and not any(w.is_alive() for w in self._workers):
                return
            self._stopping = True
            for job in list(self._queue):
                self._queue.remove(job)
                self._end_unstarted(job, "cancelled", "cancelled: the job manager shut down")
            if cancel_running:
                for job in self._jobs.values():
                    if job.state == "running":
                        job.progress.request_cancel()
            self._cond.notify_all()
        for worker in self._workers:
            if worker.ident is not None:
                worker.join(timeout)
        if not any(worker.is_alive() for worker in self._workers):  # else a job still runs: keep owning it
            self._heartbeat.stop()
            release_token(self.token)

    # reading ----------------------------------------------------------------------------------
    def jobs(self) -> list[JobInfo]:
        """Snapshots of every job of this manager, in submission order."""
        with self._cond:
            jobs = list(self._jobs.values())
        return [job.info() for job in jobs]

    def job(self, run_id: str) -> JobInfo:
        with self._cond:
            job = self._jobs.get(run_id)
        if job is None:
            raise JobError(f"no job {run_id!r} in this manager")
        return job.info()

    def progress(self, run_id: str) -> dict[str, Any]:
        """Live progress snapshot (phase, epoch, batch, fraction, eta_s, metrics, log, error, state)."""
        return self.job(run_id).progress

    def wait(self, run_id: str | None = None, timeout: float | None = None) -> bool:
        """Block until `run_id` (or every job) has ended; False if `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if run_id is not None and run_id not in self._jobs:
                raise JobError(f"no job {run_id!r} in this manager")
            while not self._ended(run_id):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _ended(self, run_id: str | None) -> bool:
        jobs = [self._jobs[run_id]] if run_id is not None else list(self._jobs.values())
        return all(job.state not in ACTIVE_STATES for job in jobs)

    # workers ----------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            with self._cond:
                job = self._next_ready()
                while job is None:
                    if self._stopping:
                        return
                    self._cond.wait(0.5)  # also polls dependencies owned by other processes
                    job = self._next_ready()
                job.state = "running"
                self._cond.notify_all()
            try:
                self._execute(job)
            except BaseException:  # noqa: BLE001 - failure isolation: the worker must survive any job
                log.exception("job %s crashed outside the trainer", job.run_id)
                with self._cond:
                    if job.state == "running":
                        self._end_unstarted(job, "failed", "job crashed outside the trainer")

    def _next_ready(self) -> _Job | None:
        """First queued job whose dependencies are done (caller holds the lock); fails blocked ones."""
        if self._stopping:
            return None
        for job in list(self._queue):
            verdict = self._dependency_verdict(job)
            if verdict == "ready":
                self._queue.remove(job)
                return job
            if verdict != "wait":
                self._queue.remove(job)
                self._end_unstarted(job, "failed", verdict)
        return None

    def _dependency_verdict(self, job: _Job) -> str:
        """'ready', 'wait', or the failure message when a dependency ended without `done`."""
        for dep in job.depends_on:
            state, error = self._dependency_state(dep)
            if state == "done":
                continue
            if state in FINAL_STATES or state == "missing":
                detail = f": {error}" if error else ""
                return f"dependency {dep} ended {state}{detail}; this run needs its finished model"
            return "wait"
        return "ready"

    def _dependency_state(self, run_id: str) -> tuple[str, str | None]:
        job = self._jobs.get(run_id)
        if job is not None:
            return job.state, job.error
        try:
            status = self.store.open(run_id).read_status()
        except RunStoreError:
            return "missing", f"no run {run_id} in {self.runs_dir}"
        state = effective_state(self.store.root / run_id, status, self.stale_after_s)
        if state == "interrupted" and status.get("state") in ACTIVE_STATES:
            return "interrupted", "its owner is gone"
        return state, status.get("error")

    def _execute(self, job: _Job) -> None:
        from prunelab.training.engine import run_training

        job.progress.log("resuming" if job.resume else "starting")
        try:
            run_training(job.config, job.run, job.progress, resume=job.resume)
        except Cancelled:
            self._finish(job, "cancelled", None)
        except RunDeleted as error:  # its directory is gone: the job ends with that one line
            self._finish(job, "failed", str(error))
        except Exception as error:  # noqa: BLE001 - recorded by run_training; the manager goes on
            self._finish(job, "failed", f"{type(error).__name__}: {error}")
        else:
            self._finish(job, "done", None)

    def _finish(self, job: _Job, state: str, error: str | None) -> None:
        with self._cond:
            self._release(job)
            job.state = state
            job.error = error
            self._cond.notify_all()

    def _beat(self) -> None:
        """Refresh the owner lock of every active job and publish a running job's progress into its
        status.json; a job whose lock was taken over is cancelled."""
        with self._cond:
            jobs = [job for job in self._jobs.values() if job.state in ACTIVE_STATES and job.lock is not None]
        for job in jobs:
            lock = job.lock
            try:
                if lock is None:
                    continue
                if lock.beat():
                    if job.state == "running":
                        publish_progress(job.run, job.progress)
                    continue
            except OSError as error:
                log.warning("heartbeat of %s failed: %s", job.run_id, error)
                continue
            deleted = stopped_by_deletion(job.run)
            if deleted is not None:  # its lock went with its directory: stop, writing nothing there
                job.progress.log(str(deleted))
            else:
                log.error("run %s was taken over by another process; stopping it here", job.run_id)
                job.progress.log("another process took this run over: stopping")
            self._cancel(job.run_id)

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel_running=True)


# ---------------------------------------------------------------------------------------------
# a fresh process's view of the jobs in a runs directory


def list_jobs(runs_dir: str | Path | None = None, recent: int = 10,
              stale_after_s: float = STALE_AFTER_S) -> list[JobInfo]:
    """Jobs as seen on disk: every queued/running run plus the `recent` most recent finished ones.

    A queued/running run whose owner is gone is shown `interrupted` (nothing is written), and always
    listed, right after the active ones, whatever `recent` is (within JOBS_RECENT: ValueError otherwise).
    """
    JOBS_RECENT.check(recent, "recent")
    active: list[JobInfo] = []
    orphaned: list[JobInfo] = []
    finished: list[JobInfo] = []
    for info in RunStore(runs_dir).iter_runs():
        status = dict(info.status)
        state = effective_state(info.path, status, stale_after_s)
        status["state"] = state
        status["log"] = RunDir(info.path).read_log_tail(10)
        job = JobInfo(run_id=info.run_id, state=state, progress=status, name=info.config.name,
                      method=info.config.method.name, suite=info.config.suite,
                      depends_on=tuple(status.get("depends_on") or ()), error=status.get("error"),
                      submitted_at=status.get("created_at"), path=info.path)
        if state in ACTIVE_STATES:
            active.append(job)
        else:
            (orphaned if info.state in ACTIVE_STATES else finished).append(job)
    finished.sort(key=lambda j: float(j.progress.get("updated_at") or 0.0), reverse=True)
    active.sort(key=lambda j: float(j.submitted_at or 0.0))
    return active + orphaned + finished[:recent]
