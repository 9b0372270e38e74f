"""Static channel pruning on BatchNorm scales (Network Slimming, Liu et al., ICCV 2017), as pure functions.

1. `find_prunable_units` discovers which BatchNorm channels may be removed. Channels that a residual
   add ties together form ONE unit (found with Torch-Pruning's `DependencyGraph`), so a unit lists
   every coupled BN and every (module, pruning function) that removing one of its channels touches.
2. `channel_scores` gives one score per unit channel: `s_c = mean_{BN in unit} |gamma_BN[c]|`, the
   group-averaged |gamma| of Torch-Pruning's BN-scale importance (its `group_reduction="mean"`; without its
   per-group normaliser, so the threshold stays one global |gamma| as in the reference code). A channel of
   one BN scores its own |gamma|.
3. `select_channels` takes ONE global threshold over all scores at the `prune_ratio` percentile and
   applies the per-layer guard (`min_channels`).
4. `masked_model` zeroes the BN weight and bias of removed channels (the reference network);
   `compact_model` physically removes them; `verify_compact` checks both compute the same function.

The L1 sparsity term `lambda * sum |gamma|` enters training as the subgradient `lambda * sign(gamma)`
(`add_l1_subgradient_`), added to the BN weight gradients between `backward()` and `step()`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunelab.models import build_model, spec_of
from prunelab.models.channel_graph import ChannelGroup, channel_groups

# --- prunable units --------------------------------------------------------------------------------
# a unit is a channel group of `prunelab.models.channel_graph` (one DependencyGraph walk): its coupled BNs and
# every (module, pruning fn) that removing one of its channels touches; `unit.residual`: tied to other layers'
# channels (a residual stream, a multiply, a grouped convolution)
PrunableUnit = ChannelGroup


def find_channel_groups(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> list[PrunableUnit]:
    """Every group of BN channels that must be removed together, in module order (`channel_graph.channel_groups`).

    A group whose channels are renumbered on the way (a concatenation, split or flatten: `group.mapped`) or pass
    a grouped convolution (`group.grouped`) is left out: it keeps its full width. Raises ValueError for a model
    without BatchNorm2d, or without any group left, naming the first group and why.
    """
    every = channel_groups(model, input_shape)
    groups = [group for group in every if group.prunable]
    if not groups:
        first = every[0]
        raise ValueError(f"no BN channel group can be removed: the first, {first.name}, because "
                         f"{first.mapped or first.grouped}")
    _check_disjoint(groups)
    return groups


def prunable_summary(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """ValueError when no BN channel group of `model` can be removed; else one line on how many can."""
    groups = find_channel_groups(model, input_shape)
    free = sum(group.channels for group in groups if not group.residual)
    return (f"{len(groups)} BN channel groups ({sum(g.channels for g in groups)} channels, {free} of them tied to no "
            "other layer) can be pruned")


def _check_disjoint(units: Sequence[PrunableUnit]) -> None:
    """Each (module, pruning fn) must belong to one unit, so units can be cut independently."""
    owners: dict[tuple[str, str], str] = {}
    for unit in units:
        for module_name, fn in unit.ops:
            key = (module_name, getattr(fn, "__name__", repr(fn)))
            if key in owners and owners[key] != unit.name:
                raise NotImplementedError(f"{module_name} is shared by units {owners[key]} and {unit.name}")
            owners[key] = unit.name


def select_units(groups: Sequence[PrunableUnit], prune_residual: bool) -> list[PrunableUnit]:
    """The groups in the pruning scope: all of them with `prune_residual` (the reference: L1 and the
    threshold on every BN), else only those of one BN (a ResNet block's interior `bn_a`; every BN of a VGG)."""
    chosen = [unit for unit in groups if prune_residual or not unit.residual]
    if not chosen:
        raise ValueError("the model has no prunable BatchNorm channels")
    return chosen


def find_prunable_units(model: nn.Module, prune_residual: bool = False,
                        input_shape: tuple[int, ...] = (3, 32, 32)) -> list[PrunableUnit]:
    """The BN channel groups Network Slimming may prune.

    VGG: every conv unit's BN. ResNet: with `prune_residual=True` (the reference scope) every BN, the
    residual-stream ones (stem BN + every `bn_b` + projection BNs of one stage, coupled by the adds) as
    one group per stage; with `False` (PruneLab's interior-only scope) only the BN inside each block
    (`bn_a`), so the residual stream keeps its full width.
    """
    return select_units(find_channel_groups(model, input_shape), prune_residual)


def prunable_bn_names(units: Sequence[PrunableUnit]) -> list[str]:
    """Every BN of the given units, in unit order."""
    return [name for unit in units for name in unit.bns]


# --- scores and the L1 term ------------------------------------------------------------------------
def channel_scores(model: nn.Module, units: Sequence[PrunableUnit]) -> list[torch.Tensor]:
    """Per unit, float32 CPU [C]: `s_c = mean over the unit's BNs of |gamma_c|` (group-averaged |gamma|)."""
    scores = []
    for unit in units:
        gammas = torch.stack([model.get_submodule(n).weight.detach().abs().float().cpu() for n in unit.bns])
        scores.append(gammas.mean(dim=0))
    return scores


def l1_penalty(bns: Sequence[nn.BatchNorm2d], sparsity_lambda: float) -> float:
    """The sparsity term's value `lambda * sum_gamma |gamma|` (logged; it never enters loss.backward)."""
    return sparsity_lambda * float(sum(bn.weight.detach().abs().sum() for bn in bns))


@torch.no_grad()
def add_l1_subgradient_(bns: Sequence[nn.BatchNorm2d], sparsity_lambda: float) -> None:
    """grad(gamma) += lambda * sign(gamma): the subgradient of `lambda * sum |gamma|` (0 at gamma = 0)."""
    if sparsity_lambda == 0.0:
        return
    for bn in bns:
        if bn.weight.grad is not None:
            bn.weight.grad.add_(torch.sign(bn.weight), alpha=sparsity_lambda)


# --- global threshold and the per-layer guard ---------------------------------------------------
@dataclass(frozen=True)
class ChannelSelection:
    """Which channels survive, per unit (bool masks, True = kept)."""

    threshold: float  # largest score among the globally removed channels (0.0 when none)
    keep: list[torch.Tensor]
    removed_target: int  # round(prune_ratio * N) channels chosen by the global ranking
    guard_fired: list[bool]

    @property
    def channels_removed(self) -> int:
        return sum(int((~mask).sum()) for mask in self.keep)


def global_keep_masks(scores: Sequence[torch.Tensor],
                      prune_ratio: float) -> tuple[float, list[torch.Tensor], int]:
    """One global threshold over all N channel scores: remove exactly k = floor(ratio * N + 0.5) channels.

    The k smallest scores go. Ties are broken deterministically by position (earlier unit first, then
    lower channel index), so channels scoring exactly the threshold are split by position and the
    count is exact. Returns (threshold = the k-th smallest score or 0.0 if k = 0, keep masks, k).
    """
    if not 0.0 <= prune_ratio < 1.0:
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
    flat = torch.cat([s.float().flatten().cpu() for s in scores])
    total = flat.numel()
    k = min(total, math.floor(prune_ratio * total + 0.5))
    order = torch.sort(flat, stable=True).indices  # stable: equal scores keep their position order
    keep_flat = torch.ones(total, dtype=torch.bool)
    keep_flat[order[:k]] = False
    threshold = float(flat[order[k - 1]]) if k > 0 else 0.0
    return threshold, list(torch.split(keep_flat, [s.numel() for s in scores])), k


def apply_min_channels(scores: Sequence[torch.Tensor], keep: Sequence[torch.Tensor],
                       min_channels: int) -> tuple[list[torch.Tensor], list[bool]]:
    """Per-layer guard: a unit left with fewer than m = min(min_channels, C) channels keeps its m
    highest scores instead (ties: lower index first). Returns (masks, guard fired per unit)."""
    if min_channels < 1:
        raise ValueError(f"min_channels must be >= 1, got {min_channels}")
    masks, fired = [], []
    for score, mask in zip(scores, keep, strict=True):
        need = min(min_channels, score.numel())
        if int(mask.sum()) >= need:
            masks.append(mask.clone())
            fired.append(False)
            continue
        order = torch.sort(-score.float(), stable=True).indices  # descending, lower index first on ties
        guarded = torch.zeros_like(mask)
        guarded[order[:need]] = True
        masks.append(guarded)
        fired.append(True)
    return masks, fired


def apply_round_to(scores: Sequence[torch.Tensor], keep: Sequence[torch.Tensor], round_to: int) -> list[torch.Tensor]:
    """Each group's kept count rounded up to a multiple of `round_to` (at most its width), the extra channels its
    highest-scoring removed ones (ties: lower index first): Torch-Pruning's `round_to`, widths that run fast."""
    if round_to < 1:
        raise ValueError(f"round_to must be >= 1, got {round_to}")
    masks = []
    for score, mask in zip(scores, keep, strict=True):
        kept = int(mask.sum())
        want = min(score.numel(), -(-kept // round_to) * round_to)
        mask = mask.clone()
        if want > kept:
            order = torch.sort(-score.float(), stable=True).indices
            add = [int(i) for i in order if not mask[i]][: want - kept]
            mask[add] = True
        masks.append(mask)
    return masks


def select_channels(scores: Sequence[torch.Tensor], prune_ratio: float,
                    min_channels: int = 1, round_to: int = 1) -> ChannelSelection:
    """Global percentile threshold (`global_keep_masks`), the per-layer guard, then `round_to` per group."""
    threshold, keep, k = global_keep_masks(scores, prune_ratio)
    keep, fired = apply_min_channels(scores, keep, min_channels)
    if round_to > 1:
        keep = apply_round_to(scores, keep, round_to)
    return ChannelSelection(threshold, keep, k, fired)


def channel_counts(groups: Sequence[PrunableUnit], units: Sequence[PrunableUnit],
                   selection: ChannelSelection | None = None) -> dict[str, int]:
    """The denominators of a prune ratio: `channels_prunable` (the scope's channels, which the ratio is a
    fraction of), `channels_all` (every channel group of the network) and, given a selection,
    `channels_removed`. A channel coupled by residual adds counts once; `bn_channels_all` /
    `bn_channels_removed` count it once per BN, as the reference code's percentage does."""
    counts = {"channels_prunable": sum(u.channels for u in units), "channels_all": sum(g.channels for g in groups),
              "bn_channels_all": sum(g.channels * len(g.bns) for g in groups)}
    if selection is not None:
        removed = [int((~mask).sum()) for mask in selection.keep]
        counts["channels_removed"] = sum(removed)
        counts["bn_channels_removed"] = sum(n * len(u.bns) for n, u in zip(removed, units, strict=True))
    return counts


# --- masked and compact networks ---------------------------------------------------------------
@torch.no_grad()
def masked_model(model: nn.Module, units: Sequence[PrunableUnit], keep: Sequence[torch.Tensor]) -> nn.Module:
    """A copy of `model` whose removed channels output exactly zero: BN weight and bias set to 0."""
    masked = copy.deepcopy(model)
    for unit, mask in zip(units, keep, strict=True):
        for name in unit.bns:
            bn = masked.get_submodule(name)
            drop = (~mask).to(bn.weight.device)
            bn.weight[drop] = 0.0
            bn.bias[drop] = 0.0
    return masked


def compact_model(model: nn.Module, units: Sequence[PrunableUnit], keep: Sequence[torch.Tensor],
                  name: str | None = None) -> nn.Module:
    """A physically smaller plain PruneLab model (CPU) computing what `masked_model` computes.

    Every op of a unit (conv out/in channels, BN params and running stats, classifier columns) is
    sliced with Torch-Pruning's pruning functions, then the network is rebuilt from its widths
    (`build_model(spec_of(...))`) and loaded, so the result has no Torch-Pruning state in it.
    """
    work = copy.deepcopy(model).cpu().float().eval()
    for unit, mask in zip(units, keep, strict=True):
        if mask.numel() != unit.channels:
            raise ValueError(f"mask of {unit.name} has {mask.numel()} entries for {unit.channels} channels")
        removed = torch.nonzero(~mask).flatten().tolist()
        if not removed:
            continue
        if len(removed) == unit.channels:
            raise ValueError(f"refusing to remove every channel of {unit.name}; use min_channels >= 1")
        for module_name, prune_fn in unit.ops:
            prune_fn(work.get_submodule(module_name), removed)
    plain = build_model(spec_of(work, name))
    plain.load_state_dict(work.state_dict())
    return plain.eval()


@torch.no_grad()
def verify_compact(compact: nn.Module, masked: nn.Module, images: torch.Tensor,
                   rel_tolerance: float = 1e-4) -> dict[str, Any]:
    """Check `compact(x) == masked(x)` in eval mode on real images; raise RuntimeError if not.

    Tolerance: `rel_tolerance * max(1, max |masked(x)|)` on the logits (float32 reassociation only).
    """
    compact, masked = compact.cpu().float().eval(), masked.cpu().float().eval()
    x = images.detach().cpu().float().contiguous()
    reference = masked(x)
    diff = float((compact(x) - reference).abs().max())
    tolerance = rel_tolerance * max(1.0, float(reference.abs().max()))
    result = {"max_abs_diff": diff, "tolerance": tolerance, "images": int(x.shape[0]),
              "passed": diff <= tolerance}
    if not result["passed"]:
        raise RuntimeError(f"compact model differs from the masked model: max |diff| = {diff:.3g} "
                           f"> tolerance {tolerance:.3g} on {x.shape[0]} test images")
    return result


def layer_records(units: Sequence[PrunableUnit], selection: ChannelSelection) -> list[dict[str, Any]]:
    """The per-unit rows of pruning.json."""
    return [{
        "name": unit.name, "bns": list(unit.bns), "residual": unit.residual, "channels_before": unit.channels,
        "channels_after": int(mask.sum()), "kept_mask": [int(v) for v in mask.tolist()], "guard_fired": fired,
    } for unit, mask, fired in zip(units, selection.keep, selection.guard_fired, strict=True)]
