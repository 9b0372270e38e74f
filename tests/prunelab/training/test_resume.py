"""Exact resume for every registered method: a run stopped mid-epoch and resumed from its last epoch
checkpoint ends with the same weights, metrics rows and artefacts as the uninterrupted run (CPU)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from prunelab.config import METHOD_CONFIGS, ModelConfig, RunConfig
from prunelab.methods import METHODS
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.runs.progress import Cancelled, Progress
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow  # every test trains, stops and resumes real runs

METHOD_FIELDS: dict[str, dict[str, Any]] = {MANIDP: {"target_density": 0.5}}
# files whose content is a measurement of this machine or of this leg, not a result of training
NOT_RESULTS = {"log.txt", "status.json", "config.json", "traceback.txt", "compact_model.pt2", "owner.lock"}


def resume_config(method: str) -> RunConfig:
    """Two epochs in all (a method that fine-tunes: 1 training + 1 fine-tune epoch), 8 batches of 32 per
    epoch."""
    fields = dict(METHOD_FIELDS.get(method, {}))
    fine_tunes = "finetune_epochs" in METHOD_CONFIGS[method].model_fields
    if fine_tunes:
        fields["finetune_epochs"] = 1
    config = tiny_config(method, epochs=1 if fine_tunes else 2, train_size=256, test_size=64, batch_size=32,
                         **fields)
    config.train.eval_batch_size = 64
    return config


def is_volatile(key: str) -> bool:
    """Keys holding wall-clock times or latencies, or the run's own id (a model file's record of the run it
    belongs to): they differ between any two runs."""
    return "latency" in key or key.endswith("time_s") or key in ("time", "elapsed_s", "run_id")


def comparable(value: Any) -> Any:
    """JSON-like value with timing keys removed, at any depth."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if not is_volatile(k)}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def assert_same_tree(got: Any, want: Any, where: str) -> None:
    """Tensors equal bit for bit, containers recursively, other values equal."""
    if isinstance(want, torch.Tensor):
        assert torch.equal(got, want), where
    elif isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            if not is_volatile(str(key)):
                assert_same_tree(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_tree(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


def assert_same_file(got: Path, want: Path) -> None:
    """One artefact compared by content (npz/zip timestamps and timings do not count)."""
    name = want.name
    if name.endswith(".pt"):
        assert_same_tree(torch.load(got, weights_only=True), torch.load(want, weights_only=True), name)
    elif name.endswith(".npz"):
        with np.load(got, allow_pickle=False) as a, np.load(want, allow_pickle=False) as b:
            assert sorted(a.files) == sorted(b.files), name
            for key in b.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
    elif name.endswith(".parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(got), pd.read_parquet(want), check_exact=True)
    elif name.endswith(".jsonl"):
        rows = [comparable(json.loads(line)) for line in got.read_text().splitlines()]
        assert rows == [comparable(json.loads(line)) for line in want.read_text().splitlines()], name
    elif name.endswith(".json"):
        assert comparable(json.loads(got.read_text())) == comparable(json.loads(want.read_text())), name
    else:
        assert got.read_bytes() == want.read_bytes(), name


def assert_same_run(got: RunDir, want: RunDir) -> list[str]:
    """Every result file of `want` exists in `got` with the same content; returns the names compared."""
    names = sorted(p.name for p in want.path.iterdir() if p.is_file() and p.name not in NOT_RESULTS)
    extra = sorted(p.name for p in got.path.iterdir() if p.is_file() and p.name not in NOT_RESULTS)
    assert extra == names  # nothing more, nothing less (no temp files either)
    for name in names:
        assert_same_file(got.file(name), want.file(name))
    return names


def stop_in_second_epoch(batch: int) -> Progress:
    """A Progress that cancels the run after `batch` batches of its second epoch (of two)."""
    progress = Progress()

    def listener(snap: dict[str, Any]) -> None:
        if snap.get("batch") == batch and float(snap.get("fraction") or 0.0) > 0.5:
            progress.request_cancel()

    progress.add_listener(listener)
    return progress


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_mid_epoch_reproduces_the_uninterrupted_run(method: str, tmp_path: Path) -> None:
    config = resume_config(method)
    store = RunStore(tmp_path)
    reference = store.create(config, "reference")
    want = run_training(config, reference)

    stopped = store.create(config, "stopped")
    with pytest.raises(Cancelled):
        run_training(config, stopped, stop_in_second_epoch(batch=3))
    assert [row["epoch"] for row in stopped.read_metrics()] == [1]
    random.random(), np.random.rand(), torch.rand(1)  # the resuming process has used its RNGs meanwhile
    got = run_training(config, stopped, resume=True)

    assert comparable(got) == comparable(want)
    names = assert_same_run(stopped, reference)
    assert {"model.pt", "checkpoint.pt", "metrics.jsonl", "summary.json"} <= set(names)
    if method == "manidp":
        assert {"per_image.parquet", "probe.npz", "manidp.json"} <= set(names)
    if method == "slimming":
        assert {"gamma_history.npz", "pruning.json", "dense_model.pt"} <= set(names)


def test_resume_after_a_crash_between_metrics_row_and_checkpoint(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A process dying after epoch 2's metrics row but before its checkpoint re-runs epoch 2 exactly."""
    config = resume_config("manidp")
    store = RunStore(tmp_path)
    reference = store.create(config, "reference")
    run_training(config, reference)

    crashed = store.create(config, "crashed")
    real_save = Trainer.save_checkpoint

    def save_then_die(self: Trainer, model: Any, phase_index: int, epochs_done: int, *args: Any) -> None:
        if epochs_done == 2:
            raise KeyboardInterrupt("killed while saving the checkpoint")
        real_save(self, model, phase_index, epochs_done, *args)

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, crashed)
    assert [row["epoch"] for row in crashed.read_metrics()] == [1, 2]  # the row of the unsaved epoch
    monkeypatch.setattr(Trainer, "save_checkpoint", real_save)
    run_training(config, crashed, resume=True)
    assert_same_run(crashed, reference)


def test_wall_time_counts_every_leg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = resume_config("baseline")
    run = RunStore(tmp_path).create(config)
    with pytest.raises(Cancelled):
        run_training(config, run, stop_in_second_epoch(batch=1))
    first_leg = float(run.load_torch("checkpoint.pt")["elapsed_s"])
    assert first_leg > 0
    summary = run_training(config, run, resume=True)
    second = float(run.load_torch("checkpoint.pt")["elapsed_s"])
    assert second > first_leg
    assert summary["wall_time_s"] > second  # first leg up to its checkpoint + the whole second leg


@pytest.mark.slow
@pytest.mark.parametrize("method", [MANIDP, "slimming"])
def test_a_torchvision_run_resumes_to_the_uninterrupted_result(method: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """MobileNetV2 (depthwise carriers under ManiDP's gates; a compact network rebuilt from its spec's shapes).
    What the end of a run derives from the final model alone, identical whatever the path to it, is cut short here
    (the tests of each method run it in full): ManiDP slices and times 4 test images instead of 16 and 32; slimming's
    torch.export of the compact network (half of this test's time) is skipped."""
    from prunelab.methods.manidp import method as manidp_method
    from prunelab.methods.slimming import method as slimming_method

    monkeypatch.setattr(manidp_method, "VERIFY_IMAGES", 4)
    monkeypatch.setattr(manidp_method, "LATENCY_IMAGES", 4)
    monkeypatch.setattr(slimming_method, "export_compact", lambda *args: {})
    config = resume_config(method)
    config.model = ModelConfig(name="torchvision:mobilenet_v2")
    store = RunStore(tmp_path)
    want = run_training(config, store.create(config, "reference"))
    stopped = store.create(config, "stopped")
    with pytest.raises(Cancelled):
        run_training(config, stopped, stop_in_second_epoch(batch=3))
    got = run_training(config, stopped, resume=True)
    assert comparable(got) == comparable(want)
    assert_same_run(stopped, store.open(store.root / "reference"))
