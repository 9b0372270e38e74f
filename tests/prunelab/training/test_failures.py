"""Nothing silently wrong: disk failures recorded, corrupt checkpoints restartable, leftovers cleaned up."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from prunelab.config import RunConfig
from prunelab.data import DatasetError, load_dataset
from prunelab.methods.baseline import Baseline
from prunelab.runs import ownership
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.store import RunDir, RunStore
from prunelab.scheduling.jobs import JobManager
from prunelab.training.engine import run_training
from tests.helpers import run_cli, tiny_config

TINY = ["--train-size", "100", "--test-size", "50", "--width", "0.25", "--batch-size", "50", "--threads", "1"]


def small() -> RunConfig:
    return tiny_config(epochs=2, train_size=100, test_size=50)


def stopped_run(runs: Path, name: str = "stopped") -> RunDir:
    """A run cancelled in its second epoch: checkpoint of epoch 1, one metrics row."""
    config = small()
    run = RunStore(runs).create(config, name)
    progress = Progress()
    progress.add_listener(lambda snap: progress.request_cancel() if snap.get("epoch") == 2 else None)
    with pytest.raises(Cancelled):
        run_training(config, run, progress)
    return run


def temp_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith(".") and ".tmp" in p.name)


def disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(args[0]) if args else None)


def one_error_line(err: str) -> str:
    """The one line a failed command printed besides its progress bar (lines starting with '[')."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("[")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# disk failures


@pytest.mark.slow
def test_a_full_disk_mid_training_ends_failed_with_the_os_error(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """From epoch 2 on no file can be replaced (what a full disk does to every atomic write)."""
    config = small()
    run = RunStore(tmp_path).create(config)
    real_replace = os.replace

    def fill_disk_at_epoch_2(self: Baseline, phase: object, epoch: int, model: object) -> None:
        if epoch == 1:
            monkeypatch.setattr(os, "replace", disk_full)

    monkeypatch.setattr(Baseline, "on_epoch_start", fill_disk_at_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        run_training(config, run)
    monkeypatch.setattr(os, "replace", real_replace)
    status = run.read_status()
    assert status["state"] == "failed" and "No space left on device" in status["error"]
    assert status["finished_at"] > status["started_at"]
    assert temp_files(run.path) == []  # the checkpoint's temp file was removed
    assert int(run.load_torch("checkpoint.pt")["epochs_done"]) == 1  # the last good checkpoint is intact


def test_cli_run_on_a_full_disk_prints_one_line_and_leaves_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(os, "replace", disk_full)
    code, out, err = run_cli("run", "baseline", "--epochs", "1", *TINY, "--runs-dir", str(runs))
    monkeypatch.undo()
    assert code == 1 and out == ""
    assert "No space left on device" in one_error_line(err)
    assert list(runs.iterdir()) == []  # no half-made run directory, no temp file


@pytest.mark.parametrize("argv", [
    ["run", "baseline", "--epochs", "1", *TINY],
    ["suite", "sweep", "--param", "prune_ratio", "--values", "0.3", "--epochs", "1", *TINY],
])
def test_cli_on_a_runs_folder_that_cannot_be_created(tmp_path: Path, argv: list[str]) -> None:
    """Root ignores permission bits, so a file stands where the runs folder should be."""
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    code, _, err = run_cli(*argv, "--runs-dir", str(blocker))
    assert code == 1 and one_error_line(err).startswith(f"error: cannot write {blocker}")


def test_cli_resume_on_a_read_only_runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = stopped_run(tmp_path / "runs")

    def read_only(path: Path, content: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(ownership, "_create_exclusive", read_only)
    code, _, err = run_cli("resume", run.run_id, "--runs-dir", str(run.path.parent))
    line = one_error_line(err)
    assert code == 1 and "owner.lock" in line and "Read-only file system" in line
    assert run.state == "cancelled"


# ---------------------------------------------------------------------------------------------
# corrupt checkpoint, restart from scratch


def test_corrupt_checkpoint_is_one_clear_message_then_restartable(tmp_path: Path) -> None:
    run = stopped_run(tmp_path / "runs")
    config_before = run.file("config.json").read_text()
    run.file("checkpoint.pt").write_bytes(b"\x80\x02garbage that is no zip archive")
    code, _, err = run_cli("resume", run.run_id, "--runs-dir", str(run.path.parent))
    line = one_error_line(err)
    assert code == 1 and "checkpoint.pt is corrupt or not a PruneLab checkpoint" in line
    assert f"prunelab resume {run.run_id} --from-scratch" in line
    status = run.read_status()
    assert "weights_only" not in json.dumps(status) and "weights_only" not in err
    assert run.state == "failed"

    code, out, err = run_cli("resume", run.run_id, "--from-scratch", "--runs-dir", str(run.path.parent))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(run.path)
    assert run.file("config.json").read_text() == config_before
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2]
    assert run.state == "done" and not run.file("traceback.txt").exists()
    log = run.file("log.txt").read_text()
    assert "restarting from scratch (config kept; removed checkpoint.pt, metrics.jsonl" in log
    assert "cancelled by request" in log  # the log of earlier legs is kept


# ---------------------------------------------------------------------------------------------
# smaller defects


def test_temp_files_of_a_killed_owner_are_removed_on_resume(tmp_path: Path) -> None:
    run = stopped_run(tmp_path / "runs")
    leftovers = (".checkpoint.pt.k1ll3d.tmp", ".status.json.abc123.tmp", ".compact_model.x.tmp.pt2")
    for name in leftovers:
        run.file(name).write_bytes(b"half")
    manager = JobManager(run.path.parent)
    try:
        manager.resume(run.run_id)
        assert not any(run.file(name).exists() for name in leftovers)  # gone as soon as the run is claimed
        assert manager.wait(run.run_id, timeout=120)
    finally:
        manager.shutdown()
    assert run.state == "done"
    assert "removed 3 temp file(s) left by an earlier owner" in run.file("log.txt").read_text()


def test_a_file_given_as_a_folder_dataset_is_named_as_a_file(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG")
    code, _, err = run_cli("run", "baseline", "--dataset", f"folder:{image}", "--runs-dir", str(tmp_path / "r"))
    assert code == 2 and "is a file, not a folder" in one_error_line(err)
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        load_dataset(RunConfig.model_validate({"data": {"dataset": f"folder:{image}"}}).data)


@pytest.mark.parametrize("end", [lambda p: p.update(state="cancelled"),
                                 lambda p: p.update(state="failed", error="boom")])
def test_an_ended_job_drops_its_eta(end: Callable[[Progress], None]) -> None:
    progress = Progress()
    progress.update(state="running", started_at=time.time() - 10.0)
    progress.update(fraction=0.25)
    assert progress.snapshot()["eta_s"] == pytest.approx(30.0, rel=0.1)
    end(progress)
    assert progress.snapshot()["eta_s"] is None
    progress.update(batch=3)  # a late update after the end brings no ETA back
    assert progress.snapshot()["eta_s"] is None
