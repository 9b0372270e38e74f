"""The run-life module and the Scheduler protocol: both schedulers implement every method of the protocol
with a compatible signature, and each state change of a run is recorded as the views expect (no training)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from prunelab.runs import run_life
from prunelab.runs.ownership import new_token, read_lock
from prunelab.runs.progress import Progress
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.jobs import JobManager
from prunelab.scheduling.protocol import Scheduler
from prunelab.scheduling.ray_backend import RaySuiteRunner
from tests.helpers import tiny_config

pytestmark = pytest.mark.ray  # the Ray scheduler's side of the protocol (no Ray instance is started)

PROTOCOL_METHODS = ("submit", "submit_suite", "cancel", "jobs", "job", "wait", "shutdown")


def protocol_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(Scheduler, name)) for name in dir(Scheduler)
            if not name.startswith("_") and callable(getattr(Scheduler, name))}


def accepts(implementation: inspect.Signature, protocol: inspect.Signature) -> list[str]:
    """What keeps `implementation` from being called as `protocol` allows (empty when it can be)."""
    problems = []
    params = implementation.parameters
    for name, wanted in protocol.parameters.items():
        got = params.get(name)
        if got is None:
            problems.append(f"no parameter {name}")
        elif wanted.default is not inspect.Parameter.empty and got.default is inspect.Parameter.empty:
            problems.append(f"{name} has no default")
        elif wanted.kind is not inspect.Parameter.KEYWORD_ONLY and got.kind is inspect.Parameter.KEYWORD_ONLY:
            problems.append(f"{name} is keyword-only")
        elif (wanted.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
              and list(params).index(name) != list(protocol.parameters).index(name)):
            problems.append(f"{name} is not at position {list(protocol.parameters).index(name)}")
    extra = [name for name, p in params.items() if name not in protocol.parameters
             and p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    problems += [f"extra required parameter {name}" for name in extra]
    return problems


def test_the_protocol_is_what_the_schedulers_share() -> None:
    assert set(protocol_methods()) == set(PROTOCOL_METHODS)


@pytest.mark.parametrize("scheduler", [JobManager, RaySuiteRunner])
def test_each_scheduler_implements_the_protocol(scheduler: type[Any]) -> None:
    problems = {name: accepts(inspect.signature(getattr(scheduler, name)), signature)
                for name, signature in protocol_methods().items()}
    assert not {name: found for name, found in problems.items() if found}


def test_a_job_manager_is_a_scheduler(tmp_path: Path) -> None:
    with JobManager(tmp_path, recover=False) as manager:
        assert isinstance(manager, Scheduler) and manager.jobs() == []


def queued_run(tmp_path: Path) -> RunDir:
    return RunStore(tmp_path).create(tiny_config())


def test_claim_records_the_owner_and_its_end_releases_it(tmp_path: Path) -> None:
    run = queued_run(tmp_path)
    with run_life.claim_run(run, backend="ray", node="node-1") as token:
        status = run.read_status()
        assert status["owner"] == token and status["backend"] == "ray" and status["node"] == "node-1"
        assert read_lock(run.path).token == token  # type: ignore[union-attr]
        with pytest.raises(run_life.JobError, match="is owned by"):
            run_life.claim_lock(run, new_token())
    assert read_lock(run.path) is None


def test_progress_is_published_only_while_running(tmp_path: Path) -> None:
    run = queued_run(tmp_path)
    progress = Progress(run.run_id)
    progress.update(phase="train", epoch=1, fraction=0.5, batch=3, batches=6)
    run_life.publish_progress(run, progress)
    assert run.read_status()["fraction"] == 0.0  # queued: nothing published
    progress.update(state="running")
    run_life.publish_progress(run, progress)
    status = run.read_status()
    assert status["fraction"] == 0.5 and status["batch"] == 3 and status["phase"] == "train"


def test_each_end_is_recorded_with_its_fields(tmp_path: Path) -> None:
    run = queued_run(tmp_path)
    run_life.record_started(run, 1.0)
    assert run.read_status()["state"] == "running" and run.read_status()["started_at"] == 1.0
    run_life.record_end(run, "failed", "boom", error="boom", trace="Traceback ...", line="failed: boom")
    status = run.read_status()
    assert status["state"] == "failed" and status["error"] == "boom" and status["finished_at"]
    assert run.file("traceback.txt").read_text() == "Traceback ..." and "failed: boom" in run.read_log_tail()[-1]
    run_life.record_unstarted_end(run, "cancelled", "cancelled before it started")
    assert run.read_status()["state"] == "cancelled" and run.read_status()["message"] == "cancelled before it started"
    run_life.record_done(run)
    assert run.read_status()["state"] == "done" and run.read_status()["fraction"] == 1.0


def test_a_run_without_an_owner_is_recovered_then_requeued(tmp_path: Path) -> None:
    run = queued_run(tmp_path)
    run.write_status(state="running", owner="gone", owner_pid=None, heartbeat_at=1.0)
    assert run_life.recover_interrupted(tmp_path) == [run.run_id]
    assert run.read_status()["state"] == "interrupted"
    token = new_token()
    lock = run_life.claim_lock(run, token)
    try:
        resume, note = run_life.requeue_for_resume(run, token, lock, from_scratch=False)
    finally:
        lock.release()
    assert (resume, note) == (False, "no checkpoint yet: restarting from the beginning")
    status = run.read_status()
    assert status["state"] == "queued" and status["owner"] == token and status["message"] == note


def test_a_finished_run_is_not_requeued(tmp_path: Path) -> None:
    run = queued_run(tmp_path)
    run_life.record_done(run)
    token = new_token()
    lock = run_life.claim_lock(run, token)
    try:
        with pytest.raises(run_life.JobError, match="is done; only interrupted, cancelled, failed"):
            run_life.requeue_for_resume(run, token, lock, from_scratch=False)
    finally:
        lock.release()
