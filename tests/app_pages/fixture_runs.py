"""Real, tiny runs for the page tests and the browser test (shared by both through one folder).

`ensure_fixture_runs(root)` trains each run through `prunelab.training.engine.run_training` on a small
`shapes` set (300 train / 200 test images, resnet20 at width 0.25, 1-3 epochs) and adds the cases a
page must survive: a corrupt run directory, a run still `running` with partial metrics and a failed
run. Methods that are not registered yet are skipped. A `.complete` marker makes the call idempotent.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunelab.config import RunConfig
from prunelab.data import DatasetError
from prunelab.methods import METHODS
from prunelab.runs.store import RunStore
from prunelab.training.engine import run_training

DATA = {"dataset": "shapes", "train_size": 300, "test_size": 200}
TRAIN = {"batch_size": 64, "eval_batch_size": 200, "lr": 0.05}
# run id -> (training epochs, method config)
RUNS: dict[str, tuple[int, dict[str, Any]]] = {
    "fx-baseline": (1, {"name": "baseline"}),
    # both slimming runs at one budget (2 + 1 epochs): claims compare only runs of the same setting
    "fx-slim-l0": (2, {"name": "slimming", "sparsity_lambda": 0.0, "finetune_epochs": 1}),
    "fx-slim-l1e-3": (2, {"name": "slimming", "sparsity_lambda": 1e-3, "finetune_epochs": 1}),
    "fx-manidp-full": (1, {"name": "manidp", "probe_size": 20}),
    "fx-manidp-plain": (1, {"name": "manidp", "complexity": False, "similarity": False, "probe_size": 20}),
}
MARKER = ".complete"


def fixture_config(name: str, epochs: int, method: dict[str, Any], **data: Any) -> RunConfig:
    return RunConfig.model_validate({
        "name": name, "suite": "fixture", "data": {**DATA, **data}, "model": {"width": 0.25},
        "train": {**TRAIN, "epochs": epochs}, "method": method,
    })


def build_once(root: Path, build: Callable[[RunStore], None]) -> Path:
    """Run `build` on a fresh store under `root` unless a finished build (the marker) is there; returns `root`."""
    if (root / MARKER).exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    build(RunStore(root))
    (root / MARKER).write_text(f"built {time.ctime()}\n")
    return root


def ensure_fixture_runs(root: Path) -> Path:
    """Build the fixture runs under `root` once; returns `root`."""

    def build(store: RunStore) -> None:
        for run_id, (epochs, method) in RUNS.items():
            if method["name"] not in METHODS:
                continue
            config = fixture_config(run_id, epochs, method)
            run_training(config, store.create(config, run_id))
        _add_failed_run(store)
        _add_running_run(store)
        _add_corrupt_run(store.root)

    return build_once(root, build)


# the controls (suite controls) of two fixture runs, each at its parent's epochs in all: run id -> (training
# epochs, method config); copied beside the finished fixture runs they control
CONTROL_RUNS: dict[str, tuple[int, dict[str, Any]]] = {
    "fx-rand-slim-l1e-3": (2, {"name": "random", "init_from": "fx-slim-l1e-3", "finetune_epochs": 1}),
    "fx-scratch-slim-l1e-3": (3, {"name": "scratch", "init_from": "fx-slim-l1e-3"}),
    "fx-scratch-manidp-full": (1, {"name": "scratch", "init_from": "fx-manidp-full"}),
}


def ensure_control_runs(root: Path, source: Path) -> Path:
    """The finished fixture runs of `source` and their controls (CONTROL_RUNS) under `root`, once; returns `root`."""

    def build(store: RunStore) -> None:
        for run_id in RUNS:
            if (source / run_id / "summary.json").is_file():
                shutil.copytree(source / run_id, store.root / run_id)
        for run_id, (epochs, method) in CONTROL_RUNS.items():
            config = fixture_config(run_id, epochs, method)
            run_training(config, store.create(config, run_id))

    return build_once(root, build)

def _add_failed_run(store: RunStore) -> None:
    """A real failure: the dataset folder does not exist, so the trainer raises at start."""
    config = fixture_config("fx-failed", 1, {"name": "baseline"}, dataset="folder:/nonexistent/prunelab")
    with contextlib.suppress(DatasetError):  # the point: run_training records the failure in status.json
        run_training(config, store.create(config, "fx-failed"))


def _add_running_run(store: RunStore) -> None:
    """A run caught mid-training: the first epoch of a real slimming run's metrics, state `running`.

    Its heartbeat lies in the future, as written by a live trainer on another host, so that no
    JobManager created by a page marks it interrupted while the tests run.
    """
    source = next(store.root / r for r in ("fx-slim-l1e-3", "fx-baseline") if (store.root / r).is_dir())
    config = RunConfig.model_validate({**store.open(source).read_config().model_dump(), "name": "fx-running"})
    run = store.create(config, "fx-running")
    first = (source / "metrics.jsonl").read_text().splitlines()[0]
    (run.path / "metrics.jsonl").write_text(first + "\n")
    row = json.loads(first)
    run.write_status(state="running", phase=row["phase"], epoch=1, epochs_total=config.train.epochs,
                     fraction=0.3, started_at=time.time(), owner="fixture-host:1:live", owner_pid=1,
                     owner_host="fixture-host", heartbeat_at=time.time() + 86_400.0)


def _add_corrupt_run(root: Path) -> None:
    corrupt = root / "fx-corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"run_id": "fx-corrupt", "data": {"dataset": ')
    (corrupt / "status.json").write_text('{"state": "done"}')
    (corrupt / "summary.json").write_text("not json")


# torchvision models through the same engine (issue 34): slimming on mobilenet_v2, ManiDP on resnet18, 32x32 inputs
TORCHVISION_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "tv-slim-mobilenet_v2": ("torchvision:mobilenet_v2", {"name": "slimming", "sparsity_lambda": 1e-3,
                                                          "finetune_epochs": 1}),
    "tv-manidp-resnet18": ("torchvision:resnet18", {"name": "manidp", "probe_size": 20}),
}


def ensure_torchvision_runs(root: Path) -> Path:
    """One tiny run per torchvision case under `root` (64 train / 40 test images, 1 epoch), once."""

    def build(store: RunStore) -> None:
        for run_id, (model, method) in TORCHVISION_RUNS.items():
            config = RunConfig.model_validate({
                "name": run_id, "data": {"dataset": "shapes", "train_size": 64, "test_size": 40},
                "model": {"name": model}, "train": {**TRAIN, "batch_size": 32, "epochs": 1}, "method": method})
            run_training(config, store.create(config, run_id))

    return build_once(root, build)
