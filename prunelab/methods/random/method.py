"""The plug-in `RandomChannels`: a slimming run's per-layer counts, channels drawn at random, fine-tuning.

Phases: "train" (the run's own epochs; none when `init_from` names a slimming run, whose dense model after
sparsity training is loaded instead), then "finetune". Between them the dense network is cut to the counts
(the slimming run's pruning.json rows, matched by channel group, in that run's scope; else `uniform_ratio`
of every group), each group's kept channels drawn with a generator seeded by the run's seed, the compact
network checked against the masked one on test images, and `pruning.json` written in slimming's format
(threshold 0: no score decided anything), so every page that reads a pruned network's layers reads it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from prunelab.methods.base import EvalResult, Phase, PruningMethod, RunContext, register_method
from prunelab.methods.random.config import RandomConfig
from prunelab.methods.slimming.artefacts import PRUNING
from prunelab.methods.slimming.method import load_dense_model
from prunelab.methods.slimming.pruning import (
    ChannelSelection,
    PrunableUnit,
    channel_counts,
    compact_model,
    find_channel_groups,
    layer_records,
    masked_model,
    prunable_summary,
    select_units,
    verify_compact,
)
from prunelab.runs.artefacts import CONFIG
from prunelab.runs.run import Run
from prunelab.runs.run_format import PRUNING_FILE
from prunelab.runs.store import RunDir
from prunelab.training.flops import count_macs, count_params

VERIFY_IMAGES = 256


def random_keep_masks(units: Sequence[PrunableUnit], counts: Sequence[int], seed: int) -> list[torch.Tensor]:
    """Per unit a bool mask keeping `counts[i]` of its channels, drawn uniformly with a generator seeded by
    `seed` (the same seed, units and counts give the same masks)."""
    generator = torch.Generator().manual_seed(int(seed))
    masks = []
    for unit, count in zip(units, counts, strict=True):
        if not 1 <= count <= unit.channels:
            raise ValueError(f"{unit.name}: cannot keep {count} of {unit.channels} channels")
        mask = torch.zeros(unit.channels, dtype=torch.bool)
        mask[torch.randperm(unit.channels, generator=generator)[:count]] = True
        masks.append(mask)
    return masks


def counts_from_pruning(units: Sequence[PrunableUnit], record: Mapping[str, Any]) -> list[int]:
    """The kept channels of each unit in a slimming run's pruning.json (rows matched by group name)."""
    rows = {str(row["name"]): row for row in record["layers"]}
    missing = [unit.name for unit in units if unit.name not in rows]
    if missing or len(rows) != len(units):
        raise ValueError(f"the slimming run's pruning.json names other channel groups ({sorted(rows)[:3]}...; "
                         f"missing here: {missing[:3]}): the same model and width are needed")
    for unit in units:
        if int(rows[unit.name]["channels_before"]) != unit.channels:
            raise ValueError(f"{unit.name}: {unit.channels} channels here, "
                             f"{rows[unit.name]['channels_before']} in the slimming run")
    return [int(rows[unit.name]["channels_after"]) for unit in units]


def uniform_counts(units: Sequence[PrunableUnit], ratio: float, min_channels: int) -> list[int]:
    """Keep round((1 - ratio) * c) channels of every unit, at least `min_channels` (and at most c)."""
    return [min(unit.channels, max(min_channels, round((1.0 - ratio) * unit.channels))) for unit in units]


@register_method(RandomConfig)
class RandomChannels(PruningMethod):
    """A slimming run's (or a uniform) per-layer channel counts, channels at random, then fine-tuning."""

    config: RandomConfig

    def __init__(self, config: RandomConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.parent: dict[str, Any] = {}  # {"parent_run", "parent_epochs_total"} with init_from
        self.record: dict[str, Any] | None = None  # pruning.json content once pruned

    @classmethod
    def check_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        return prunable_summary(model, input_shape)

    def phases(self) -> list[Phase]:
        train = self.context.config.train
        own = 0 if self.config.init_from else train.epochs
        return [Phase("train", own, train.lr),
                Phase("finetune", self.config.finetune_epochs, self.config.finetune_lr or train.lr)]

    @property
    def _input_shape(self) -> tuple[int, ...]:
        return tuple(self.context.data.image_shape)

    def _parent_dir(self) -> RunDir:
        return self.parent_dir(str(self.config.init_from))

    def _parent_record(self) -> dict[str, Any]:
        parent = self._parent_dir()
        record = Run(parent.path).read(PRUNING)
        if not isinstance(record, dict):
            raise ValueError(f"init_from {parent.run_id}: no pruning.json (a finished slimming run is needed)")
        return record

    def prepare_model(self, model: nn.Module, fresh: bool) -> nn.Module:
        """Fresh with `init_from`: the slimming run's dense model (after sparsity training) as the start."""
        if fresh and self.config.init_from:
            parent = self._parent_dir()
            self._parent_record()  # a finished slimming run: its counts exist
            dense = load_dense_model(parent.path)
            own = model.state_dict()
            theirs = dense.state_dict()
            if set(own) != set(theirs) or any(own[k].shape != theirs[k].shape for k in own):
                raise ValueError(f"init_from {parent.run_id}: its dense model is another network; "
                                 "the same model, width and number of classes are needed")
            model.load_state_dict(theirs)
            self.parent = {"parent_run": parent.run_id,
                           "parent_epochs_total": int(Run(parent.path).require(CONFIG).train.epochs)}
        return model

    def lineage(self) -> dict[str, Any]:
        return dict(self.parent)

    def between_phases(self, finished: Phase, upcoming: Phase, model: nn.Module) -> nn.Module:
        """Cut the trained dense network to the counts, channels at random; verify; write pruning.json."""
        if finished.name != "train":
            return model
        context = self.context
        dense = copy.deepcopy(model).cpu().float().eval()
        groups = find_channel_groups(dense, self._input_shape)
        if self.config.init_from:
            parent = self._parent_record()
            prune_residual = bool(parent.get("prune_residual", False))
            units = select_units(groups, prune_residual)
            counts = counts_from_pruning(units, parent)
        else:
            prune_residual = True
            units = select_units(groups, prune_residual)
            counts = uniform_counts(units, self.config.uniform_ratio, self.config.min_channels)
        keep = random_keep_masks(units, counts, context.config.train.seed)
        selection = ChannelSelection(threshold=0.0, keep=keep, removed_target=sum(u.channels for u in units)
                                     - sum(counts), guard_fired=[False] * len(units))
        acc_before = context.evaluate(model).acc
        masked = masked_model(dense, units, keep)
        compact = compact_model(dense, units, keep, context.config.model.name)
        loader = context.loader("test", shuffle=False, augment=False, batch_size=VERIFY_IMAGES)
        images = next(iter(loader))[0].cpu().float().contiguous()
        verification = verify_compact(compact, masked, images)
        acc_after = context.evaluate(compact.to(context.device)).acc
        totals = channel_counts(groups, units, selection)
        self.record = {
            "threshold": 0.0, "selection": "random", "seed": context.config.train.seed,
            "slimming_run": self.parent.get("parent_run"),
            "prune_ratio": totals["channels_removed"] / max(1, totals["channels_prunable"]),
            "min_channels": self.config.min_channels, "prune_residual": prune_residual,
            "prune_scope": "every BN" if len(units) == len(groups) else "block interiors (bn_a)",
            "channels_total": totals["channels_prunable"], **totals,
            "guard_fired_layers": [], "layers": layer_records(units, selection), "verification": verification,
            "acc_before_prune": acc_before, "acc_after_prune": acc_after,
            "macs_before": count_macs(dense, self._input_shape), "params_before": count_params(dense),
            "macs_after": count_macs(compact, self._input_shape), "params_after": count_params(compact),
        }
        context.artefacts.write_json(PRUNING_FILE, self.record)
        context.log(f"random channels: removed {totals['channels_removed']} of {totals['channels_prunable']}, "
                    f"acc {acc_before:.4f} -> {acc_after:.4f}, verified max |diff| "
                    f"{verification['max_abs_diff']:.2e}")
        return compact

    def finalize(self, model: nn.Module, test: EvalResult) -> dict[str, Any]:
        if self.record is None:
            raise RuntimeError("random channels finished without pruning (between_phases never ran)")
        compact = copy.deepcopy(model).cpu().float().eval()
        record = self.record
        return {
            "acc_before_prune": record["acc_before_prune"], "acc_after_prune": record["acc_after_prune"],
            "acc_after_finetune": test.acc, "params_before": record["params_before"],
            "params_after": count_params(compact), "macs_before": record["macs_before"],
            "macs_after": count_macs(compact, self._input_shape), "prune_ratio": record["prune_ratio"],
            "channels_removed": record["channels_removed"], "channels_prunable": record["channels_prunable"],
            "channels_all": record["channels_all"], "prune_scope": record["prune_scope"],
            "channels_kept": {row["name"]: row["channels_after"] for row in record["layers"]},
        }

    def state_dict(self) -> dict[str, Any]:
        return {"record": self.record, "parent": dict(self.parent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.record = state.get("record")
        self.parent = dict(state.get("parent") or {})
