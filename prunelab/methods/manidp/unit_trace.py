"""Where a re-implementation of a gated network first departs from the masked model, unit by unit.

The sliced static sub-network of an image (`prunelab.methods.manidp.macs.slice_for_image`) and the sparse
executor (`prunelab.methods.manidp.executor.SparseExecutor`) must compute the masked dense model's function:

    max_x |f_candidate(x) - f_masked(x)|_inf <= tolerance        (on the logits)

When they do not, the run fails, and the message names the first unit block (`ChannelUnit.block`
of `prunelab.models.channel_units`: a VGG `features.<i>`, a ResNet `blocks.<j>`) whose output differs
by more than the tolerance. A unit whose candidate output holds only the image's kept channels is compared with the
masked output at those channels (the others are zero there by construction).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunelab.methods.manidp.gates import ChannelGate
from prunelab.methods.manidp.macs import slice_for_image
from prunelab.models import ChannelUnit, channel_units

UnitOutputs = dict[str, tuple[torch.Tensor, torch.Tensor | None]]  # name -> (output, kept channels or None)


class VerificationError(RuntimeError):
    """A pruned or sparse network does not compute what the masked network computes."""


@torch.no_grad()
def unit_outputs(model: nn.Module, image: torch.Tensor) -> tuple[UnitOutputs, torch.Tensor]:
    """Outputs of every unit block of `model` for `image` [1, C, H, W], in forward order, and the logits.

    A block whose last unit passes on only its kept channels (a gated VGG unit) names them from its
    gate's mask; a residual block's output is the full stream (kept channels None).
    """
    last: dict[str, ChannelUnit] = {}  # block name -> the unit whose output ends it
    for unit in channel_units(model):
        last[unit.block] = unit
    found: UnitOutputs = {}
    handles = []
    for block, unit in last.items():
        def hook(_mod: nn.Module, _inputs: Any, output: torch.Tensor, block: str = block,
                 unit: ChannelUnit = unit) -> None:
            try:
                gate = model.get_submodule(unit.name)
            except AttributeError:  # a sliced torchvision sub-network: no gate container
                gate = None
            kept = None
            if not unit.residual and isinstance(gate, ChannelGate) and gate.record is not None:
                kept = torch.nonzero(gate.record.mask[0]).squeeze(1)
            found[block] = (output.detach().clone(), kept)
        handles.append(model.get_submodule(block).register_forward_hook(hook))
    try:
        logits = model.eval()(image)
    finally:
        for handle in handles:
            handle.remove()
    return found, logits


def first_divergent_unit(reference: UnitOutputs, candidate: dict[str, torch.Tensor],
                         tolerance: float) -> tuple[str, float] | None:
    """(name, max |diff|) of the first unit, in the reference's order, that differs beyond `tolerance`."""
    for name, (expected, kept) in reference.items():
        if name not in candidate:
            continue
        got = candidate[name]
        if got.shape[1] != expected.shape[1]:
            if kept is None or kept.numel() != got.shape[1]:
                return name, float("inf")
            expected = expected.index_select(1, kept.to(expected.device))
        if got.shape != expected.shape:
            return name, float("inf")
        diff = float((got.float() - expected.float()).abs().max())
        if diff > tolerance:
            return name, diff
    return None


def describe_divergence(what: str, model: nn.Module, images: torch.Tensor, candidate: Any,
                        tolerance: float) -> str:
    """One message naming the worst image's logit difference and the first unit that departs.

    `candidate` is "sliced" (each image's static sub-network) or a callable `candidate(image, trace)`
    that appends `(unit name, output)` pairs to `trace` (the sparse executor).
    """
    worst: tuple[float, int, tuple[str, float] | None] = (-1.0, -1, None)
    for i in range(images.shape[0]):
        image = images[i:i + 1]
        reference, logits = unit_outputs(model, image)
        if candidate == "sliced":
            sliced, _ = slice_for_image(model, image)
            traced, candidate_logits = unit_outputs(sliced, image)
            outputs = {name: out for name, (out, _) in traced.items()}
        else:
            trace: list[tuple[str, torch.Tensor]] = []
            candidate_logits = candidate(image, trace)
            outputs = dict(trace)
        diff = float((candidate_logits.float() - logits.float()).abs().max())
        if diff > worst[0]:
            worst = (diff, i, first_divergent_unit(reference, outputs, tolerance))
    diff, index, unit = worst
    where = (f"first at unit {unit[0]} (max |diff| {unit[1]:.3g})" if unit is not None
             else "no unit's output differs beyond the tolerance, so at the classifier")
    return (f"{what} differs from the masked model by {diff:.3g} on the logits of check image {index} "
            f"(tolerance {tolerance:g}); {where}")
