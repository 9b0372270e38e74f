"""Random channels: a slimming run's per-layer counts kept exactly, the compact network computing what the
masked one does, the channels drawn by the run's seed, and a run that starts from the slimming run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prunelab.methods.random.method import counts_from_pruning, random_keep_masks, uniform_counts
from prunelab.methods.slimming.pruning import compact_model, find_channel_groups, masked_model, select_units
from prunelab.models import build_model, model_spec
from prunelab.runs.store import RunStore
from prunelab.training.engine import run_training
from tests.helpers import tiny_config

TINY = {"train_size": 120, "test_size": 40, "batch_size": 30, "model": "resnet20", "width": 0.25}


def _network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(model_spec("resnet20", 10, 0.5)).eval()
    with torch.no_grad():  # BN statistics away from identity, so a removed channel would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def test_compact_model_computes_what_the_masked_model_computes() -> None:
    model = _network()
    units = select_units(find_channel_groups(model), True)
    keep = random_keep_masks(units, uniform_counts(units, 0.5, 1), seed=3)
    assert any(not bool(mask.all()) for mask in keep)
    compact = compact_model(model, units, keep, "resnet20")
    masked = masked_model(model, units, keep)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compact(x), masked(x), rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in compact.parameters()) < sum(p.numel() for p in model.parameters())


def test_the_seed_decides_the_channels_and_only_the_counts_are_fixed() -> None:
    units = select_units(find_channel_groups(_network()), True)
    counts = uniform_counts(units, 0.5, 1)
    first, again, other = (random_keep_masks(units, counts, seed) for seed in (0, 0, 1))
    assert [int(mask.sum()) for mask in other] == counts == [int(mask.sum()) for mask in first]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_counts_must_fit_the_network() -> None:
    units = select_units(find_channel_groups(_network()), True)
    with pytest.raises(ValueError, match="cannot keep"):
        random_keep_masks(units, [0] * len(units), seed=0)
    record = {"layers": [{"name": units[0].name, "channels_before": units[0].channels, "channels_after": 1}]}
    with pytest.raises(ValueError, match="other channel groups"):
        counts_from_pruning(units, record)


def test_a_run_keeps_the_slimming_runs_counts_and_starts_from_its_dense_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNELAB_CACHE_DIR", str(tmp_path / "cache"))
    store = RunStore(tmp_path / "runs")
    slim_config = tiny_config("slimming", epochs=1, finetune_epochs=1, prune_ratio=0.6, form="prunelab", **TINY)
    slim = store.create(slim_config, "slim")
    run_training(slim_config, slim)
    layers = {}
    for seed in (0, 1):
        config = tiny_config("random", epochs=1, finetune_epochs=1, init_from="slim", **TINY)
        config = config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})
        run = store.create(config, f"rand{seed}")
        summary = run_training(config, run)
        theirs = json.loads((slim.path / "pruning.json").read_text())
        mine = json.loads((run.path / "pruning.json").read_text())
        # the same groups (the slimming run's scope) with exactly its per-layer counts
        assert [(r["name"], r["channels_before"], r["channels_after"]) for r in mine["layers"]] == \
            [(r["name"], r["channels_before"], r["channels_after"]) for r in theirs["layers"]]
        assert mine["verification"]["passed"] and mine["prune_residual"] is False
        assert summary["macs_after"] == theirs["macs_after"] and summary["params_after"] == theirs["params_after"]
        assert summary["parent_run"] == "slim" and summary["epochs_total"] == 2  # 1 sparsity + 1 fine-tune
        assert summary["macs_before"] == theirs["macs_before"]  # pruned from the slimming run's dense model
        layers[seed] = [r["kept_mask"] for r in mine["layers"]]
    assert layers[0] != layers[1]  # another seed, other channels


def test_its_runs_have_their_own_label_colour_and_settings() -> None:
    from app_components import charts
    from prunelab.analysis import results, tables
    from prunelab.config import METHOD_FACTS

    row = {"method": "random", "init_from": "slim-run", "uniform_ratio": 0.5, "form": None, "departures": None}
    assert tables.variant_label(row) == "random channels: counts of slim-run"
    assert results.method_settings(row) == "random channels, counts of slim-run"
    assert tables.variant_label({**row, "init_from": None}) == "random channels: 50% of each layer"
    colours = {name: charts.method_colour(name) for name in METHOD_FACTS}
    assert colours["random"] == METHOD_FACTS["random"].colour and len(set(colours.values())) == len(colours)
    assert charts.method_name("random") == "Random channels"
