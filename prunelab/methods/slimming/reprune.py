"""What if a finished slimming run had pruned at another ratio? (the Slimming page's slider)

`what_if(run_dir, prune_ratio)` re-prunes the run's dense model (`dense_model.pt`, saved right after
sparsity training) with the run's own rule (`pruning.py`: one global threshold over the BN scores,
ties by position, the per-layer guard) and reports the threshold, the kept channels per layer, MACs
and params of the compact network and its test accuracy without fine-tuning. Its test images come from
`dataset_or_pack`, like ManiDP's what-if: a demo whose dataset is not on this machine is evaluated on the
test-image pack shipped beside its runs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunelab.config import RunConfig
from prunelab.data import BatchLoader, ImageDataset
from prunelab.data.test_pack import dataset_or_pack
from prunelab.methods.slimming.config import SlimmingConfig
from prunelab.methods.slimming.pruning import (
    channel_counts,
    channel_scores,
    compact_model,
    find_channel_groups,
    layer_records,
    select_channels,
    select_units,
)
from prunelab.models import build_model, spec_of
from prunelab.runs.model_file import load_model_file
from prunelab.runs.run_format import DENSE_MODEL_FILE
from prunelab.runs.store import RunDir
from prunelab.training.flops import count_macs, count_params


class _WhatIfContext:
    """What `what_if` reuses between calls for one run: dense model, prunable units, scores, config."""

    def __init__(self, run_dir: Path) -> None:
        run = RunDir(run_dir)
        self.config: RunConfig = run.read_config()
        if not isinstance(self.config.method, SlimmingConfig):
            raise ValueError(f"{run_dir} is a {self.config.method.name!r} run; what_if needs a slimming run")
        state = load_model_file(run, DENSE_MODEL_FILE)
        self.input_shape = tuple(int(v) for v in state.get("input_shape", (3, 32, 32)))
        self.dense = build_model(state["model_spec"])
        self.dense.load_state_dict(state["model_state"])
        self.dense.eval()
        self.name = str(state["model_spec"].get("name"))
        self.groups = find_channel_groups(self.dense, self.input_shape)
        self.units = select_units(self.groups, bool(self.config.method.prune_residual))
        self.scores = channel_scores(self.dense, self.units)
        self.macs_dense = count_macs(self.dense, self.input_shape)
        self.params_dense = count_params(self.dense)


@functools.lru_cache(maxsize=4)
def _what_if_context(path: str, mtime_ns: int) -> _WhatIfContext:
    return _WhatIfContext(Path(path))


@functools.lru_cache(maxsize=256)
def _macs_of_spec(spec_json: str, input_shape: tuple[int, ...]) -> int:
    return count_macs(build_model(json.loads(spec_json)), input_shape)


@torch.inference_mode()
def _accuracy(model: nn.Module, dataset: ImageDataset, batch_size: int = 1000) -> float:
    loader = BatchLoader(dataset.test_images, dataset.test_labels, batch_size, mean=dataset.mean,
                         std=dataset.std, shuffle=False, augment=False, hflip=dataset.hflip)
    correct = 0
    for images, labels, _ in loader:
        correct += int((model(images).argmax(1) == labels).sum())
    return correct / max(1, dataset.test_size)


def what_if(run_dir: str | Path, prune_ratio: float, dataset: ImageDataset | None = None,
            min_channels: int | None = None) -> dict[str, Any]:
    """Re-prune a slimming run's dense model at `prune_ratio` without fine-tuning.

    Same rule as the run (scope, global threshold on group-averaged |gamma|, ties by position, per-layer
    guard). Returns the threshold, the denominators (`channels_prunable`, `channels_all`,
    `channels_removed`), kept channels per layer, MACs and params of the compact model, and the test
    accuracy of the masked model (computed on the compact model, which `verify_compact` proves equal).
    The dense model and units are cached per (run, dense_model.pt mtime), so repeated calls cost one
    compact forward pass.
    """
    path = Path(run_dir).resolve()
    dense_file = path / DENSE_MODEL_FILE
    if not dense_file.exists():
        raise FileNotFoundError(f"{dense_file} does not exist: the run has not finished sparsity training")
    ctx = _what_if_context(str(path), dense_file.stat().st_mtime_ns)
    guard = ctx.config.method.min_channels if min_channels is None else min_channels
    selection = select_channels(ctx.scores, prune_ratio, guard, ctx.config.method.round_to)
    compact = compact_model(ctx.dense, ctx.units, selection.keep, ctx.name)
    spec_json = json.dumps(spec_of(compact, ctx.name), sort_keys=True)
    dataset = dataset if dataset is not None else dataset_or_pack(path.parent, ctx.config.data)[0]
    return {
        "prune_ratio": prune_ratio, "threshold": selection.threshold, "min_channels": guard,
        "channels_total": sum(u.channels for u in ctx.units), **channel_counts(ctx.groups, ctx.units, selection),
        "layers": [{k: row[k] for k in ("name", "channels_before", "channels_after", "guard_fired")}
                   for row in layer_records(ctx.units, selection)],
        "macs": _macs_of_spec(spec_json, ctx.input_shape), "params": count_params(compact),
        "macs_dense": ctx.macs_dense, "params_dense": ctx.params_dense, "acc": _accuracy(compact, dataset),
    }
