import json
import os
from pathlib import Path

import pytest
import torch

from prunelab.config import RunConfig
from prunelab.runs.run_format import RunStoreError, atomic_write_json
from prunelab.runs.store import RunDir, RunStore


def test_create_writes_config_and_queued_status(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create(RunConfig(name="my run"), "my run")
    assert run.run_id == "my-run"
    assert run.read_config() == RunConfig(name="my run")
    assert run.read_status()["state"] == "queued"
    assert store.create(RunConfig(name="my run"), "my run").run_id == "my-run-2"  # never overwrites
    assert store.create(RunConfig(name="x")).run_id.endswith("-x")  # timestamped id by default


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "x/../../y"])
def test_run_names_cannot_escape_the_root(tmp_path: Path, name: str) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig(name=name) if any(c.isalnum() for c in name) else RunConfig(), name)
    assert run.path.parent == tmp_path / "runs"
    assert "/" not in run.run_id and ".." not in run.run_id


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    atomic_write_json(path, {"state": "running"})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_listing_skips_corrupt_and_half_written_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = RunStore(tmp_path)
    good = store.create(RunConfig(name="good"))
    (tmp_path / "half").mkdir()  # no config.json yet
    broken = store.create(RunConfig(name="broken"))
    broken.file("config.json").write_text("{not json")
    (tmp_path / "junk.txt").write_text("x")
    with caplog.at_level("WARNING"):
        runs = store.list_runs()
    assert [r.run_id for r in runs] == [good.run_id]
    assert "broken" in caplog.text and "half" in caplog.text


def test_metrics_survive_a_torn_last_line(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(RunConfig())
    run.append_metrics({"epoch": 1, "loss": 2.0})
    with open(run.file("metrics.jsonl"), "a") as handle:
        handle.write('{"epoch": 2, "lo')  # a crash mid-write
    assert [row["epoch"] for row in run.read_metrics()] == [1]


def test_checkpoints_load_weights_only_and_reject_corrupt_files(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(RunConfig())
    run.save_torch("checkpoint.pt", {"w": torch.ones(3), "epoch": 2})
    assert run.load_torch("checkpoint.pt")["epoch"] == 2
    run.file("checkpoint.pt").write_bytes(os.urandom(64))
    with pytest.raises(RunStoreError, match="corrupt"):
        run.load_torch("checkpoint.pt")


def test_open_rejects_non_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with pytest.raises(RunStoreError, match="not a PruneLab run"):
        store.open("nothing-here")
    with pytest.raises(RunStoreError, match="invalid run id"):
        store.open("../etc")
    assert isinstance(store.open(store.create(RunConfig()).run_id), RunDir)


def test_delete_refuses_a_running_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create(RunConfig())
    run.write_status(state="running")
    with pytest.raises(RunStoreError, match="cancel it"):
        store.delete(run.run_id)
    run.write_status(state="done")
    store.delete(run.run_id)
    assert not run.path.exists()
