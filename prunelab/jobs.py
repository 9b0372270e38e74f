"""Background training jobs: a FIFO queue, bounded worker threads, cancel, recovery and resume.

`JobManager(runs_dir)` runs `prunelab.engine.run_training` for each submitted `RunConfig` in worker
threads (default one at a time: a 2-core CPU gains nothing from two). It is thread-safe, never
imports streamlit and is meant to live once per process (the app keeps it in `st.cache_resource`
and polls `jobs()`; the CLI waits on it).

Ownership and recovery (`prunelab.ownership`): whoever trains a run holds its `owner.lock` (claimed
atomically; a second claimant gets `JobError`/`RunBusyError` naming the owner) and refreshes it every
`HEARTBEAT_S` seconds. A queued/running run whose lock is stale (dead pid on this host, or no heartbeat
for `STALE_AFTER_S`) shows as `interrupted` in every view (`effective_state`), and `recover_interrupted`
records that in status.json after taking the stale lock over. status.json also names the owner
(`owner`, `owner_pid`, `owner_host`, `heartbeat_at` at the claim) for runs and readers without locks.
`JobManager.resume(run_id)` continues an interrupted, cancelled or failed run from its last epoch
checkpoint (`Trainer.run(resume=True)`: metrics cut back to the checkpoint, phases continue), or with
`from_scratch=True` restarts it in place keeping only its config.

Datasets are shared: every job loads through `prunelab.data.load_dataset`, whose in-process cache
returns the same tensors for the same `DataConfig`, so the runs of a suite load their data once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunelab import ownership
from prunelab.config import RunConfig
from prunelab.ownership import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    OwnerLock,
    RunBusyError,
    effective_state,
    new_token,
    register_token,
    release_token,
)
from prunelab.ownership import status_orphan_reason as orphan_reason  # noqa: F401 - status-only check
from prunelab.progress import Cancelled, Progress
from prunelab.run_format import ACTIVE_STATES, CHECKPOINT_FILE, FINAL_STATES, RunStoreError
from prunelab.store import RunDir, RunStore

if TYPE_CHECKING:
    from prunelab.suites import Suite

log = logging.getLogger("prunelab.jobs")

RESUMABLE_STATES = ("interrupted", "cancelled", "failed")


class JobError(Exception):
    """A request the manager cannot honour (unknown run, run not resumable or owned elsewhere, shut down)."""


# ---------------------------------------------------------------------------------------------
# ownership: who is responsible for a queued/running run


def _owner_fields(token: str, backend: str = "local") -> dict[str, Any]:
    """status.json's owner fields, with where the run trains: `backend` ("local" or "ray") and `node`."""
    return {"owner": token, "owner_pid": os.getpid(), "owner_host": socket.gethostname(),
            "heartbeat_at": time.time(), "backend": backend, "node": socket.gethostname()}


def recover_interrupted(runs_dir: str | Path, stale_after_s: float = STALE_AFTER_S) -> list[str]:
    """Mark every orphaned `running`/`queued` run in `runs_dir` as `interrupted`; returns their ids.

    Each one is claimed first (its stale lock taken over), so a process resuming it at the same moment
    is never overwritten."""
    recovered = []
    for info in RunStore(runs_dir).iter_runs():
        if info.state not in ACTIVE_STATES:
            continue
        reason = ownership.orphan_reason(info.path, info.status, stale_after_s=stale_after_s)
        if reason is None:
            continue
        token = new_token()
        try:
            lock = ownership.acquire(info.path, token, stale_after_s)
        except (RunBusyError, OSError) as error:
            log.info("not recovering %s: %s", info.run_id, error)
            continue
        try:
            run = RunDir(info.path)
            was = run.state
            if was in ACTIVE_STATES:
                mark_interrupted(run, was, reason)
                recovered.append(info.run_id)
        except (RunStoreError, OSError) as error:
            log.warning("could not mark %s interrupted: %s", info.run_id, error)
        finally:
            lock.release()
    return recovered


def mark_interrupted(run: RunDir, was: str, reason: str) -> None:
    """Record that `run` stopped without its owner finishing it (status, message and log line)."""
    run.write_status(state="interrupted", message=f"interrupted while {was}: {reason}",
                     interrupted_at=time.time())
    run.log(f"marked interrupted (was {was}): {reason}")


def claim_lock(run: RunDir, token: str, stale_after_s: float = STALE_AFTER_S,
               handoff_from: str | None = None) -> OwnerLock:
    """Take `run`'s owner lock for `token` and clear temp files a killed owner left; JobError if owned
    (by anyone but `handoff_from`, a live owner handing the run over: see `ownership.acquire`)."""
    try:
        lock = ownership.acquire(run.path, token, stale_after_s, handoff_from=handoff_from)
    except RunBusyError as error:
        raise JobError(str(error)) from None
    if lock.took_over:
        run.log(lock.took_over)
    removed = run.remove_temp_files()
    if removed:
        run.log(f"removed {len(removed)} temp file(s) left by an earlier owner: {', '.join(removed)}")
    return lock


class _Heartbeat:
    """A daemon thread calling `beat()` every `interval` seconds until stopped."""

    def __init__(self, beat: Any, interval: float) -> None:
        self._beat = beat
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prunelab-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a missed heartbeat must never kill the thread
                log.exception("heartbeat failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def record_unstarted_end(run: RunDir, state: str, message: str) -> None:
    """Write the final `state` (with `message`, and as `error` when failed) of a run that ended before it
    reached the trainer (cancelled in the queue, a failed dependency), and log it; a disk that refuses the
    write is logged, never raised (the caller settles its job either way)."""
    fields: dict[str, Any] = {"state": state, "message": message, "finished_at": time.time()}
    if state == "failed":
        fields["error"] = message
    try:
        run.force_status(**fields)
        run.log(message)
    except OSError as error:
        log.warning("could not record %s for %s: %s", state, run.run_id, error)


# the live figures of a running run that its owner's heartbeat copies into status.json, so a fresh
# process (`jobs`, the app's Jobs panel, another machine reading the runs folder) sees how far it is
LIVE_FIELDS = ("phase", "epoch", "epochs_total", "batch", "batches", "fraction", "eta_s")


def publish_progress(run: RunDir, progress: Progress) -> None:
    """Copy the live progress of a training run into its status.json (the owner's heartbeat calls it)."""
    snap = progress.snapshot()
    if snap.get("state") != "running":
        return
    run.write_status(**{key: snap[key] for key in LIVE_FIELDS if snap.get(key) is not None})


@contextlib.contextmanager
def claim_run(run: RunDir, heartbeat_s: float = HEARTBEAT_S,
              on_lost: Callable[[], None] | None = None, *, handoff_from: str | None = None,
              backend: str = "local", progress: Progress | None = None, **status: Any) -> Iterator[str]:
    """Own `run` for the duration of the block (runs trained outside a JobManager, e.g. `prunelab run`, or
    in a Ray task).

    Takes the run's owner lock (JobError naming the owner if someone else holds it, unless it is
    `handoff_from` handing the run over) and keeps it fresh; `on_lost()` is called if the lock is taken over
    (this process was frozen past the staleness bound); every heartbeat also publishes `progress` (the run's
    live progress) into status.json. The owner fields, `backend` and `status` go into status.json.
    """
    token = new_token()
    register_token(token)
    try:
        lock = claim_lock(run, token, handoff_from=handoff_from)
    except BaseException:
        release_token(token)
        raise

    def beat() -> None:
        if not lock.beat():
            log.error("lost the owner lock of %s", run.run_id)
            if on_lost is not None:
                on_lost()
            return
        if progress is not None:
            publish_progress(run, progress)

    try:
        run.write_status(**{**_owner_fields(token, backend), **status})
        heartbeat = _Heartbeat(beat, heartbeat_s)
        try:
            yield token
        finally:
            heartbeat.stop()
    finally:
        lock.release()
        release_token(token)


# ---------------------------------------------------------------------------------------------
# jobs


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
    """Runs training jobs in background threads: FIFO queue, at most `max_concurrent` at a time.

    `submit` returns the run id at once; `cancel` drops a queued job or stops a running one at the
    next batch boundary (state `cancelled`, checkpoints kept); a job that raises ends `failed` and the
    others go on. A job may depend on other runs: it starts only once they are `done` and fails with
    a clear message if one of them ends otherwise.
    """

    def __init__(self, runs_dir: str | Path | None = None, max_concurrent: int = 1, *, recover: bool = True,
                 heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S,
                 autostart: bool = True) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
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
        self._heartbeat = _Heartbeat(self._beat, heartbeat_s)
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
        self._check_open()
        run = self.store.create(config, run_id)  # None: '<timestamp>-<name>'
        try:
            lock = claim_lock(run, self.token, self.stale_after_s)
        except OSError as error:
            run.force_status(state="failed", error=f"{type(error).__name__}: {error}", finished_at=time.time())
            raise
        run.write_status(**_owner_fields(self.token), depends_on=list(depends_on))
        job = _Job(run, config, Progress(run.run_id), tuple(depends_on), lock=lock)
        note = f"queued (after {', '.join(depends_on)})" if depends_on else "queued"
        job.progress.log(note)
        run.log(note)
        try:
            self._enqueue(job)
        except JobError:
            run.write_status(state="cancelled", message="cancelled: the job manager shut down")
            lock.release()
            raise
        return job.run_id

    def submit_suite(self, suite: Suite) -> list[str]:
        """Submit every run of a suite in order, wiring `init_from` and dependencies; returns run ids."""
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

        try:
            status = run.read_status()
        except RunStoreError as error:
            raise JobError(str(error)) from None
        state = str(status.get("state"))
        if state in ACTIVE_STATES:  # we hold its lock, so its previous owner is gone
            reason = lock.took_over or ownership.status_orphan_reason(status, stale_after_s=self.stale_after_s)
            mark_interrupted(run, state, reason or "no live owner")
        elif state not in RESUMABLE_STATES:
            allowed = ", ".join(RESUMABLE_STATES)
            raise JobError(f"run {run.run_id} is {state}; only {allowed} runs can be resumed")
        if from_scratch:
            removed = run.clear_for_restart()
            note = f"restarting from scratch (config kept; removed {', '.join(removed) or 'nothing'})"
        elif run.file(CHECKPOINT_FILE).exists():
            note = "resume queued"
        else:  # nothing finished: start over, dropping any row of an unfinished epoch
            run.truncate_metrics(lambda row: False)
            note = "no checkpoint yet: restarting from the beginning"
        run.write_status(state="queued", error=None, finished_at=None, message=note, epoch=0 if from_scratch
                         else status.get("epoch", 0), **_owner_fields(self.token))
        job = _Job(run, config, Progress(run.run_id), resume=run.file(CHECKPOINT_FILE).exists(), lock=lock)
        job.progress.log(note)
        run.log(note)
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
        from prunelab.engine import run_training

        job.progress.log("resuming" if job.resume else "starting")
        try:
            run_training(job.config, job.run, job.progress, resume=job.resume)
        except Cancelled:
            self._finish(job, "cancelled", None)
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
            log.error("run %s was taken over by another process; stopping it here", job.run_id)
            job.progress.log("another process took this run over: stopping")
            self.cancel(job.run_id)

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
    listed, right after the active ones, whatever `recent` is.
    """
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
