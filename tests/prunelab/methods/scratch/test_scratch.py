"""From scratch: a pruned run's exact widths with fresh weights for the epochs it is given, a uniformly thinner
network at a dynamic run's mean MACs, and the seed and widths alone deciding the initial weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prunelab.methods.random.method import uniform_counts
from prunelab.methods.scratch.artefacts import ARCHITECTURE
from prunelab.methods.scratch.method import Scratch, built_network, counts_at_macs, first_channels
from prunelab.methods.slimming.pruning import find_channel_groups, select_units
from prunelab.models import build_model, model_spec, spec_of
from prunelab.runs.run import Run
from prunelab.runs.store import RunStore
from prunelab.training.engine import Trainer, run_training
from prunelab.training.flops import count_macs
from tests.helpers import tiny_config

TINY = {"train_size": 120, "test_size": 40, "batch_size": 30, "model": "resnet20", "width": 0.25}


def _units(width: float = 0.5) -> tuple[torch.nn.Module, list]:
    model = build_model(model_spec("resnet20", 10, width)).eval()
    return model, select_units(find_channel_groups(model), True)


def test_first_channels_keep_the_counts() -> None:
    _, units = _units()
    counts = uniform_counts(units, 0.5, 1)
    masks = first_channels(units, counts)
    assert [int(m.sum()) for m in masks] == counts and all(bool(m[0]) for m in masks)
    with pytest.raises(ValueError, match="cannot keep"):
        first_channels(units, [0] * len(units))


def test_the_uniform_width_at_a_target_comes_closest_to_its_macs() -> None:
    dense, units = _units()
    shape = (3, 32, 32)
    exact = count_macs(built_network(dense, units, uniform_counts(units, 0.4, 1), "resnet20"), shape)
    counts, fraction = counts_at_macs(dense, units, exact, 1, "resnet20", shape)
    assert count_macs(built_network(dense, units, counts, "resnet20"), shape) == exact
    assert 0.5 < fraction <= 0.7
    # between two reachable widths, the one whose MACs lie nearer the target
    target = exact * 1.013
    counts, _ = counts_at_macs(dense, units, target, 1, "resnet20", shape)
    got = count_macs(built_network(dense, units, counts, "resnet20"), shape)
    fewer = count_macs(built_network(dense, units, [max(1, c - 1) for c in counts], "resnet20"), shape)
    assert abs(got - target) <= abs(fewer - target)
    assert counts_at_macs(dense, units, 1e12, 1, "resnet20", shape)[0] == [u.channels for u in units]


def test_the_seed_and_the_widths_alone_decide_the_initial_weights(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    config = tiny_config("scratch", epochs=1, uniform_ratio=0.5, **TINY)
    run = RunStore(tmp_path / "runs").create(config, "scratch")
    trainer = Trainer(config, run)
    method = trainer.method
    assert isinstance(method, Scratch)
    torch.manual_seed(123)  # whatever the process drew before
    model = method.prepare_model(trainer.build_fresh_model(), fresh=True)
    spec = spec_of(model, "resnet20")
    torch.manual_seed(config.train.seed)
    again = build_model(spec)
    for key, value in again.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key].cpu(), value, rtol=0, atol=0)
    record = json.loads((run.path / "architecture.json").read_text())
    assert record["source"] == "uniform" and record["parent_run"] is None
    assert [row["channels_after"] for row in record["layers"]] == \
        [max(1, round(0.5 * row["channels_before"])) for row in record["layers"]]


@pytest.mark.slow
def test_a_run_trains_the_slimming_runs_widths_from_fresh_weights(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    store = RunStore(tmp_path / "runs")
    slim_config = tiny_config("slimming", epochs=1, finetune_epochs=1, prune_ratio=0.6, form="prunelab", **TINY)
    slim = store.create(slim_config, "slim")
    theirs = run_training(slim_config, slim)
    config = tiny_config("scratch", epochs=2, init_from="slim", **TINY)  # E + F of the slimming run
    run = store.create(config, "scratch")
    mine = run_training(config, run)

    pruning = json.loads((slim.path / "pruning.json").read_text())
    record = json.loads((run.path / "architecture.json").read_text())
    assert record["source"] == "counts" and record["parent_run"] == "slim"
    assert [(r["name"], r["channels_before"], r["channels_after"]) for r in record["layers"]] == \
        [(r["name"], r["channels_before"], r["channels_after"]) for r in pruning["layers"]]
    slim_model = torch.load(slim.path / "model.pt", weights_only=True)
    own_model = torch.load(run.path / "model.pt", weights_only=True)
    assert own_model["model_spec"] == slim_model["model_spec"]  # exactly the compact network's widths
    assert mine["macs_per_image"] == theirs["macs_per_image"] and mine["params"] == theirs["params"]
    assert mine["epochs"] == mine["epochs_total"] == theirs["epochs_total"] == 2  # E + F, none inherited
    assert mine["parent_run"] == "slim" and mine["architecture_source"] == "counts"
    assert len(run.read_metrics()) == 2
    # fresh weights, trained on their own: none of the slimming run's
    assert all(not torch.equal(value, slim_model["model_state"][key])
               for key, value in own_model["model_state"].items() if key.endswith("conv.weight") or "conv" in key)


@pytest.mark.slow
def test_against_a_dynamic_run_a_uniform_network_of_its_mean_macs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    store = RunStore(tmp_path / "runs")
    manidp_config = tiny_config("manidp", epochs=1, probe_size=8, target_density=0.6, **TINY)
    manidp = store.create(manidp_config, "manidp")
    theirs = run_training(manidp_config, manidp)
    config = tiny_config("scratch", epochs=1, init_from=str(manidp.path), **TINY)  # a run directory works too
    run = store.create(config, "scratch")
    mine = run_training(config, run)
    record = Run(run.path).read(ARCHITECTURE)
    assert record["source"] == "macs" and record["macs_target"] == pytest.approx(theirs["macs_per_image"])
    assert 0 < record["keep_fraction"] < 1
    assert abs(mine["macs_per_image"] - theirs["macs_per_image"]) / theirs["macs_per_image"] < 0.1
    assert mine["parent_run"] == "manidp" and mine["epochs_total"] == 1
