"""JobManager: submit, FIFO, cancel (queued and running), failure isolation, dependencies, recovery,
resume, concurrent submissions, and that nothing saved is lost when a job stops mid-epoch."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from prunelab.config import RunConfig
from prunelab.methods.baseline import Baseline
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.jobs import JobManager, list_jobs, orphan_reason, recover_interrupted

TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))


def tiny(name: str | None = None, epochs: int = 2, **data: object) -> RunConfig:
    """A run of a few seconds: 150 train images (3 batches of 50), 50 test images, width 0.25."""
    return RunConfig.model_validate({
        "name": name,
        "data": {"train_size": 150, "test_size": 50, **data},
        "model": {"width": 0.25},
        "train": {"epochs": epochs, "batch_size": 50, "eval_batch_size": 50},
    })


BatchHook = Callable[[str | None, int, int], None]


def install_batch_hook(monkeypatch: pytest.MonkeyPatch, hook: BatchHook) -> None:
    """Call `hook(run name, epoch (0-based), batch (1-based))` after every backward pass of a baseline run."""

    def on_epoch_start(self: Baseline, phase: object, epoch: int, model: object) -> None:
        self._test_epoch, self._test_batch = epoch, 0

    def after_backward(self: Baseline, model: object) -> None:
        self._test_batch += 1
        hook(self.context.config.name, self._test_epoch, self._test_batch)

    monkeypatch.setattr(Baseline, "on_epoch_start", on_epoch_start)
    monkeypatch.setattr(Baseline, "after_backward", after_backward)


class Gate:
    """Blocks a training thread at a chosen (run, epoch, batch) until the test releases it."""

    def __init__(self, name: str, epoch: int, batch: int) -> None:
        self.where = (name, epoch, batch)
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, name: str | None, epoch: int, batch: int) -> None:
        if (name, epoch, batch) == self.where:
            self.reached.set()
            assert self.release.wait(TIMEOUT)


def metric_epochs(run: RunDir) -> list[int]:
    return [int(row["epoch"]) for row in run.read_metrics()]


def checkpoint_epochs(run: RunDir) -> int:
    return int(run.load_torch("checkpoint.pt")["epochs_done"])


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    jm = JobManager(tmp_path / "runs")
    yield jm
    jm.shutdown(cancel_running=True, timeout=TIMEOUT)


def test_submit_returns_at_once_and_runs_fifo(manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate("first", 0, 1)
    install_batch_hook(monkeypatch, gate)
    started = time.perf_counter()
    first = manager.submit(tiny("first", epochs=1))
    second = manager.submit(tiny("second", epochs=1))
    assert time.perf_counter() - started < 2.0  # returns before any training
    assert gate.reached.wait(TIMEOUT)
    states = {job.run_id: job.state for job in manager.jobs()}
    assert states == {first: "running", second: "queued"}
    status = manager.store.open(second).read_status()
    assert status["state"] == "queued" and status["owner"] == manager.token
    assert status["owner_pid"] == os.getpid() and status["heartbeat_at"] > 0
    gate.release.set()
    assert manager.wait(timeout=TIMEOUT)
    runs = [manager.store.open(run_id) for run_id in (first, second)]
    assert [run.state for run in runs] == ["done", "done"]
    assert runs[0].read_status()["finished_at"] <= runs[1].read_status()["started_at"]  # FIFO, one at a time
    snap = manager.progress(first)
    assert snap["state"] == "done" and snap["fraction"] == 1.0 and "test_acc" in snap["metrics"]
    assert any("done" in line for line in snap["log"])


def test_cancel_queued_job_is_dropped(manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate("first", 0, 1)
    install_batch_hook(monkeypatch, gate)
    first = manager.submit(tiny("first", epochs=1))
    second = manager.submit(tiny("second", epochs=1))
    assert gate.reached.wait(TIMEOUT)
    assert manager.cancel(second) is True
    assert manager.cancel(second) is False  # already ended
    assert manager.wait(second, timeout=1.0)
    gate.release.set()
    assert manager.wait(timeout=TIMEOUT)
    assert manager.store.open(first).state == "done"
    dropped = manager.store.open(second)
    assert dropped.state == "cancelled" and manager.job(second).state == "cancelled"
    assert not dropped.file("checkpoint.pt").exists() and dropped.read_metrics() == []


def test_cancel_running_stops_at_batch_boundary_and_keeps_checkpoint(
        manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate("victim", 1, 1)  # inside the second epoch, after its first batch
    install_batch_hook(monkeypatch, gate)
    victim = manager.submit(tiny("victim", epochs=3))
    after = manager.submit(tiny("after", epochs=1))
    assert gate.reached.wait(TIMEOUT)
    assert manager.cancel(victim) is True
    gate.release.set()
    assert manager.wait(victim, timeout=TIMEOUT)
    run = manager.store.open(victim)
    assert run.state == "cancelled" and manager.job(victim).state == "cancelled"
    snap = manager.progress(victim)
    assert (snap["epoch"], snap["batch"]) == (2, 1)  # stopped right after the batch in flight
    assert metric_epochs(run) == [1] and checkpoint_epochs(run) == 1  # epoch 1 kept
    assert not run.file("model.pt").exists()
    assert manager.wait(timeout=TIMEOUT)
    assert manager.store.open(after).state == "done"  # the manager goes on


def test_failing_jobs_are_isolated_and_keep_saved_epochs(
        manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(name: str | None, epoch: int, batch: int) -> None:
        if name == "crash" and (epoch, batch) == (1, 2):
            raise RuntimeError("boom in the middle of epoch 2")

    install_batch_hook(monkeypatch, crash)
    crashing = manager.submit(tiny("crash", epochs=3))
    missing = manager.submit(tiny("missing", dataset="folder:/definitely/not/here"))
    healthy = manager.submit(tiny("healthy", epochs=1))
    assert manager.wait(timeout=TIMEOUT)

    run = manager.store.open(crashing)
    job = manager.job(crashing)
    assert run.state == job.state == "failed"
    assert "boom in the middle of epoch 2" in job.error and "boom" in run.read_status()["error"]
    assert "RuntimeError" in run.file("traceback.txt").read_text()
    assert metric_epochs(run) == [1] and checkpoint_epochs(run) == 1

    lost = manager.job(missing)
    assert lost.state == "failed" and "does not exist" in lost.error
    assert manager.store.open(missing).file("traceback.txt").exists()
    assert manager.store.open(healthy).state == "done"
    assert all(worker.is_alive() for worker in manager._workers)


def test_dependency_waits_for_done_and_fails_clearly(manager: JobManager) -> None:
    parent = manager.submit(tiny("parent", epochs=1))
    child = manager.submit(tiny("child", epochs=1), depends_on=[parent])
    broken = manager.submit(tiny("broken", dataset="folder:/definitely/not/here"))
    orphan = manager.submit(tiny("orphan", epochs=1), depends_on=[broken])
    assert manager.wait(timeout=TIMEOUT)
    parent_run, child_run = manager.store.open(parent), manager.store.open(child)
    assert parent_run.state == child_run.state == "done"
    assert parent_run.read_status()["finished_at"] <= child_run.read_status()["started_at"]
    job = manager.job(orphan)
    assert job.state == "failed" and f"dependency {broken} ended failed" in job.error
    assert manager.store.open(orphan).read_status()["error"] == job.error
    assert manager.store.open(orphan).read_metrics() == []


def test_concurrent_submissions_from_many_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets: set[int] = set()  # identity of the dataset each trainer trained on

    def on_epoch_start(self: Baseline, phase: object, epoch: int, model: object) -> None:
        datasets.add(id(self.context.data))

    monkeypatch.setattr(Baseline, "on_epoch_start", on_epoch_start)
    manager = JobManager(tmp_path / "runs", max_concurrent=2)
    ids: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def submit() -> None:
        barrier.wait()
        run_id = manager.submit(tiny("same-name", epochs=1))
        with lock:
            ids.append(run_id)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert manager.wait(timeout=TIMEOUT)
    finally:
        manager.shutdown()
    assert len(ids) == len(set(ids)) == 6
    assert sorted(job.run_id for job in manager.jobs()) == sorted(ids)
    assert all(manager.store.open(run_id).state == "done" for run_id in ids)
    assert len(datasets) == 1  # the six runs shared one dataset in memory


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_run(store: RunStore, name: str, **status: object) -> str:
    run = store.create(tiny(name), name)
    run.write_status(**status)
    return run.run_id


def test_recovery_marks_only_orphaned_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host, now = os.uname().nodename, time.time()
    try:
        live = JobManager(store.root, recover=False)
        ids = {
            "dead-pid": _fake_run(store, "dead-pid", state="running", owner="x", owner_pid=_dead_pid(),
                                  owner_host=host, heartbeat_at=now),
            "live-pid": _fake_run(store, "live-pid", state="running", owner="y", owner_pid=sleeper.pid,
                                  owner_host=host, heartbeat_at=now),
            "stale": _fake_run(store, "stale", state="running", owner="z", owner_pid=sleeper.pid,
                               owner_host=host, heartbeat_at=now - 3600),
            "queued-stale": _fake_run(store, "queued-stale", state="queued", heartbeat_at=now - 3600),
            "other-host": _fake_run(store, "other-host", state="running", owner="w", owner_pid=1,
                                    owner_host="elsewhere", heartbeat_at=now),
            "stopped-manager": _fake_run(store, "stopped-manager", state="running", owner="gone",
                                         owner_pid=os.getpid(), owner_host=host, heartbeat_at=now),
            "live-manager": _fake_run(store, "live-manager", state="running", owner=live.token,
                                      owner_pid=os.getpid(), owner_host=host, heartbeat_at=now - 3600),
            "done": _fake_run(store, "done", state="done", owner_pid=_dead_pid(), owner_host=host),
        }
        expected = {"dead-pid", "stale", "queued-stale", "stopped-manager"}
        # a read-only view already shows them interrupted
        shown = {job.run_id: job.state for job in list_jobs(store.root)}
        assert {key for key, run_id in ids.items() if shown[run_id] == "interrupted"} == expected
        recovering = JobManager(store.root)  # a manager starting up recovers
        recovering.shutdown()
        recovered = recovering.recovered
        assert sorted(recovered) == sorted(ids[key] for key in expected)
        for key, run_id in ids.items():
            status = store.open(run_id).read_status()
            assert (status["state"] == "interrupted") == (key in expected), key
        assert "gone" in store.open(ids["dead-pid"]).read_status()["message"]
        assert recover_interrupted(store.root) == []  # idempotent
        live.shutdown()
        assert orphan_reason(store.open(ids["live-manager"]).read_status()) is not None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_resume_after_cancel_continues_to_the_same_result(
        manager: JobManager, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate("stopped", 1, 2)
    install_batch_hook(monkeypatch, gate)
    reference = manager.submit(tiny("reference", epochs=2))
    stopped = manager.submit(tiny("stopped", epochs=2))
    assert gate.reached.wait(TIMEOUT)
    manager.cancel(stopped)
    gate.release.set()
    assert manager.wait(stopped, timeout=TIMEOUT)
    run = manager.store.open(stopped)
    assert run.state == "cancelled" and metric_epochs(run) == [1]

    assert manager.resume(stopped) == stopped
    assert manager.wait(stopped, timeout=TIMEOUT)
    assert run.state == "done" and manager.job(stopped).state == "done"
    assert metric_epochs(run) == [1, 2]  # each epoch exactly once
    assert checkpoint_epochs(run) == 2 and run.file("model.pt").exists()
    # continuing from the checkpoint reproduces the uninterrupted run (same seeds, same data order)
    ref = manager.store.open(reference)
    for got, want in zip(run.read_metrics(), ref.read_metrics(), strict=True):
        assert got["test_loss"] == pytest.approx(want["test_loss"], rel=1e-4, abs=1e-5)
    assert run.read_summary()["test_acc"] == pytest.approx(ref.read_summary()["test_acc"])
    got_state = run.load_torch("model.pt")["model_state"]
    want_state = ref.load_torch("model.pt")["model_state"]
    assert all(torch.allclose(got_state[k].float(), want_state[k].float(), atol=1e-4) for k in want_state)


def test_resume_refuses_done_and_live_runs(manager: JobManager) -> None:
    from prunelab.scheduling.jobs import JobError

    done = manager.submit(tiny("done", epochs=1))
    assert manager.wait(done, timeout=TIMEOUT)
    with pytest.raises(JobError, match="is done"):
        manager.resume(done)
    with pytest.raises(JobError, match=r"not a PruneLab run|invalid run id"):
        manager.resume("no-such-run")


def test_resume_of_interrupted_queued_run_starts_over(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run_id = _fake_run(store, "never-started", state="queued", heartbeat_at=time.time() - 3600)
    store.open(run_id).append_metrics({"phase": "train", "phase_index": 0, "epoch": 1, "test_acc": 0.5})
    manager = JobManager(store.root)
    try:
        assert manager.recovered == [run_id]
        manager.resume(run_id)
        assert manager.wait(run_id, timeout=TIMEOUT)
    finally:
        manager.shutdown()
    run = store.open(run_id)
    assert run.state == "done" and metric_epochs(run) == [1, 2]  # the stray row without a checkpoint is gone


def test_shutdown_cancels_queued_and_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate("running", 0, 1)
    install_batch_hook(monkeypatch, gate)
    manager = JobManager(tmp_path / "runs")
    running = manager.submit(tiny("running", epochs=2))
    queued = manager.submit(tiny("queued", epochs=1))
    assert gate.reached.wait(TIMEOUT)
    threading.Timer(0.2, gate.release.set).start()
    manager.shutdown(cancel_running=True, timeout=TIMEOUT)
    assert manager.store.open(running).state == "cancelled"
    assert manager.store.open(queued).state == "cancelled"
    assert not any(worker.is_alive() for worker in manager._workers)
    from prunelab.scheduling.jobs import JobError

    with pytest.raises(JobError, match="shut down"):
        manager.submit(tiny("late"))


def test_runs_trained_side_by_side_in_one_process_are_reproducible(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads start the same config at once: seeding and initialisation must not interleave."""
    import prunelab.training.engine as engine

    started = threading.Barrier(2)
    real_build = engine.build_model

    def build_after_both_seeded(spec: dict) -> torch.nn.Module:
        # without the engine's lock both threads seed, then both draw: the second draws other numbers
        with contextlib.suppress(threading.BrokenBarrierError):  # with the lock: one at a time, time-out
            started.wait(timeout=2)
        return real_build(spec)

    monkeypatch.setattr(engine, "build_model", build_after_both_seeded)
    config = RunConfig.model_validate({"data": {"train_size": 100, "test_size": 20}, "model": {"width": 0.25},
                                       "train": {"epochs": 1, "batch_size": 50, "device": "cpu", "threads": 1}})
    with JobManager(tmp_path, max_concurrent=2) as manager:
        ids = [manager.submit(config), manager.submit(config)]
        assert manager.wait(timeout=300)
    states = [torch.load(tmp_path / run_id / "model.pt", weights_only=True)["model_state"] for run_id in ids]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
