"""The plug-in `Scratch`: a pruned run's architecture, or a static network at a dynamic run's mean MACs, trained
from fresh weights.

Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019), train the pruned architecture from scratch:
their code (Eric-mingjie/rethinking-network-pruning, `cifar/network-slimming/main_E.py --scratch PRUNED`) builds
the network from the pruned checkpoint's `cfg` (its per-layer widths) with the constructor's fresh weights and
trains it with the usual schedule (Scratch-E: as many epochs as the large model; `main_B.py`, Scratch-B: as much
computation). Here the run trains `train.epochs` (the `controls` suite gives the slimming run's E + F, its whole
budget) with the run's own schedule, from the widths of the run `init_from` names:

- a static pruned run (its pruning.json: slimming, random channels): that file's per-layer kept counts, matched
  by channel group in its scope (`prunelab.methods.random.method.counts_from_pruning`); the built network's MACs
  must equal the run's (`summary.json`'s `macs_per_image`), or the run fails;
- a run without pruning.json (ManiDP: a sub-network per image): every channel group (residual streams included)
  keeps the same fraction f of its channels, round(f * c), f chosen by bisection so that the network's MACs come
  closest to the run's mean MACs per image (its sub-networks', gates excluded): a static network of equal
  average MACs;
- no run: `uniform_ratio` of every group removed.

Phases: "train" only. The architecture is chosen once, in `prepare_model` on the fresh model, and built with
torch's generator seeded again by the run's seed (the engine holds its model-init lock there), so a run's weights
depend on its seed and widths alone; the choice is written to architecture.json. A resumed run rebuilds the
network from its checkpoint's spec, and its method state holds the record.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from prunelab.methods.base import EvalResult, PruningMethod, RunContext, register_method
from prunelab.methods.random.method import counts_from_pruning, uniform_counts
from prunelab.methods.scratch.config import ScratchConfig
from prunelab.methods.slimming.artefacts import PRUNING
from prunelab.methods.slimming.pruning import (
    PrunableUnit,
    compact_model,
    find_channel_groups,
    prunable_summary,
    select_units,
)
from prunelab.models import build_model, spec_of
from prunelab.runs.artefacts import SUMMARY
from prunelab.runs.run import Run
from prunelab.runs.run_format import ARCHITECTURE_FILE
from prunelab.training.flops import count_macs, count_params

BISECTION_STEPS = 40  # halvings of the kept fraction's interval: far below one channel of any layer


def first_channels(units: Sequence[PrunableUnit], counts: Sequence[int]) -> list[torch.Tensor]:
    """Per unit a mask keeping its first `counts[i]` channels: which ones does not matter, the weights are fresh."""
    masks = []
    for unit, count in zip(units, counts, strict=True):
        if not 1 <= count <= unit.channels:
            raise ValueError(f"{unit.name}: cannot keep {count} of {unit.channels} channels")
        mask = torch.zeros(unit.channels, dtype=torch.bool)
        mask[:count] = True
        masks.append(mask)
    return masks


def built_network(dense: nn.Module, units: Sequence[PrunableUnit], counts: Sequence[int], name: str) -> nn.Module:
    """A network of `dense`'s kind with `counts[i]` channels in unit i (its weights: `dense`'s first channels)."""
    return compact_model(dense, units, first_channels(units, counts), name)


def counts_at_macs(dense: nn.Module, units: Sequence[PrunableUnit], target: float, min_channels: int, name: str,
                   input_shape: tuple[int, ...]) -> tuple[list[int], float]:
    """The uniform counts round(f * c) (at least `min_channels`) whose network's MACs come closest to `target`,
    and f. MACs grow with f, so f is bisected on [0, 1]; of the two counts bracketing `target` the closer wins
    (the smaller on a tie)."""

    measured: dict[tuple[int, ...], int] = {}  # many fractions give the same counts

    def counts(fraction: float) -> list[int]:
        return uniform_counts(units, 1.0 - fraction, min_channels)

    def macs(fraction: float) -> int:
        key = tuple(counts(fraction))
        if key not in measured:
            measured[key] = count_macs(built_network(dense, units, list(key), name), input_shape)
        return measured[key]

    low, high = 0.0, 1.0
    if macs(high) <= target:
        return counts(high), high
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if macs(middle) <= target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda f: (abs(macs(f) - target), f))
    return counts(best), best


@register_method(ScratchConfig)
class Scratch(PruningMethod):
    """A pruned run's widths (or a uniform width at a run's mean MACs) trained from fresh weights."""

    config: ScratchConfig

    def __init__(self, config: ScratchConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.record: dict[str, Any] | None = None  # architecture.json's content once the widths are chosen

    @classmethod
    def check_model(cls, model: nn.Module, input_shape: tuple[int, ...]) -> str:
        return prunable_summary(model, input_shape)

    @property
    def _input_shape(self) -> tuple[int, ...]:
        return tuple(self.context.data.image_shape)

    def prepare_model(self, model: nn.Module, fresh: bool) -> nn.Module:
        """Fresh: choose the widths, build that network with fresh weights (after the dense network's seeded
        draws) and write architecture.json. Resumed: the checkpoint's network, as it is."""
        if not fresh:
            return model
        context = self.context
        name = context.config.model.name
        dense = copy.deepcopy(model).cpu().float().eval()
        groups = find_channel_groups(dense, self._input_shape)
        parent, keep_fraction, target = None, None, None
        if self.config.init_from:
            run = self.parent_dir(self.config.init_from)
            parent, reader = run.run_id, Run(run.path)
            pruning = reader.read(PRUNING)
            summary = reader.require(SUMMARY)  # a finished run: its MACs per image exist
            target = float(summary["macs_per_image"])
            if isinstance(pruning, dict):
                source = "counts"
                units = select_units(groups, bool(pruning.get("prune_residual", False)))
                counts = counts_from_pruning(units, pruning)
            else:
                source = "macs"
                units = select_units(groups, True)
                counts, keep_fraction = counts_at_macs(dense, units, target, self.config.min_channels, name,
                                                       self._input_shape)
        else:
            source = "uniform"
            units = select_units(groups, True)
            counts = uniform_counts(units, self.config.uniform_ratio, self.config.min_channels)
            keep_fraction = 1.0 - self.config.uniform_ratio
        spec = spec_of(built_network(dense, units, counts, name), name)
        torch.manual_seed(context.config.train.seed)  # the weights depend on the seed and the widths alone
        fresh_network = build_model(spec)
        macs = count_macs(fresh_network, self._input_shape)
        if source == "counts" and macs != target:
            raise ValueError(f"init_from {parent}: the network built from its pruning.json has {macs} MACs per "
                             f"image, the run {target:.0f}; the same model, width and number of classes are needed")
        self.record = {
            "source": source, "parent_run": parent, "keep_fraction": keep_fraction, "macs_target": target,
            "macs": macs, "macs_dense": count_macs(dense, self._input_shape), "params": count_params(fresh_network),
            "params_dense": count_params(dense),
            "layers": [{"name": unit.name, "channels_before": unit.channels, "channels_after": int(count)}
                       for unit, count in zip(units, counts, strict=True)],
        }
        context.artefacts.write_json(ARCHITECTURE_FILE, self.record)
        context.log(f"from scratch: {source} of {parent or 'a uniform ratio'}: {sum(counts)} of "
                    f"{sum(u.channels for u in units)} channels kept, {macs / 1e6:.3f} M MACs per image"
                    + (f" (target {target / 1e6:.3f} M)" if target is not None else "") + ", fresh weights")
        device_model = fresh_network.to(context.device)
        return device_model.to(memory_format=torch.channels_last) if context.channels_last else device_model

    def lineage(self) -> dict[str, Any]:
        """The run whose architecture this one trains; none of its epochs is behind these weights."""
        parent = (self.record or {}).get("parent_run")
        return {"parent_run": parent, "parent_epochs_total": 0} if parent else {}

    def finalize(self, model: nn.Module, test: EvalResult) -> dict[str, Any]:
        if self.record is None:
            raise RuntimeError("from scratch finished without an architecture (prepare_model never ran fresh)")
        record = self.record
        return {"architecture_source": record["source"], "macs_before": record["macs_dense"],
                "params_before": record["params_dense"], "macs_target": record["macs_target"],
                "channels_kept": {row["name"]: row["channels_after"] for row in record["layers"]}}

    def state_dict(self) -> dict[str, Any]:
        return {"record": self.record}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.record = state.get("record")
