"""Suites on Ray, against a real local Ray instance on this machine (started once for the module, stopped
after): a two-run sweep end to end through the CLI, a worker killed mid-run (marked interrupted, then
resumed), a dependency that failed, and bad input (exit 2, nothing created)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import prunelab
from prunelab.config import RunConfig
from prunelab.runs.ownership import read_lock
from prunelab.runs.run_format import CHECKPOINT_FILE
from prunelab.runs.store import RunStore
from prunelab.scheduling.ray_backend import RaySuiteRunner
from prunelab.scheduling.suites import Suite, SuiteRun
from tests.helpers import run_cli, tiny_config

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.ray  # tests that start a local Ray instance (ray_instance) are slow too

TINY = ["--train-size", "200", "--test-size", "100", "--width", "0.125", "--batch-size", "50", "--lr", "0.05"]


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Ray instance with 2 CPUs; its workers inherit this process's environment (dataset cache)."""
    import ray

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))
        # "local": a new instance even where /tmp/ray/ray_current_cluster names another (a stale one)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()


def _status(path: Path) -> dict[str, Any]:
    return json.loads((path / "status.json").read_text())


def test_a_cluster_is_shipped_the_whole_prunelab_package() -> None:
    """The runtime env names the `prunelab/` folder itself (not the subpackage this module lives in), so every
    node imports the driver's PruneLab; no Ray is started."""
    from prunelab.scheduling.ray_backend import runtime_env

    assert runtime_env()["py_modules"] == [str(Path(prunelab.__file__).resolve().parent)]


@pytest.mark.slow
def test_a_two_run_sweep_runs_on_ray_into_the_run_store(ray_instance: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, out, err = run_cli("suite", "sweep", "--param", "sparsity_lambda", "--values", "0,1e-3", "--epochs", "1",
                             "--finetune-epochs", "1", *TINY, "--backend", "ray", "--runs-dir", str(runs))
    assert code == 0, err
    assert "2/2 runs done on Ray" in out and "runs on Ray (1 node(s))" in err
    paths = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(paths) == 2
    node_id = ray_instance.get_runtime_context().get_node_id()
    for path in paths:
        status = _status(path)
        assert status["state"] == "done" and status["backend"] == "ray"
        assert status["node"] == socket.gethostname() and status["ray_node_id"] == node_id
        assert status["ray_worker_pid"] != os.getpid() and status["owner_pid"] == status["ray_worker_pid"]
        assert status["batches"] == 4  # live progress written by the worker's heartbeat while it trained
        assert not (path / "owner.lock").exists()
        log = (path / "log.txt").read_text()
        assert "queued on Ray (1 CPU)" in log and "handed over by its submitter" in log
        for name in ("summary.json", "model.pt", "metrics.jsonl", "gamma_history.npz", "pruning.json"):
            assert (path / name).is_file(), name
    lambdas = sorted(json.loads((p / "config.json").read_text())["method"]["sparsity_lambda"] for p in paths)
    assert lambdas == [0.0, 1e-3]
    # the same store as local runs: list and jobs read them unchanged
    code, listing, _ = run_cli("list", "--runs-dir", str(runs))
    assert code == 0 and listing.count(" done ") == 2 and "broken" not in listing
    code, table, _ = run_cli("jobs", "--runs-dir", str(runs))
    assert code == 0 and all(p.name in table for p in paths) and table.count(f"ray:{socket.gethostname()}") == 2


@pytest.mark.slow
def test_a_run_whose_ray_worker_dies_is_interrupted_and_resumes(ray_instance: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = tiny_config("baseline", epochs=5, train_size=200, test_size=100, width=0.125)
    suite = Suite("one", "one-1", (SuiteRun("baseline", config),))
    runner = RaySuiteRunner(runs)
    (run_id,) = runner.submit_suite(suite)
    path = runs / run_id
    deadline = time.monotonic() + 120
    while not (path / CHECKPOINT_FILE).exists():  # epoch 1 checkpointed: the worker owns the run
        assert time.monotonic() < deadline and runner.jobs()[0].state in ("queued", "running")
        time.sleep(0.1)
    lock = read_lock(path)
    assert lock is not None and lock.pid is not None and lock.pid != os.getpid()
    os.kill(lock.pid, signal.SIGKILL)  # the Ray worker process training the run
    assert runner.wait(timeout=60)
    runner.shutdown()
    status = _status(path)
    assert status["state"] == "interrupted", status
    assert "its Ray task on" in status["message"] and f"owner process {lock.pid} is gone" in status["message"]
    code, _out, err = run_cli("resume", run_id, "--runs-dir", str(runs))
    assert code == 0, err
    status = _status(path)
    assert status["state"] == "done" and status["backend"] == "local"
    assert "resumed from train epoch" in (path / "log.txt").read_text()
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5]  # continued from the checkpoint, no epoch twice


@pytest.mark.slow
def test_a_run_whose_dependency_failed_fails_without_training(ray_instance: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    broken = tiny_config("baseline", train_size=200, test_size=100, width=0.125).model_dump(mode="json")
    broken["data"]["dataset"] = "folder:/nonexistent/prunelab"
    parent = RunConfig.model_validate(broken)
    child = tiny_config("manidp", train_size=200, test_size=100, width=0.125)
    suite = Suite("dep", "dep-1", (SuiteRun("pretrain", parent), SuiteRun("gated", child, "pretrain")))
    with RaySuiteRunner(runs) as runner:
        parent_id, child_id = runner.submit_suite(suite)
        assert runner.wait(timeout=60)
        states = {job.run_id: job.state for job in runner.jobs()}
    assert states == {parent_id: "failed", child_id: "failed"}
    assert "does not exist" in _status(runs / parent_id)["error"]
    child_status = _status(runs / child_id)
    assert child_status["error"].startswith(f"dependency {parent_id} ended failed")
    assert not (runs / child_id / "metrics.jsonl").exists()
    assert [info.state for info in RunStore(runs).iter_runs()] == ["failed", "failed"]


@pytest.mark.slow
def test_copy_back_trains_on_the_node_and_brings_the_runs_home(ray_instance: Any, tmp_path: Path) -> None:
    """Without a shared runs folder: the parent's finished run travels to its child's task (init_from),
    and both come back into the store whole."""
    runs = tmp_path / "runs"
    parent = tiny_config("baseline", train_size=200, test_size=100, width=0.125)
    child = tiny_config("manidp", train_size=200, test_size=100, width=0.125, probe_size=10)
    suite = Suite("copy", "copy-1", (SuiteRun("pretrain", parent), SuiteRun("gated", child, "pretrain")))
    with RaySuiteRunner(runs, copy_back=True) as runner:
        parent_id, child_id = runner.submit_suite(suite)
        assert runner.wait(timeout=180)
        assert [job.state for job in runner.jobs()] == ["done", "done"]
    for run_id in (parent_id, child_id):
        status = _status(runs / run_id)
        assert status["state"] == "done" and status["backend"] == "ray" and status["copied_back_at"] > 0
        assert "copied back from node" in (runs / run_id / "log.txt").read_text()
        assert not (runs / run_id / "owner.lock").exists()
    summary = json.loads((runs / child_id / "summary.json").read_text())
    assert summary["parent_run"] == parent_id and summary["epochs_total"] == 2
    for name in ("model.pt", "per_image.parquet", "probe.npz", "manidp.json", "metrics.jsonl"):
        assert (runs / child_id / name).is_file(), name
    assert prunelab.load_model(runs / child_id) is not None
    code, listing, _ = run_cli("list", "--runs-dir", str(runs))
    assert code == 0 and listing.count(" done ") == 2 and "broken" not in listing


@pytest.mark.slow
def test_the_app_starts_a_suite_on_ray_and_cancels_it(ray_instance: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from app_components import ray_jobs

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "app_pages" / "runs.py"), default_timeout=120).run()
    at.radio(key="suite_backend").set_value("ray")
    at.selectbox(key="suite_name").set_value("sweep")
    at.selectbox(key="suite_param").set_value("sparsity_lambda")
    at.text_input(key="suite_values").set_value("0")
    # long enough that the run cannot finish before the cancel lands (1 epoch could, on an idle machine:
    # the run ended "done" and the test failed on a race, not on the cancel)
    at.number_input(key="suite_epochs").set_value(20)
    at.button(key="FormSubmitter:suite_form-Start suite").click().run()
    try:
        assert not at.exception, [e.value for e in at.exception]
        assert any("on Ray: 1 runs queued" in str(s.value) for s in at.success)
        (path,) = runs.iterdir()
        assert _status(path)["backend"] == "ray"
        assert any("· Ray" in str(m.value) for m in at.markdown)  # the Jobs panel lists the Ray run
        at.button(key=f"cancel_{path.name}").click().run()
        runner = ray_jobs.started_runner()  # held by st.cache_resource for the runs folder
        assert runner is not None and runner.wait(timeout=120)
        assert _status(path)["state"] == "cancelled"
    finally:
        leftover = ray_jobs.started_runner()
        if leftover is not None:
            leftover.shutdown()


def test_a_cancel_while_the_task_starts_is_a_request_not_an_exception(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`ray.cancel` interrupts the task's main thread (`_thread.interrupt_main`) on whatever line it is on:
    while a task starts, that is `import torch`, and a KeyboardInterrupt there left a half-imported torch in
    the reused worker (every later run on it failed). The task takes it as a request: the run ends
    `cancelled` at its first batch, nothing is raised, and SIGINT gets its handler back. Run here in the
    test's main thread, as Ray runs a task on its worker's."""
    import _thread

    from prunelab.scheduling import ray_backend

    real_node_fields = ray_backend.node_fields

    def interrupted_while_starting() -> dict[str, Any]:
        _thread.interrupt_main()  # what ray.cancel(ref, force=False) does in the worker
        return real_node_fields()

    monkeypatch.setattr(ray_backend, "node_fields", interrupted_while_starting)
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    handler = signal.getsignal(signal.SIGINT)
    config = tiny_config("baseline", epochs=3)
    spec = {"run_path": str(tmp_path / "unused"), "run_id": "20261203-000000-baseline", "handoff_from": None,
            "num_cpus": 1, "copy_back": True, "config": config.model_dump(mode="json")}
    try:
        result = ray_backend.train_run(spec)
    except KeyboardInterrupt:  # caught here, or it would stop the whole test session
        pytest.fail("the cancel escaped the task as a KeyboardInterrupt")
    assert result["state"] == "cancelled"
    assert signal.getsignal(signal.SIGINT) is handler
    back = tmp_path / "back"
    back.mkdir()  # unpack_run writes into an existing run directory (it never makes one: see the next test)
    names = ray_backend.unpack_run(result["archive"], back)
    status = _status(back)
    assert status["state"] == "cancelled" and status["epoch"] == 0
    assert "cancel requested through Ray" in (back / "log.txt").read_text() and "summary.json" not in names


def test_a_run_copied_back_into_a_deleted_directory_is_not_made_again(tmp_path: Path) -> None:
    """The driver unpacks a run trained on another node into its run directory; deleted meanwhile, it stays
    deleted and the driver is told so in one line (no Ray needed)."""
    from prunelab.runs.run_format import RunDeleted
    from prunelab.scheduling import ray_backend

    run = RunStore(tmp_path / "runs").create(tiny_config(), "gone")
    archive = ray_backend.pack_run(run.path)
    for name in list(run.path.iterdir()):
        name.unlink()
    run.path.rmdir()
    with pytest.raises(RunDeleted, match=f"run directory {run.path} was deleted while it trained; stopping"):
        ray_backend.unpack_run(archive, run.path)
    assert not run.path.exists()


@pytest.mark.slow
def test_a_share_no_node_can_hold_is_bad_input(ray_instance: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, _out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", "0", *TINY, "--backend", "ray",
                              "--num-gpus", "1", "--runs-dir", str(runs))
    assert code == 2 and err.strip().splitlines() == [
        "error: each run asks for 1 GPU(s) but the Ray cluster has 0; lower --num-gpus"]
    assert not runs.exists()


def test_an_unreachable_ray_address_is_bad_input(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = tmp_path / "runs"
    code, out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", "0,1e-3", *TINY, "--backend", "ray",
                             "--address", f"127.0.0.1:{port}", "--runs-dir", str(runs))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: cannot reach a Ray cluster at 127.0.0.1:{port}: Connection refused; "
                                        "start one with `ray start --head` there, or leave out --address to start "
                                        "a local instance"]
    assert not runs.exists()


@pytest.mark.parametrize(("flags", "expected"), [
    (["--backend", "spark"], "unknown backend 'spark'; allowed: local, ray"),
    (["--address", "10.0.0.1:6379"], "--address apply only with --backend ray"),
    (["--backend", "ray", "--num-gpus", "1.5"], "--num-gpus above 1 must be a whole number"),
    (["--backend", "ray", "--num-cpus", "0"], "--num-cpus must be above 0"),
    (["--backend", "ray", "--num-cpus", "5000"], "--num-cpus must be above 0 and at most 1,024 ("),
    (["--backend", "ray", "--num-gpus", "100"], "--num-gpus must be between 0 and 64 ("),
    (["--backend", "ray", "--address", "head-node"], "Ray address 'head-node' is not HOST:PORT"),
    (["--backend", "ray", "--device", "cuda"], "--device cuda on Ray needs a GPU share per run"),
])
def test_bad_backend_flags_are_refused_in_one_line(flags: list[str], expected: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, _out, err = run_cli("suite", "sweep", "--param", "lambda", "--values", "0", *flags, "--runs-dir", str(runs))
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err
    assert not runs.exists()
