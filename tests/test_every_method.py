"""Every registered method, end to end on a tiny run: trained, stopped mid-epoch and resumed, its final
model rebuilt by `prunelab.load_model`, and every page of the app rendered on it (CPU, seconds each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from streamlit.testing.v1 import AppTest

import prunelab
from prunelab.cli.args import config_from_args, method_flags
from prunelab.cli.main import build_parser
from prunelab.config import METHOD_CONFIGS, METHOD_NAMES
from prunelab.data import load_dataset
from prunelab.engine import run_training
from prunelab.methods import METHODS
from prunelab.methods.slimming.reprune import _accuracy
from prunelab.progress import Cancelled, Progress
from prunelab.store import RunStore
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "pages").glob("*.py"))
TINY = {"train_size": 120, "test_size": 40, "batch_size": 30, "model": "resnet20", "width": 0.25}


def test_registry_and_config_name_the_same_methods() -> None:
    assert sorted(METHODS) == sorted(METHOD_NAMES)
    for name, cls in METHODS.items():
        assert cls.config_class is METHOD_CONFIGS[name]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_field_of_a_method_config_has_a_flag(method: str) -> None:
    fields = set(METHOD_CONFIGS[method].model_fields) - {"name"}
    flags = method_flags(method)
    assert {dest.removeprefix("no_") for dest in flags} == fields
    config = config_from_args(method, build_parser().parse_args(["run", method]))
    assert config.method == METHOD_CONFIGS[method]()  # no flag given: the config class's defaults


def stop_in_second_epoch() -> Progress:
    """A Progress that cancels the run two batches into its second epoch (of two)."""
    progress = Progress()

    def listener(snap: dict[str, Any]) -> None:
        if snap.get("batch") == 2 and float(snap.get("fraction") or 0.0) > 0.5:
            progress.request_cancel()

    progress.add_listener(listener)
    return progress


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_trains_resumes_loads_and_renders(method: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "data-cache"))
    # two epochs in all (slimming: one of sparsity training, one of fine-tuning), four batches each
    config = (tiny_config(method, epochs=1, finetune_epochs=1, **TINY) if method == "slimming"
              else tiny_config(method, epochs=2, **TINY))
    runs = tmp_path / "runs"
    run = RunStore(runs).create(config, method)
    with pytest.raises(Cancelled):
        run_training(config, run, stop_in_second_epoch())
    assert len(run.read_metrics()) == 1  # the first epoch's row; the second epoch was cut short
    summary = run_training(config, run, resume=True)
    assert run.state == "done" and len(run.read_metrics()) == 2

    model = prunelab.load_model(run.path)
    dataset = load_dataset(config.data)
    assert _accuracy(model, dataset) == pytest.approx(summary["test_acc"], abs=1.5 / dataset.test_size)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (3, dataset.num_classes)
        torch.testing.assert_close(prunelab.load_model(run.path)(x), model(x))

    monkeypatch.setenv("PRUNELAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("PRUNELAB_NO_DEMO", "1")
    monkeypatch.chdir(ROOT)
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / page), default_timeout=120).run()
        assert not at.exception, (page, [e.value for e in at.exception])
