"""Per-image MACs of a gated network from its masks, verified against a physically sliced network.

For every convolution the sub-network of image x costs

    MACs(conv) = k_h * k_w * H_out * W_out * |active in channels(x)| * |active out channels(x)|

and a Linear layer costs |active in| * |out|. Ungated convolutions (stem, shortcuts) and the
classifier count with their active channel counts too (in a ResNet the residual stream is never
gated, so they are full), so the per-image total is the MACs of the static network that the image
actually runs. The gates' own MACs (two small Linear layers each) are reported separately.

Which gate governs a layer's inputs and outputs comes from the model's units
(`prunelab.models.channel_units`): a unit's conv has its gate's active outputs, and every layer that
reads the unit's channels (its `consumers`) has them as active inputs; every other layer is full.

Verification (`verify_macs`): for an image, `slice_for_image` builds a plain static network with
`build_model(spec)` and replaces every gated unit's conv and BN by their active channels (the image's
saliencies folded into the BN affine parameters) and its consumers' inputs likewise, and
`prunelab.training.flops.count_macs` (FlopCounterMode) counts it; the two numbers must agree exactly. A unit
added into a full-width residual stream (a ResNet block's conv_b) scatters its active channels back
with `ChannelScatter` (no MACs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunelab.methods.manidp.gates import gated_units, records, set_recording
from prunelab.models import build_model, channel_units, spec_of
from prunelab.models.weights import state_subset
from prunelab.training.flops import count_macs

FULL = -1  # source marker: the layer's channels are never gated (full width)


@dataclass(frozen=True)
class MacsTerm:
    """One conv or linear layer: MACs = coef * active_in * active_out (coef = k_h k_w H_out W_out, or 1)."""

    name: str
    coef: int
    in_gate: int  # index of the gate whose mask gives the active inputs, or FULL
    in_width: int  # full input width (used when in_gate == FULL)
    out_gate: int
    out_width: int
    per_channel: bool = False  # a depthwise conv: MACs = coef * active channels (coef = k_h k_w H_out W_out)
    groups: int = 1  # a grouped conv (never gated): MACs = coef * in * out / groups

    def dense(self) -> int:
        if self.per_channel:
            return self.coef * self.out_width
        return self.coef * self.in_width * self.out_width // self.groups


@dataclass(frozen=True)
class MacsPlan:
    """Every MACs term of a gated network, plus the gates' names, widths and own MACs."""

    terms: tuple[MacsTerm, ...]
    gate_names: tuple[str, ...]
    gate_channels: tuple[int, ...]
    gate_macs: int

    def dense_macs(self) -> int:
        """MACs with every channel active (the backbone without gates)."""
        return sum(t.dense() for t in self.terms)

    def reach(self) -> dict[str, int]:
        """What the gates can switch off: gated channels of all BN channels counted by the plan's layers, and
        the dense MACs of the layers a gate governs (inputs or outputs) against all dense MACs."""
        governed = sum(t.dense() for t in self.terms if t.in_gate != FULL or t.out_gate != FULL)
        return {"gated_channels": sum(self.gate_channels), "macs_in_reach": governed, "macs_dense": self.dense_macs()}

    def macs(self, counts: torch.Tensor) -> torch.Tensor:
        """Per-image MACs [N] int64 from active channel counts [N, L] (L = number of gates)."""
        counts = counts.to(torch.int64)
        total = torch.zeros(counts.shape[0], dtype=torch.int64, device=counts.device)
        for t in self.terms:
            active_in = counts[:, t.in_gate] if t.in_gate != FULL else t.in_width
            active_out = counts[:, t.out_gate] if t.out_gate != FULL else t.out_width
            total += t.coef * active_out if t.per_channel else t.coef * active_in * active_out // t.groups
        return total


def active_counts(masks: list[torch.Tensor]) -> torch.Tensor:
    """[N, L] int64: number of kept channels per image and gated layer, from L bool masks [N, C_l]."""
    return torch.stack([m.sum(dim=1) for m in masks], dim=1).to(torch.int64)


def _output_hw(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """(H_out, W_out) of every Conv2d for one image of `input_shape`, by tracing with forward hooks."""
    sizes: dict[str, tuple[int, int]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                sizes[name] = (int(out.shape[2]), int(out.shape[3]))

            handles.append(module.register_forward_hook(hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return sizes


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _conv_term(name: str, conv: nn.Conv2d, hw: tuple[int, int], in_gate: int, out_gate: int) -> MacsTerm:
    k_h, k_w = conv.kernel_size
    if _is_depthwise(conv):  # each output channel reads its own input channel
        return MacsTerm(name, k_h * k_w * hw[0] * hw[1], out_gate, conv.in_channels, out_gate, conv.out_channels,
                        per_channel=True)
    return MacsTerm(name, k_h * k_w * hw[0] * hw[1], in_gate, conv.in_channels, out_gate, conv.out_channels,
                    groups=conv.groups)


def build_plan(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> MacsPlan:
    """The MACs plan of a gated network: every conv and Linear of the backbone, in module order, with
    the gate whose mask gives its active inputs and outputs (FULL where no gate governs them)."""
    gated = gated_units(model)
    position = {unit.index: i for i, (unit, _) in enumerate(gated)}  # unit index -> gate index
    out_gate, in_gate = {}, {}
    for unit in channel_units(model):
        out_gate[unit.conv] = position.get(unit.index, FULL)
        out_gate.update(dict.fromkeys((conv for conv, _ in unit.carriers), position.get(unit.index, FULL)))
        in_gate.update(dict.fromkeys(unit.consumers, position.get(unit.index, FULL)))
    slots = tuple(f"{unit.name}." for unit in channel_units(model))  # the gates' own layers are counted apart
    hw = _output_hw(model, input_shape)
    terms: list[MacsTerm] = []
    for name, module in model.named_modules():
        if name.startswith(slots):
            continue
        if isinstance(module, nn.Conv2d):
            terms.append(_conv_term(name, module, hw[name], in_gate.get(name, FULL), out_gate.get(name, FULL)))
        elif isinstance(module, nn.Linear):
            terms.append(MacsTerm(name, 1, in_gate.get(name, FULL), module.in_features, FULL, module.out_features))
    gate_macs = sum(gate.macs() for _, gate in gated)
    names = tuple(unit.name for unit, _ in gated)
    return MacsPlan(tuple(terms), names, tuple(gate.out_channels for _, gate in gated), gate_macs)


# ------------------------------------------------------------------------------------------------
# physical slicing of one image's sub-network


class ChannelScatter(nn.Module):
    """`gate(inputs, outputs)` slot of a sliced block: put the active channels back at full width."""

    def __init__(self, index: torch.Tensor, width: int) -> None:
        super().__init__()
        self.register_buffer("index", index.clone())
        self.width = width

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        full = outputs.new_zeros((outputs.shape[0], self.width, *outputs.shape[2:]))
        return full.index_copy(1, self.index, outputs)


def _slice_conv(conv: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    """The conv on the given output and input channels (a depthwise conv: `out_idx` both, one group each)."""
    weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
    depthwise = _is_depthwise(conv)
    if out_idx is not None:
        weight = weight.index_select(0, out_idx)
        bias = None if bias is None else bias.index_select(0, out_idx)
    if in_idx is not None and not depthwise:
        weight = weight.index_select(1, in_idx)
    groups = weight.shape[0] if depthwise else conv.groups
    sliced = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], conv.kernel_size, stride=conv.stride,
                       padding=conv.padding, dilation=conv.dilation, groups=groups,
                       bias=bias is not None).to(weight.device)
    sliced.weight.data.copy_(weight)
    if bias is not None:
        sliced.bias.data.copy_(bias)
    return sliced


def _slice_bn(bn: nn.BatchNorm2d, idx: torch.Tensor, scale: torch.Tensor) -> nn.BatchNorm2d:
    """BN of the kept channels with the image's saliency folded in: pi * BN(z) = BN'(z) (pi >= 0)."""
    sliced = nn.BatchNorm2d(len(idx), eps=bn.eps).to(idx.device)
    with torch.no_grad():
        sliced.weight.copy_(bn.weight[idx] * scale)
        sliced.bias.copy_(bn.bias[idx] * scale)
        sliced.running_mean.copy_(bn.running_mean[idx])
        sliced.running_var.copy_(bn.running_var[idx])
    return sliced.eval()


Kept = list[tuple[torch.Tensor, torch.Tensor]]  # per gate: (active channel indices, their saliencies pi)


def _image_gates(model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, Kept]:
    """Logits [1, K] of the masked dense model and, per gate, (active indices, their saliencies)."""
    model.eval()
    set_recording(model, True)
    with torch.no_grad():
        logits = model(image)
    kept = []
    for record in records(model):
        idx = record.mask[0].nonzero().squeeze(1)
        kept.append((idx, record.saliency[0].detach().float()[idx]))
    return logits, kept


def _slice_inputs(layer: nn.Module, idx: torch.Tensor) -> nn.Module:
    """A conv or Linear reading only the input channels `idx` (a static layer consuming a gated unit)."""
    if isinstance(layer, nn.Conv2d):
        return _slice_conv(layer, None, idx)
    sliced = nn.Linear(len(idx), layer.out_features).to(idx.device)
    with torch.no_grad():
        sliced.weight.copy_(layer.weight.index_select(1, idx))
        sliced.bias.copy_(layer.bias)
    return sliced


def slice_for_image(model: nn.Module, image: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """(static sub-network of `image` [1, C, H, W] built with build_model, masked dense logits [1, K]).

    Every gated unit keeps its active channels: its conv W[idx_out][:, idx_in] (idx_in: the source
    unit's active channels), its BN with the saliencies folded in, and the layers consuming it read
    only those channels; a residual unit's channels are scattered back into the full-width stream.
    """
    logits, kept = _image_gates(model, image)
    active = {unit.index: channels for (unit, _), channels in zip(gated_units(model), kept, strict=True)}
    units = channel_units(model)
    slots = tuple(f"{unit.name}." for unit in units)
    sliced = build_model(spec_of(model)).to(image.device).eval()
    sliced.load_state_dict(state_subset(model.state_dict(), lambda k: not k.startswith(slots)))
    unit_convs = {unit.conv for unit in units}
    for unit in units:
        source = active.get(unit.source) if unit.source is not None else None
        in_idx = None if source is None else source[0]
        if unit.index not in active:
            if in_idx is not None:
                sliced.set_submodule(unit.conv, _slice_conv(model.get_submodule(unit.conv), None, in_idx))
            continue
        idx, scale = active[unit.index]
        conv = model.get_submodule(unit.conv)
        sliced.set_submodule(unit.conv, _slice_conv(conv, idx, in_idx))
        sliced.set_submodule(unit.bn, _slice_bn(model.get_submodule(unit.bn), idx, scale))
        for carrier, bn in unit.carriers:  # depthwise convs carrying the same channels, their BNs unscaled
            sliced.set_submodule(carrier, _slice_conv(model.get_submodule(carrier), idx, None))
            sliced.set_submodule(bn, _slice_bn(model.get_submodule(bn), idx, torch.ones_like(scale)))
        if unit.residual:
            sliced.set_submodule(unit.name, ChannelScatter(idx, conv.out_channels))
        for layer in unit.consumers:
            if layer not in unit_convs:  # a unit's conv reads its source's channels above
                sliced.set_submodule(layer, _slice_inputs(model.get_submodule(layer), idx))
    return sliced.eval(), logits


@torch.no_grad()
def verify_macs(model: nn.Module, images: torch.Tensor, plan: MacsPlan | None = None,
                atol: float = 1e-4) -> dict[str, float | int | bool]:
    """Slice each image's sub-network, count it with FlopCounterMode and compare with the mask formula.

    Returns {"images_checked", "max_abs_diff" (MACs), "passed", "output_max_abs_diff" (logits of the
    sliced network vs the masked dense model), "output_passed"}. Raises nothing; callers decide.
    """
    shape = tuple(images.shape[1:])
    plan = plan or build_plan(model, shape)
    max_diff, out_diff = 0, 0.0
    for i in range(images.shape[0]):
        sliced, logits = slice_for_image(model, images[i:i + 1])
        counts = active_counts([r.mask for r in records(model)])
        formula = int(plan.macs(counts)[0])
        counted = count_macs(sliced, shape)
        max_diff = max(max_diff, abs(formula - counted))
        out_diff = max(out_diff, float((sliced(images[i:i + 1]) - logits).abs().max()))
    return {"images_checked": int(images.shape[0]), "max_abs_diff": int(max_diff), "passed": max_diff == 0,
            "output_max_abs_diff": out_diff, "output_passed": out_diff <= atol}
