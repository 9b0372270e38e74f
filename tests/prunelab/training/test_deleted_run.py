"""A run directory deleted while its run trains stays deleted: no write brings it back half-made (the atomic
writer makes no folder), and the trainer, the local scheduler and `prunelab run` stop with one clear line."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from prunelab.methods.baseline import Baseline
from prunelab.runs import run_life
from prunelab.runs.progress import Progress
from prunelab.runs.run_format import RunDeleted, atomic_write_json
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.jobs import JobManager
from prunelab.training.engine import run_training
from tests.helpers import run_cli, tiny_config

TINY = ["--train-size", "100", "--test-size", "50", "--width", "0.25", "--batch-size", "50", "--threads", "1",
        "--epochs", "3"]


def line(path: Path) -> str:
    return f"run directory {path} was deleted while it trained; stopping"


def delete_at_epoch_2(monkeypatch: pytest.MonkeyPatch, where: list[Path]) -> None:
    """Once epoch 1 is checkpointed, the run's directory (found from the trainer's context) is deleted."""

    def delete(self: Baseline, phase: object, epoch: int, model: object) -> None:
        if epoch == 1:
            path = self.context.artefacts.run_dir
            where.append(path)
            shutil.rmtree(path)

    monkeypatch.setattr(Baseline, "on_epoch_start", delete)


def test_the_atomic_writer_makes_no_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_json(tmp_path / "gone" / "status.json", {"state": "running"})
    assert list(tmp_path.iterdir()) == []


def test_the_ends_of_a_deleted_run_write_nothing(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config(), "gone")
    shutil.rmtree(run.path)
    run_life.record_end(run, "failed", "boom", error="boom", trace="Traceback ...")
    run_life.record_unstarted_end(run, "cancelled", "cancelled before it started")
    assert not run.path.exists()
    assert str(run_life.stopped_by_deletion(run)) == line(run.path)
    assert run_life.stopped_by_deletion(RunDir(tmp_path)) is None


@pytest.mark.slow
def test_the_trainer_stops_with_one_line_and_the_run_is_not_made_again(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(epochs=3, train_size=100, test_size=50)
    run = RunStore(tmp_path).create(config, "deleted")
    delete_at_epoch_2(monkeypatch, [])
    progress = Progress(run.run_id)
    with pytest.raises(RunDeleted) as raised:
        run_training(config, run, progress)
    assert str(raised.value) == line(run.path)
    assert not run.path.exists() and list(tmp_path.iterdir()) == []
    snap = progress.snapshot()
    assert snap["state"] == "failed" and snap["error"] == line(run.path)


@pytest.mark.slow
def test_a_job_whose_run_is_deleted_ends_with_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where: list[Path] = []
    delete_at_epoch_2(monkeypatch, where)
    manager = JobManager(tmp_path, heartbeat_s=0.2)
    try:
        run_id = manager.submit(tiny_config(epochs=3, train_size=100, test_size=50), "deleted")
        assert manager.wait(run_id, timeout=120)
        job = manager.job(run_id)
        time.sleep(0.6)  # a few more heartbeats: none of them writes the run again
    finally:
        manager.shutdown()
    (path,) = where
    assert job.state == "failed" and job.error == line(path)
    assert not path.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_run_whose_run_is_deleted_prints_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where: list[Path] = []
    delete_at_epoch_2(monkeypatch, where)
    runs = tmp_path / "runs"
    code, out, err = run_cli("run", "baseline", *TINY, "--runs-dir", str(runs))
    (path,) = where
    lines = [text for text in err.strip().splitlines() if not text.startswith("[")]  # the progress bar's
    assert code == 1 and out == "" and lines == [f"error: {line(path)}"] and "Traceback" not in err
    assert not path.exists() and list(runs.iterdir()) == []
