"""The slimming plug-in end to end: sparsity training, gamma history, pruning, fine-tuning, artefacts.

`slim_run` is a prunelab-form run (interior-only scope, no weight decay on gamma: what every run did
before forms existed); `reference_run` is the same run in the reference form (L1 and the threshold on
every BN, coupled residual groups, the run's weight decay on gamma)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import prunelab
from prunelab.analysis.tables import prune_denominator_text
from prunelab.data import load_dataset
from prunelab.methods import METHODS, Phase
from prunelab.methods.slimming import method as slimming
from prunelab.methods.slimming import run_channel_counts
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY
from prunelab.methods.slimming.method import load_dense_model
from prunelab.methods.slimming.reprune import _accuracy, _what_if_context, what_if
from prunelab.models import ResNet, spec_of
from prunelab.runs.run import Run
from prunelab.runs.run_format import EXPORT_FILE
from prunelab.runs.store import RunDir, RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import tiny_config

LAMBDA = 1e-3
SUMMARY_KEYS = ("acc_before_prune", "acc_after_prune", "acc_after_finetune", "params_before", "params_after",
                "macs_before", "macs_after", "latency_ms_b1_before", "latency_ms_b1_after",
                "latency_ms_b64_before", "latency_ms_b64_after")


@pytest.fixture(autouse=True, scope="module")
def _quick_latency() -> Iterator[None]:
    """Fewer timed repeats: the tests check that latency is measured, not how fast the model is."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slimming, "LATENCY_REPEATS", {1: 3, 64: 2})
        yield


@pytest.fixture(scope="module")
def slim_run(tmp_path_factory: pytest.TempPathFactory, _quick_latency: None) -> tuple:
    config = tiny_config("slimming", epochs=2, train_size=200, test_size=100, model="resnet20",
                         sparsity_lambda=LAMBDA, finetune_epochs=1, prune_ratio=0.5, form="prunelab")
    run = RunStore(tmp_path_factory.mktemp("runs")).create(config)
    summary = run_training(config, run)
    return config, run, summary


def test_phases_keep_a_zero_epoch_finetune_so_that_pruning_still_happens(tmp_path: Path) -> None:
    config = tiny_config("slimming", epochs=3, train_size=100, test_size=50, finetune_epochs=0)
    method = METHODS["slimming"](config.method, Trainer(config, RunStore(tmp_path).create(config)).context)
    assert method.phases() == [Phase("sparsity", 3, 0.05), Phase("finetune", 0, 0.05)]  # default: the training lr
    config = tiny_config("slimming", epochs=3, train_size=100, test_size=50, finetune_epochs=2, finetune_lr=0.01)
    method = METHODS["slimming"](config.method, Trainer(config, RunStore(tmp_path).create(config)).context)
    assert method.phases()[1] == Phase("finetune", 2, 0.01)


@pytest.mark.slow
def test_gamma_history_file(slim_run: tuple) -> None:
    _, run, _ = slim_run
    history = Run(run.path).read(GAMMA_HISTORY)
    assert history.epochs.tolist() == [0, 1, 2]
    assert history.layer_names == [f"blocks.{i}.bn_a" for i in range(9)]  # residual stream not pruned
    assert history.sparsity_lambda == pytest.approx(LAMBDA)  # from the config: the file stores no copy
    assert "sparsity_lambda" not in np.load(run.file("gamma_history.npz")).files
    assert "sparsity_lambda" not in run.read_summary()
    dense = load_dense_model(run.path)
    for name, values in zip(history.layer_names, history.gammas, strict=True):
        assert values.dtype == np.float32 and values.shape == (3, dense.get_submodule(name).num_features)
        assert np.allclose(values[0], 0.5)  # bn_init of the reference code
        gamma = dense.get_submodule(name).weight.detach().abs().numpy()
        np.testing.assert_allclose(values[-1], gamma, rtol=1e-6)


@pytest.mark.slow
def test_each_epoch_records_the_threshold_its_gammas_would_get(slim_run: tuple) -> None:
    _, run, summary = slim_run
    history = Run(run.path).read(GAMMA_HISTORY)
    record = json.loads(run.file("pruning.json").read_text())
    assert history.thresholds.shape == (3,)
    for row in range(3):  # the run's own rule on that epoch's gammas: round(0.5 * N) at or below it
        scores = np.concatenate([values[row] for values in history.gammas])
        removed = round(0.5 * scores.size)
        assert np.sort(scores)[removed - 1] == pytest.approx(history.thresholds[row], rel=1e-6)
    assert history.thresholds[-1] == pytest.approx(record["threshold"])  # the one the run pruned at
    last = np.concatenate([values[-1] for values in history.gammas])
    assert summary["gamma_frac_below_0.05"] == pytest.approx(float(np.mean(last < 0.05)))
    rows = [r for r in run.read_metrics() if r["phase"] == "sparsity"]
    assert [r["global_threshold"] for r in rows] == pytest.approx(history.thresholds[1:].tolist())


def test_prunelab_form_gives_the_prunable_bn_scales_no_weight_decay_while_sparsity_trains(tmp_path: Path) -> None:
    config = tiny_config("slimming", epochs=1, train_size=100, test_size=50, model="resnet20", form="prunelab")
    trainer = Trainer(config, RunStore(tmp_path).create(config))
    method = trainer.method
    model = method.prepare_model(trainer.build_fresh_model(), fresh=True)
    plain, scales = method.param_groups(model, Phase("sparsity", 1, 0.05))
    assert scales["weight_decay"] == 0.0 and "weight_decay" not in plain
    bn_a = {id(model.get_submodule(f"blocks.{i}.bn_a").weight) for i in range(9)}
    assert {id(p) for p in scales["params"]} == bn_a and not bn_a & {id(p) for p in plain["params"]}
    assert len(method.param_groups(model, Phase("finetune", 1, 0.05))) == 1  # fine-tuning: the run's decay
    optimizer, _ = trainer._optimizer(model, Phase("sparsity", 1, 0.05))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [config.train.weight_decay, 0.0]


@pytest.mark.slow
def test_l1_penalty_logged_per_sparsity_epoch(slim_run: tuple) -> None:
    _, run, _ = slim_run
    history = Run(run.path).read(GAMMA_HISTORY)
    rows = [r for r in run.read_metrics() if r["phase"] == "sparsity"]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        gammas = np.concatenate([values[row["epoch"]] for values in history.gammas])
        assert row["l1_penalty"] == pytest.approx(LAMBDA * gammas.sum(), rel=1e-5)
        assert row["gamma_mean_abs"] == pytest.approx(gammas.mean(), rel=1e-5)
        assert 0.0 <= row["gamma_frac_below_1e-2"] <= 1.0
    assert [r["phase"] for r in run.read_metrics()] == ["sparsity", "sparsity", "finetune"]


@pytest.mark.slow
def test_pruning_record_and_compact_model(slim_run: tuple) -> None:
    _, run, _ = slim_run
    record = json.loads(run.file("pruning.json").read_text())
    assert record["verification"]["passed"]
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]
    layers = record["layers"]
    total = sum(row["channels_before"] for row in layers)
    assert record["channels_removed_target"] == round(0.5 * total)
    assert record["channels_removed"] == total - sum(row["channels_after"] for row in layers)
    for row in layers:
        assert sum(row["kept_mask"]) == row["channels_after"] >= 1
        assert row["guard_fired"] == (row["name"] in record["guard_fired_layers"])
    model = prunelab.load_model(run.path)
    assert isinstance(model, ResNet)
    assert [b[0] for b in spec_of(model)["blocks"]] == [row["channels_after"] for row in layers]


@pytest.mark.slow
def test_summary_fields(slim_run: tuple) -> None:
    _, run, summary = slim_run
    assert run.read_summary()["macs_after"] == summary["macs_after"]
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["macs_after"] < summary["macs_before"]
    assert summary["params_after"] < summary["params_before"]
    assert summary["macs_after"] == summary["macs_per_image"] and summary["params_after"] == summary["params"]
    assert summary["acc_after_finetune"] == summary["test_acc"]
    assert all(summary[k] > 0 for k in SUMMARY_KEYS if k.startswith("latency"))
    assert "export_error" not in summary, summary.get("export_error")  # torch.export works on this torch
    assert summary["export_file"] == EXPORT_FILE and run.file(EXPORT_FILE).stat().st_size > 0


@pytest.mark.slow
def test_prunelab_form_records_its_departures_and_the_denominators(slim_run: tuple) -> None:
    _, run, summary = slim_run
    assert (summary["form"], summary["departures"]) == ("prunelab", ["interior_only_scope", "no_gamma_weight_decay"])
    record = json.loads(run.file("pruning.json").read_text())
    interior = 4 * 3 + 8 * 3 + 16 * 3  # resnet20 at width 0.25: the nine bn_a
    assert record["prune_scope"] == summary["prune_scope"] == "block interiors (bn_a)"
    assert record["channels_prunable"] == summary["channels_prunable"] == record["channels_total"] == interior
    assert record["channels_all"] == summary["channels_all"] == interior + 4 + 8 + 16  # + the three streams
    assert summary["channels_removed"] == record["channels_removed"] == round(0.5 * interior)


@pytest.mark.slow
def test_a_run_without_recorded_denominators_gets_them_from_its_model_spec(slim_run: tuple, tmp_path: Path) -> None:
    """A run written before the counts were recorded: channels_total and the layers only, config without form."""
    _, run, summary = slim_run
    old = Path(shutil.copytree(run.path, tmp_path / run.path.name))
    for name in ("pruning.json", "summary.json"):
        data = json.loads((old / name).read_text())
        for key in ("channels_prunable", "channels_all", "channels_removed", "bn_channels_all", "bn_channels_removed",
                    "form", "departures"):
            data.pop(key, None)
        (old / name).write_text(json.dumps(data))
    config = json.loads((old / "config.json").read_text())
    config["method"] = {k: v for k, v in config["method"].items() if k not in ("form", "departures")}
    (old / "config.json").write_text(json.dumps(config))
    expected = {key: summary[key] for key in ("channels_prunable", "channels_all", "channels_removed")}
    assert {k: v for k, v in run_channel_counts(old).items() if k in expected} == expected
    assert prune_denominator_text(run_channel_counts(old)) == "50% of 84 prunable channels; 38% of all 112 channels"


@pytest.mark.slow
def test_load_model_round_trip_gives_the_same_outputs(slim_run: tuple) -> None:
    config, run, summary = slim_run
    model = prunelab.load_model(run.path)
    dataset = load_dataset(config.data)
    assert _accuracy(model, dataset) == pytest.approx(summary["test_acc"], abs=1.5 / dataset.test_size)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(prunelab.load_model(run.path)(x), model(x))
        exported = torch.export.load(run.file(summary["export_file"])).module()  # the compact model, exported
        torch.testing.assert_close(exported(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_what_if_more_pruning_costs_fewer_macs(slim_run: tuple) -> None:
    config, run, summary = slim_run
    dataset = load_dataset(config.data)
    same = what_if(run.path, 0.5, dataset)
    assert same["macs"] == summary["macs_after"] and same["params"] == summary["params_after"]
    assert same["acc"] == pytest.approx(summary["acc_after_prune"], abs=1.5 / dataset.test_size)
    hits = _what_if_context.cache_info().hits
    low, high = what_if(run.path, 0.2, dataset), what_if(run.path, 0.8, dataset)
    assert _what_if_context.cache_info().hits == hits + 2  # the dense model is loaded once per run
    assert high["macs"] < same["macs"] < low["macs"] < low["macs_dense"]
    assert high["params"] < low["params"] and high["threshold"] >= low["threshold"]
    assert [r["channels_after"] for r in what_if(run.path, 0.0, dataset)["layers"]] == \
        [r["channels_before"] for r in low["layers"]]
    with pytest.raises(FileNotFoundError):
        what_if(run.path / "missing", 0.5)


@pytest.mark.slow
def test_precomputed_re_pruning_is_what_the_what_if_gives(slim_run: tuple, tmp_path: Path) -> None:
    """prunelab.analysis.views stores the re-pruning at every slider ratio; a changed dense model voids it."""
    import shutil

    from prunelab.analysis import views

    _config, run, _summary = slim_run
    copy = tmp_path / run.path.name
    shutil.copytree(run.path, copy)
    assert views.load_prune(copy, 0.5) is None
    views.compute_prune(copy, ratios=(0.2, 0.5))
    for ratio in (0.2, 0.5):
        assert views.load_prune(copy, ratio) == what_if(copy, ratio)
        assert views.prune_what_if(copy, ratio) == what_if(copy, ratio)
    assert views.load_prune(copy, 0.35) is None
    assert views.precompute(copy)[0].name == "whatif_prune.json.gz"
    assert set(views.PRUNE_RATIOS) == {float(r) for r in views._read_prune_curve(copy)["ratios"]}
    with open(copy / "dense_model.pt", "ab") as handle:
        handle.write(b"\0")
    assert views.load_prune(copy, 0.5) is None


@pytest.mark.slow
def test_resume_after_the_run_keeps_the_pruning_state(slim_run: tuple) -> None:
    config, run, summary = slim_run
    state = RunDir(run.path).load_torch("checkpoint.pt")
    assert state["method_state"]["record"]["acc_before_prune"] == summary["acc_before_prune"]
    assert [h.shape[0] for h in state["method_state"]["history"]] == [3] * 9
    resumed = run_training(config, run, resume=True)  # checkpoint is the last finetune epoch: finalize only
    for key in ("acc_before_prune", "acc_after_prune", "macs_after", "params_after", "test_acc"):
        assert resumed[key] == summary[key], key
    assert Run(run.path).read(GAMMA_HISTORY).epochs.tolist() == [0, 1, 2]
