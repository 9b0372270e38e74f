"""A run's life: every change of a run's state, in one place, below every scheduler.

The run store creates a run `queued` (`RunStore.create`); from then on its status.json changes only here,
whoever schedules it (`prunelab.scheduling.jobs.JobManager`, `prunelab.scheduling.ray_backend.RaySuiteRunner`,
`prunelab run`) and whoever trains it (`prunelab.training.engine.run_training`):

- claim: `claim_lock` takes the run's owner lock (`prunelab.runs.ownership`) and clears the temp files a killed
  owner left; `record_queued` names the owner in status.json; `claim_run` owns a run for a block (a run
  trained outside a scheduler's queue, or a Ray task that takes its run over from the driver);
  `requeue_for_resume` queues a stopped run again, from its checkpoint or from scratch;
- heartbeat and progress: `Heartbeat` (a thread that refreshes the lock), `publish_progress` (the live
  figures of a running run, copied into status.json at every beat); `record_started`, `record_epoch`;
- end: `record_done`, `record_end` (cancelled or failed: status first, in place if the disk is full, then
  traceback and log, best effort), `record_unstarted_end` (a run that never reached the trainer);
  `record_copied_back` (a run trained in another folder, unpacked into the store);
- interruption: `mark_interrupted`, `recover_interrupted` (every orphaned run of a runs folder),
  `take_over` (a moment's claim of a run whose owner is gone, to settle it);
- deletion: a run directory deleted while its run trains is not written again (`atomic_write` makes no
  folder, and the ends above skip a run whose directory is gone); `stopped_by_deletion` gives the
  `RunDeleted` error (one line: "run directory ... was deleted while it trained; stopping") the trainer
  stops with.

Who owns a run is `prunelab.runs.ownership`'s question (the lock file); where its files live, `prunelab.runs.store`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prunelab.runs import ownership
from prunelab.runs.ownership import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    OwnerLock,
    RunBusyError,
    new_token,
    register_token,
    release_token,
)
from prunelab.runs.progress import Progress
from prunelab.runs.run_format import (
    ACTIVE_STATES,
    CHECKPOINT_FILE,
    TRACEBACK_FILE,
    RunDeleted,
    RunStoreError,
    atomic_write_bytes,
)
from prunelab.runs.store import RunDir, RunStore

log = logging.getLogger("prunelab.runs.run_life")

RESUMABLE_STATES = ("interrupted", "cancelled", "failed")
# the live figures of a running run that its owner's heartbeat copies into status.json, so a fresh
# process (`jobs`, the app's Jobs panel, another machine reading the runs folder) sees how far it is
LIVE_FIELDS = ("phase", "epoch", "epochs_total", "batch", "batches", "fraction", "eta_s")


class JobError(Exception):
    """A request about a run that cannot be honoured (unknown run, run not resumable or owned elsewhere,
    scheduler shut down)."""


# ---------------------------------------------------------------------------------------------
# claim


def owner_fields(token: str, backend: str = "local", node: str | None = None) -> dict[str, Any]:
    """status.json's owner fields, with where the run trains: `backend` ("local" or "ray") and `node` (the
    host that trains it; None while a Ray run waits for its node)."""
    return {"owner": token, "owner_pid": os.getpid(), "owner_host": socket.gethostname(),
            "heartbeat_at": time.time(), "backend": backend, "node": node}


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


def take_over(run: RunDir, stale_after_s: float = STALE_AFTER_S) -> OwnerLock | None:
    """Claim `run` for a moment with a fresh token, to settle it after its owner is gone; None when someone
    holds it (a resume taking it over) or its lock cannot be written. The caller releases the lock."""
    try:
        return ownership.acquire(run.path, new_token(), stale_after_s)
    except (RunBusyError, OSError) as error:
        log.info("not taking over %s: %s", run.run_id, error)
        return None


def record_queued(run: RunDir, token: str, *, backend: str = "local", trains_here: bool = True,
                  depends_on: Sequence[str] = (), message: str | None = None) -> None:
    """Name `token` as the owner of a queued run in its status.json, with its backend, its node (this host
    when `trains_here`, else not known yet) and the runs it waits for."""
    fields = {**owner_fields(token, backend, socket.gethostname() if trains_here else None),
              "depends_on": list(depends_on)}
    if message is not None:
        fields["message"] = message
    run.write_status(**fields)


def requeue_for_resume(run: RunDir, token: str, lock: OwnerLock, from_scratch: bool,
                       stale_after_s: float = STALE_AFTER_S) -> tuple[bool, str]:
    """Queue a stopped run again, owned by `token` (whose `lock` the caller holds): from its last checkpoint,
    or with `from_scratch` in place keeping only its config. Returns (whether training resumes from a
    checkpoint, the note logged); JobError when the run is not resumable."""
    try:
        status = run.read_status()
    except RunStoreError as error:
        raise JobError(str(error)) from None
    state = str(status.get("state"))
    if state in ACTIVE_STATES:  # we hold its lock, so its previous owner is gone
        reason = lock.took_over or ownership.status_orphan_reason(status, stale_after_s=stale_after_s)
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
                     else status.get("epoch", 0), **owner_fields(token, node=socket.gethostname()))
    run.log(note)
    return run.file(CHECKPOINT_FILE).exists(), note


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
            if stopped_by_deletion(run) is None:  # a deleted run is said so once, by the trainer that stops
                log.error("lost the owner lock of %s", run.run_id)
            if on_lost is not None:
                on_lost()
            return
        if progress is not None:
            publish_progress(run, progress)

    try:
        run.write_status(**{**owner_fields(token, backend, socket.gethostname()), **status})
        heartbeat = Heartbeat(beat, heartbeat_s)
        try:
            yield token
        finally:
            heartbeat.stop()
    finally:
        lock.release()
        release_token(token)


# ---------------------------------------------------------------------------------------------
# heartbeat and progress


class Heartbeat:
    """A daemon thread calling `beat()` every `interval` seconds until stopped."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
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


def publish_progress(run: RunDir, progress: Progress) -> None:
    """Copy the live progress of a training run into its status.json (the owner's heartbeat calls it)."""
    snap = progress.snapshot()
    if snap.get("state") != "running":
        return
    run.write_status(**{key: snap[key] for key in LIVE_FIELDS if snap.get(key) is not None})


def record_started(run: RunDir, started_at: float) -> None:
    """The trainer has the run: `running` from `started_at` (an earlier leg's error cleared)."""
    run.write_status(state="running", started_at=started_at, error=None)


def record_epoch(run: RunDir, *, phase: str, epoch: int, epochs_total: int, fraction: float,
                 metrics: dict[str, Any], message: str) -> None:
    """An epoch of `phase` has ended (checkpointed): where the run is, its figures and its log line."""
    run.write_status(phase=phase, epoch=epoch, epochs_total=epochs_total, fraction=fraction, metrics=metrics,
                     message=message)


# ---------------------------------------------------------------------------------------------
# end


def record_done(run: RunDir) -> None:
    run.write_status(state="done", fraction=1.0, message="done", finished_at=time.time())


def record_end(run: RunDir, state: str, message: str, *, error: str | None = None, trace: str | None = None,
               line: str | None = None) -> None:
    """Record that `run` ended `state` without finishing (cancelled, failed), best effort and most important
    first: status.json (rewritten in place when the disk has no room for a new file), `trace` into
    traceback.txt, then `line` (default `message`) in the log. Never raises OSError; writes nothing into a run
    directory that was deleted (it is not made again)."""
    if stopped_by_deletion(run) is not None:
        log.info("not recording the end of %s: its directory %s was deleted", run.run_id, run.path)
        return
    fields: dict[str, Any] = {"state": state, "message": message, "finished_at": time.time()}
    if error is not None:
        fields["error"] = error
    run.force_status(**fields)
    try:
        if trace is not None:
            atomic_write_bytes(run.file(TRACEBACK_FILE), trace.encode())
        run.log(line if line is not None else message)
    except OSError as problem:
        log.warning("could not record the end of %s: %s", run.run_id, problem)


def record_unstarted_end(run: RunDir, state: str, message: str) -> None:
    """Write the final `state` (with `message`, and as `error` when failed) of a run that ended before it
    reached the trainer (cancelled in the queue, a failed dependency), and log it; a disk that refuses the
    write is logged, never raised (the caller settles its job either way)."""
    record_end(run, state, message, error=message if state == "failed" else None)


def record_copied_back(run: RunDir, node: Any, files: int) -> None:
    """A run trained in a folder of another node has been unpacked into the store (OSError if not written)."""
    run.write_status(copied_back_at=time.time())
    run.log(f"copied back from node {node}: {files} files")


def stopped_by_deletion(run: RunDir) -> RunDeleted | None:
    """The error a run's owner stops with when the run's directory is gone (deleted while it trained);
    None while it exists."""
    return None if run.path.is_dir() else RunDeleted(run.path)


# ---------------------------------------------------------------------------------------------
# interruption


def mark_interrupted(run: RunDir, was: str, reason: str) -> None:
    """Record that `run` stopped without its owner finishing it (status, message and log line)."""
    run.write_status(state="interrupted", message=f"interrupted while {was}: {reason}",
                     interrupted_at=time.time())
    run.log(f"marked interrupted (was {was}): {reason}")


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
        run = RunDir(info.path)
        lock = take_over(run, stale_after_s)
        if lock is None:
            continue
        try:
            was = run.state
            if was in ACTIVE_STATES:
                mark_interrupted(run, was, reason)
                recovered.append(info.run_id)
        except (RunStoreError, OSError) as error:
            log.warning("could not mark %s interrupted: %s", info.run_id, error)
        finally:
            lock.release()
    return recovered
