"""prunelab.analysis.results: run roots, the runs table (broken runs listed), a run's test images and class names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prunelab.analysis import results
from prunelab.config import RunConfig
from prunelab.data import SHAPES_CLASS_NAMES, load_dataset
from prunelab.runs.run import Run
from prunelab.runs.run_format import RunStoreError
from prunelab.runs.store import RunStore
from prunelab.training.engine import run_training


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1-epoch baseline on 100 shapes images (a few seconds)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))
        config = RunConfig.model_validate({
            "name": "tiny", "data": {"train_size": 100, "test_size": 40}, "model": {"width": 0.25},
            "train": {"epochs": 1, "batch_size": 50, "eval_batch_size": 40},
        })
        run = RunStore(tmp_path_factory.mktemp("runs")).create(config, "tiny")
        run_training(config, run)
    return run.path


@pytest.fixture
def cache_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))


def make_run(root: Path, run_id: str, method: dict, summary: dict | None = None, state: str = "done") -> Path:
    config = RunConfig.model_validate({"method": method, "suite": "s1"})
    run = RunStore(root).create(config, run_id)
    run.write_status(state=state, fraction=1.0 if state == "done" else 0.4)
    if summary is not None:  # the figures summary.json always has (docs/architecture.md), then the test's
        run.write_summary({"method": method["name"], "dataset": "shapes", "model": "vgg11", "test_acc": 0.5,
                           "params": 1, "macs_per_image": 1, "wall_time_s": 1.0, **summary})
    return run.path


def test_the_demo_folders_are_the_repositorys_assets() -> None:
    """The demo runs are found under <repo>/assets/, wherever results.py sits in the package."""
    repo = Path(__file__).resolve().parents[3]
    assert repo / "assets" / "demo_runs" == results.DEMO_RUNS_DIR
    assert repo / "assets" / "cifar10_runs" == results.CIFAR_DEMO_RUNS_DIR


def test_run_roots_user_dir_then_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user, demo = tmp_path / "runs", tmp_path / "demo"
    demo.mkdir()
    monkeypatch.setattr(results, "DEMO_RUNS_DIR", demo)
    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(user))
    monkeypatch.delenv(results.NO_DEMO_ENV, raising=False)
    assert results.run_roots() == [demo]  # the user dir does not exist yet
    user.mkdir()
    assert results.run_roots() == [user, demo]
    monkeypatch.setenv(results.NO_DEMO_ENV, "1")
    assert results.run_roots() == [user]
    assert results.run_roots(demo) == [demo]


def test_runs_table_rows_columns_and_demo_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user, demo = tmp_path / "runs", tmp_path / "demo"
    monkeypatch.setattr(results, "DEMO_RUNS_DIR", demo)
    make_run(user, "base", {"name": "baseline"}, {"test_acc": 0.9, "macs_per_image": 1000, "params": 10})
    make_run(user, "slim", {"name": "slimming", "sparsity_lambda": 1e-3},
             {"test_acc": 0.8, "macs_per_image": 500, "params": 5, "acc_before_prune": 0.85,
              "macs_before": 1000})
    make_run(user, "live", {"name": "manidp", "similarity": False}, state="running")
    (user / "broken").mkdir()
    (user / "broken" / "config.json").write_text("{")
    make_run(demo, "demo-base", {"name": "baseline"}, {"test_acc": 0.7})

    table = results.runs_table([user, demo])
    assert set(table["run_id"]) == {"base", "slim", "live", "demo-base", "broken"}  # the corrupt run is listed
    broken = table.set_index("run_id").loc["broken"]
    assert broken["state"] == "broken" and "config.json is corrupt: not valid JSON" in broken["problem"]
    assert "broken files" not in results.run_label(table.set_index("run_id").loc["base"].to_dict())
    assert list(table.columns[: len(results.BASE_COLUMNS)]) == results.BASE_COLUMNS
    assert {"acc_before_prune", "macs_before"} <= set(table.columns) and "macs_dense" not in table.columns
    rows = table.set_index("run_id")
    assert rows.loc["demo-base", "demo"] and not rows.loc["base", "demo"]
    assert rows.loc["slim", "sparsity_lambda"] == 1e-3 and rows.loc["slim", "prune_ratio"] == 0.5
    assert pd.isna(rows.loc["base", "sparsity_lambda"])
    assert rows.loc["live", "state"] == "running" and pd.isna(rows.loc["live", "test_acc"])
    assert not rows.loc["live", "similarity"] and rows.loc["live", "complexity"]
    assert results.method_settings(rows.loc["slim"].to_dict()) == "λ=0.001, prune 50% of all channels"  # reference
    interior = {**rows.loc["slim"].to_dict(), "prune_residual": False, "model": "resnet20"}
    assert results.method_settings(interior) == "λ=0.001, prune 50% of interior channels"
    assert "terms: complexity" in results.run_label(rows.loc["live"].to_dict())
    assert results.run_label(rows.loc["demo-base"].to_dict()).startswith("[demo] ")
    assert results.run_label(rows.loc["base"].to_dict()).split(" · ")[1] == str(rows.loc["base", "dataset"])
    # two demos' runs of the same name tell their datasets apart
    assert results.dataset_short_name("folder:data/cifar10-demo") == "cifar10-demo"
    assert results.dataset_short_name("folder:/x/cifar10/") == "cifar10"
    assert results.dataset_short_name("shapes") == "shapes"
    empty = results.runs_table([])
    assert empty.empty and list(empty.columns) == results.BASE_COLUMNS + results.HYPER_COLUMNS


def test_roots_signature_follows_file_changes(tmp_path: Path) -> None:
    path = make_run(tmp_path, "r", {"name": "baseline"})
    before, signature = Run(path).newest_version(), results.roots_signature([tmp_path])
    os.utime(path / "status.json", (before + 10, before + 10))
    assert Run(path).newest_version() == pytest.approx(before + 10)
    assert results.roots_signature([tmp_path]) != signature
    assert Run(tmp_path / "missing").newest_version() == 0.0


@pytest.mark.slow
def test_metrics_and_test_images_of_a_real_run(trained_run: Path, cache_env: None) -> None:
    metrics = Run(trained_run).metrics
    assert metrics[["phase", "epoch"]].values.tolist() == [["train", 1]] and 0 <= metrics["test_acc"][0] <= 1
    config = Run(trained_run).config
    dataset = load_dataset(config.data)
    images = results.load_test_images(trained_run, [3, 0, 39])
    assert images.dtype == np.uint8 and images.shape == (3, 32, 32, 3)
    expected = dataset.test_images[torch.tensor([3, 0, 39])].permute(0, 2, 3, 1).numpy()
    assert np.array_equal(images, expected)
    assert results.load_test_images(trained_run, [40]) is None  # out of range: None, not IndexError
    assert results.class_names(trained_run) == list(SHAPES_CLASS_NAMES)
    row = results.runs_table([trained_run.parent]).iloc[0]
    summary = Run(trained_run).summary
    assert row["test_acc"] == summary["test_acc"] and row["macs_per_image"] == summary["macs_per_image"]


def test_a_missing_dataset_gives_none(tmp_path: Path) -> None:
    config = RunConfig.model_validate({"data": {"dataset": "folder:/nonexistent/prunelab-results"}})
    path = RunStore(tmp_path).create(config, "r").path
    assert results.load_test_images(path, [0]) is None
    assert results.class_names(path) == []


def test_results_does_not_import_streamlit() -> None:
    code = "import sys, prunelab.analysis.results; assert 'streamlit' not in sys.modules"
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_delete_run_refuses_demo_and_active_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "demo"
    monkeypatch.setattr(results, "DEMO_RUNS_DIR", demo)
    shown = make_run(demo, "d", {"name": "baseline"})
    live = make_run(tmp_path / "runs", "live", {"name": "baseline"}, state="running")
    finished = make_run(tmp_path / "runs", "old", {"name": "baseline"})
    with pytest.raises(RunStoreError, match="read-only"):
        results.delete_run(shown)
    with pytest.raises(RunStoreError, match="cancel it"):
        results.delete_run(live)
    results.delete_run(finished)
    assert shown.is_dir() and live.is_dir() and not finished.exists()
