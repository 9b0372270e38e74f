"""Slimming's two forms. The reference form runs it as the authors' code does (L1 and the global threshold on
every BN, channels coupled by residual adds pruned together; the run's weight decay on gamma); the prunelab
form keeps today's choices (each block's interior BN only, gamma without weight decay), each a named departure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import prunelab
from prunelab.cli.args import config_from_args
from prunelab.cli.main import build_parser
from prunelab.config import RunConfig
from prunelab.methods import Phase
from prunelab.methods.slimming import method as slimming
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY
from prunelab.methods.slimming.config import SLIMMING_DEPARTURES, SlimmingConfig
from prunelab.methods.slimming.method import load_dense_model
from prunelab.runs.artefacts import read_config_file
from prunelab.runs.run import Run
from prunelab.runs.store import RunStore
from prunelab.training.engine import Trainer, run_training
from tests.helpers import tiny_config

LAMBDA = 1e-3
BOTH = ["interior_only_scope", "no_gamma_weight_decay"]


def _bn_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)]


# --- config and CLI ---------------------------------------------------------------------------------
def test_the_form_sets_scope_and_gamma_decay_and_names_the_departures() -> None:
    reference, prunelab_form = SlimmingConfig(), SlimmingConfig(form="prunelab")
    assert (reference.form, reference.prune_residual, reference.bn_weight_decay, reference.departures) == (
        "reference", True, None, [])
    assert (prunelab_form.prune_residual, prunelab_form.bn_weight_decay, prunelab_form.departures) == (False, 0.0, BOTH)
    # a departure's own field overrides the form, either way
    assert SlimmingConfig(prune_residual=False).departures == ["interior_only_scope"]
    assert SlimmingConfig(form="prunelab", prune_residual=True).departures == ["no_gamma_weight_decay"]
    assert [(d.field, d.reference, d.prunelab) for d in SLIMMING_DEPARTURES] == [
        ("prune_residual", True, False), ("bn_weight_decay", None, 0.0)]
    assert all(d.summary and d.reason and d.effect for d in SLIMMING_DEPARTURES)
    cited = " ".join(SlimmingConfig.facts.reference_code)
    assert all(name in cited for name in ("main.py", "resprune.py", "models/preresnet.py", "liuzhuang13/slimming"))
    # recorded with the config, and read back unchanged
    dumped = RunConfig(method=SlimmingConfig(form="prunelab")).model_dump(mode="json")
    assert dumped["method"]["departures"] == BOTH
    assert RunConfig.model_validate(dumped).method == SlimmingConfig(form="prunelab")


@pytest.mark.parametrize(("argv", "scope", "decay", "departures"), [
    ([], True, None, []),
    (["--form", "prunelab"], False, 0.0, BOTH),
    (["--prune-residual", "false"], False, None, ["interior_only_scope"]),
    (["--form", "prunelab", "--prune-residual", "true"], True, 0.0, ["no_gamma_weight_decay"]),
    (["--bn-weight-decay", "0"], True, 0.0, ["no_gamma_weight_decay"]),
    (["--form", "prunelab", "--bn-weight-decay", "1e-4"], False, 1e-4, BOTH),
])
def test_cli_flags_follow_the_form_and_override_it(argv: list[str], scope: bool, decay: float | None,
                                                   departures: list[str]) -> None:
    args = build_parser().parse_args(["run", "slimming", *argv])
    method = config_from_args("slimming", args).method
    assert (method.prune_residual, method.bn_weight_decay, method.departures) == (scope, decay, departures)


def test_form_is_one_flag_for_both_methods_that_have_it() -> None:
    for name in ("slimming", "manidp"):
        args = build_parser().parse_args(["run", name, "--form", "prunelab"])
        assert config_from_args(name, args).method.form == "prunelab"
    args = build_parser().parse_args(["suite", "slimming", "--form", "prunelab"])
    assert args.form == "prunelab"


def test_a_config_written_before_forms_reads_as_the_prunelab_form(tmp_path: Path) -> None:
    """The method section as runs wrote it before forms existed (the shipped demos' config.json)."""
    old = {"name": "slimming", "sparsity_lambda": 0.004, "prune_ratio": 0.5, "finetune_epochs": 3,
           "finetune_lr": None, "min_channels": 1, "bn_init": 0.5, "prune_residual": False, "bn_weight_decay": 0.0}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"run_id": "old", "model": {"name": "resnet20", "width": 0.5}, "method": old}))
    method = read_config_file(path).method
    assert (method.form, method.prune_residual, method.bn_weight_decay, method.departures) == (
        "prunelab", False, 0.0, BOTH)


# --- training hooks ---------------------------------------------------------------------------------
def _prepared(tmp_path: Path, form: str, **train: float) -> tuple[Trainer, nn.Module]:
    config = tiny_config("slimming", epochs=1, train_size=100, test_size=50, model="resnet20", form=form,
                         sparsity_lambda=LAMBDA)
    for key, value in train.items():
        setattr(config.train, key, value)
    trainer = Trainer(config, RunStore(tmp_path).create(config))
    return trainer, trainer.method.prepare_model(trainer.build_fresh_model(), fresh=True)


@pytest.mark.parametrize("form", ["reference", "prunelab"])
def test_the_l1_subgradient_reaches_every_bn_in_the_reference_form_only(tmp_path: Path, form: str) -> None:
    trainer, model = _prepared(tmp_path, form)
    method = trainer.method
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.linspace(-1.0, 1.0, module.num_features))
                module.weight.grad = torch.zeros_like(module.weight)
    method.on_epoch_start(Phase("sparsity", 1, 0.05), 1, model)
    method.after_backward(model)
    every = _bn_names(model)
    assert {"bn_stem", "blocks.0.bn_b", "blocks.3.shortcut.1"} <= set(every)
    reached = [name for name in every if model.get_submodule(name).weight.grad.abs().sum() > 0]
    expected = every if form == "reference" else [name for name in every if name.endswith("bn_a")]
    assert reached == expected
    for name in reached:  # exactly lambda * sign(gamma)
        bn = model.get_submodule(name)
        torch.testing.assert_close(bn.weight.grad, LAMBDA * torch.sign(bn.weight.detach()))
    # the global threshold ranks the same BNs: the gamma history and the scores cover them
    history = Run(trainer.run_dir.path).read(GAMMA_HISTORY)
    assert sorted(history.layer_names) == sorted(expected)


@pytest.mark.parametrize(("form", "decay"), [("reference", 1e-4), ("prunelab", 0.0)])
def test_gamma_weight_decay_is_the_runs_own_in_the_reference_form(tmp_path: Path, form: str, decay: float) -> None:
    trainer, model = _prepared(tmp_path, form, weight_decay=1e-4)
    optimizer, _ = trainer._optimizer(model, Phase("sparsity", 1, 0.05))
    scope = _bn_names(model) if form == "reference" else [n for n in _bn_names(model) if n.endswith("bn_a")]
    gammas = {id(model.get_submodule(name).weight) for name in scope}
    for group in optimizer.param_groups:
        for param in group["params"]:
            assert group["weight_decay"] == (decay if id(param) in gammas else 1e-4)
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    finetune, _ = trainer._optimizer(model, Phase("finetune", 1, 0.05))  # fine-tuning: the run's decay everywhere
    assert [group["weight_decay"] for group in finetune.param_groups] == [1e-4]


# --- a reference-form run end to end --------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slimming, "LATENCY_REPEATS", {1: 3, 64: 2})
        config = tiny_config("slimming", epochs=2, train_size=200, test_size=100, model="resnet20",
                             sparsity_lambda=LAMBDA, finetune_epochs=1, prune_ratio=0.5)  # the default form
        run = RunStore(tmp_path_factory.mktemp("runs")).create(config)
        yield config, run, run_training(config, run)


@pytest.mark.slow
def test_reference_run_thresholds_group_mean_gamma_over_every_bn(reference_run: tuple) -> None:
    config, run, _ = reference_run
    assert config.method.form == "reference"
    record = json.loads(run.file("pruning.json").read_text())
    dense = load_dense_model(run.path)
    assert sorted(bn for row in record["layers"] for bn in row["bns"]) == sorted(_bn_names(dense))
    assert sum(row["residual"] for row in record["layers"]) == 3  # one coupled group per stage
    # the threshold is the k-th smallest group-averaged |gamma| of the dense network, k = round(0.5 * N)
    scores = np.concatenate([np.mean([dense.get_submodule(bn).weight.detach().abs().numpy() for bn in row["bns"]],
                                     axis=0) for row in record["layers"]])
    assert np.sort(scores)[round(0.5 * scores.size) - 1] == pytest.approx(record["threshold"], rel=1e-6)
    assert record["verification"]["passed"]
    # the compact network: every BN of a group at the group's kept width
    model = prunelab.load_model(run.path)
    for row in record["layers"]:
        assert {model.get_submodule(bn).num_features for bn in row["bns"]} == {row["channels_after"]}


@pytest.mark.slow
def test_reference_run_records_its_form_and_the_denominators(reference_run: tuple) -> None:
    _, run, summary = reference_run
    record = json.loads(run.file("pruning.json").read_text())
    assert (summary["form"], summary["departures"], summary["prune_scope"]) == ("reference", [], "every BN")
    assert run.read_summary()["departures"] == []
    total = sum(row["channels_before"] for row in record["layers"])
    assert summary["channels_prunable"] == summary["channels_all"] == total == 4 * 3 + 8 * 3 + 16 * 3 + 4 + 8 + 16
    assert summary["channels_removed"] == record["channels_removed"] == total - sum(
        row["channels_after"] for row in record["layers"])
    assert record["bn_channels_all"] == sum(dense_bn.num_features for dense_bn in load_dense_model(run.path).modules()
                                            if isinstance(dense_bn, nn.BatchNorm2d))
