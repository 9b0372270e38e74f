"""The networks the speed benchmark times: realistic widths, random weights, real pruning decisions.

Timing needs the shapes a trained run would produce, not trained accuracy, so the weights are random:
- `random_network`: a PruneLab model at a width multiplier with random BatchNorm scales, shifts and running
  statistics (Kaiming convolutions from `build_model`). Random scales matter: at initialisation every
  gamma is 1 and a global threshold could not rank the channels.
- `slimmed_pair`: Network Slimming's own pruning code on that network: prunable units found by dependency
  graph (the residual stream of a ResNet kept, as in the reference code and the run's default), ONE global
  threshold over |gamma| at `prune_ratio` with the per-layer guard (`methods.slimming.pruning.select_channels`),
  and the physically smaller network (`compact_model`). Returns the dense network, the compact one and
  the masked reference they must agree with.
- `calibrated_gated_network`: ManiDP's gates (`install_gates`, PruneLab's small initialisation) on the same
  network, with every threshold set by ManiDP's rule (`threshold_tensor`: the saliency at rank
  ceil((1 - eta) M) of the calibration sample, so a fraction eta of the (image, channel) pairs is kept).
  The thresholds are set layer by layer in one pass: a gate's threshold is computed from the saliencies
  it sees with every earlier threshold already in place (the fixed point that a run's per-epoch
  recalibration approaches).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunelab.methods.manidp.gates import ChannelGate, GateStyle, gates_of, install_gates, set_recording
from prunelab.methods.manidp.method import threshold_tensor
from prunelab.methods.slimming.pruning import (
    channel_scores,
    compact_model,
    find_prunable_units,
    masked_model,
    select_channels,
)
from prunelab.models import build_model, model_spec


def random_network(name: str, width: float, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """`name` at `width` in eval mode, random BN affine parameters (gamma ~ U(0, 1)) and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(model_spec(name, num_classes, width))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return model.eval()


def slimmed_pair(dense: nn.Module, prune_ratio: float, min_channels: int = 1,
                 input_shape: tuple[int, ...] = (3, 32, 32)) -> tuple[nn.Module, nn.Module, dict]:
    """(compact network, masked reference, facts) from Network Slimming's global threshold on `dense`."""
    units = find_prunable_units(dense, prune_residual=False, input_shape=input_shape)
    selection = select_channels(channel_scores(dense, units), prune_ratio, min_channels)
    compact = compact_model(dense, units, selection.keep)
    masked = masked_model(dense, units, selection.keep).eval()
    facts = {"threshold": selection.threshold, "channels_removed": selection.channels_removed,
             "channels_total": sum(unit.channels for unit in units),
             "layers": [{"name": unit.name, "channels_before": unit.channels, "channels_after": int(mask.sum())}
                        for unit, mask in zip(units, selection.keep, strict=True)]}
    return compact, masked, facts


@torch.no_grad()
def calibrated_gated_network(dense: nn.Module, density: float, calibration: torch.Tensor) -> nn.Module:
    """A gated copy of `dense` whose thresholds keep a fraction `density` of the (image, channel) pairs of
    `calibration` [N, C, H, W] in every gated layer (ManiDP's rule, layer by layer in one pass)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    # PruneLab's small gate init: the reference's Kaiming gates on random weights grow the activations
    # through the residual stream (saliencies of 1e2 and more), a network no benchmark should time
    gated = install_gates(copy.deepcopy(dense), GateStyle(small_init=True)).eval()

    def calibrate(gate: nn.Module, args: tuple[torch.Tensor, torch.Tensor]) -> None:
        assert isinstance(gate, ChannelGate)
        gate.threshold.copy_(threshold_tensor(gate.saliency(args[0]), density))

    handles = [gate.register_forward_pre_hook(calibrate) for gate in gates_of(gated)]
    try:
        set_recording(gated, False)
        gated(calibration)
    finally:
        for handle in handles:
            handle.remove()
    return gated
