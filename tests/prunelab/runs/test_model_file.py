"""Model files know their run: model.pt (and slimming's dense_model.pt) record the run id and the architecture
they were written for; loading one for another run, or for another architecture, is refused naming both; a file
written before records existed (the shipped demos) loads as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import prunelab
from prunelab.analysis.results import DEMO_RUNS_DIR
from prunelab.methods.slimming.method import load_dense_model
from prunelab.runs.model_file import RECORD_KEY, ModelFileMismatch, load_model_file
from prunelab.runs.run_format import DENSE_MODEL_FILE, MODEL_FILE
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import run_training
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, RunDir]:
    """Two finished baseline runs of one config (same architecture, so either's weights fit the other)."""
    root = tmp_path_factory.mktemp("twins")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNELAB_CACHE_DIR", str(root / "cache"))
        config = tiny_config(train_size=100, test_size=50)
        store = RunStore(root / "runs")
        runs = store.create(config, "twin-a"), store.create(config, "twin-b")
        for run in runs:
            run_training(config, run)
    return runs


@pytest.mark.slow
def test_a_model_file_records_its_run_and_architecture(twins: tuple[RunDir, RunDir]) -> None:
    first, _ = twins
    state = torch.load(first.file(MODEL_FILE), weights_only=True)
    assert state[RECORD_KEY] == {"run_id": "twin-a", "method": "baseline", "model": "vgg11", "width": 0.25}
    prunelab.load_model(first.path)  # its own run: accepted


@pytest.mark.slow
def test_a_model_file_copied_from_another_run_is_refused(twins: tuple[RunDir, RunDir], tmp_path: Path) -> None:
    first, second = twins
    copy = RunDir(Path(shutil.copytree(second.path, tmp_path / second.run_id)))
    shutil.copyfile(first.file(MODEL_FILE), copy.file(MODEL_FILE))  # the same architecture: it would load
    expected = (f"{copy.file(MODEL_FILE)} belongs to run twin-a (baseline vgg11 at width 0.25), not to run "
                "twin-b (baseline vgg11 at width 0.25): it was copied from another run; refusing to load it")
    with pytest.raises(ModelFileMismatch) as raised:
        prunelab.load_model(copy.path)
    assert str(raised.value) == expected


@pytest.mark.slow
def test_a_run_renamed_keeps_its_model(twins: tuple[RunDir, RunDir], tmp_path: Path) -> None:
    """The run id is config.json's: a run folder copied under another name still owns its model.pt."""
    first, _ = twins
    renamed = Path(shutil.copytree(first.path, tmp_path / "renamed"))
    prunelab.load_model(renamed)


@pytest.mark.slow
def test_a_model_file_of_another_architecture_is_refused(twins: tuple[RunDir, RunDir], tmp_path: Path) -> None:
    first, _ = twins
    copy = Path(shutil.copytree(first.path, tmp_path / first.run_id))
    config = json.loads((copy / "config.json").read_text())
    config["model"]["width"] = 0.5  # config.json now asks for another network than model.pt holds
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileMismatch, match=r"holds a baseline vgg11 at width 0.25 network, but run twin-a's "
                                                r"config.json asks for a baseline vgg11 at width 0.5 one"):
        load_model_file(RunDir(copy))


def test_files_without_a_record_load_as_before() -> None:
    """The shipped demos' model files predate the record: unknown, accepted (and not rewritten)."""
    gated = next(path for path in sorted(DEMO_RUNS_DIR.glob("*")) if (path / MODEL_FILE).is_file())
    assert RECORD_KEY not in torch.load(gated / MODEL_FILE, weights_only=True)
    prunelab.load_model(gated)
    dense = next(path for path in sorted(DEMO_RUNS_DIR.glob("*")) if (path / DENSE_MODEL_FILE).is_file())
    assert RECORD_KEY not in torch.load(dense / DENSE_MODEL_FILE, weights_only=True)
    load_dense_model(dense)
