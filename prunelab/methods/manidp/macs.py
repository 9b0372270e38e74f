"""Per-image MACs of a gated network from its masks, verified against a physically sliced network.

For every convolution the sub-network of image x costs

    MACs(conv) = k_h * k_w * H_out * W_out * |active in channels(x)| * |active out channels(x)|

and a Linear layer costs |active in| * |out|. Ungated convolutions (stem, shortcuts) and the
classifier count with their active channel counts too (in a ResNet the residual stream is never
gated, so they are full), so the per-image total is the MACs of the static network that the image
actually runs. The gates' own MACs (two small Linear layers each) are reported separately.

Verification (`verify_macs`): for an image, `slice_for_image` builds a plain static network with
`build_model(spec)` at the image's active widths, copies the weights of the active channels (the
image's saliencies folded into the BN affine parameters), and `prunelab.flops.count_macs`
(FlopCounterMode) counts it; the two numbers must agree exactly. In a ResNet the masked outputs of
conv_b are scattered back into the full-width residual stream by `ChannelScatter` (no MACs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from prunelab.flops import count_macs
from prunelab.methods.manidp.gates import named_gates, records, set_recording
from prunelab.models import VGG, BasicBlock, ConvUnit, ResNet, build_model, spec_of

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


@dataclass(frozen=True)
class MacsPlan:
    """Every MACs term of a gated network, plus the gates' names, widths and own MACs."""

    terms: tuple[MacsTerm, ...]
    gate_names: tuple[str, ...]
    gate_channels: tuple[int, ...]
    gate_macs: int

    def dense_macs(self) -> int:
        """MACs with every channel active (the backbone without gates)."""
        return sum(t.coef * t.in_width * t.out_width for t in self.terms)

    def macs(self, counts: torch.Tensor) -> torch.Tensor:
        """Per-image MACs [N] int64 from active channel counts [N, L] (L = number of gates)."""
        counts = counts.to(torch.int64)
        total = torch.zeros(counts.shape[0], dtype=torch.int64, device=counts.device)
        for t in self.terms:
            active_in = counts[:, t.in_gate] if t.in_gate != FULL else t.in_width
            active_out = counts[:, t.out_gate] if t.out_gate != FULL else t.out_width
            total += t.coef * active_in * active_out
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


def _conv_term(name: str, conv: nn.Conv2d, hw: tuple[int, int], in_gate: int, out_gate: int) -> MacsTerm:
    k_h, k_w = conv.kernel_size
    coef = k_h * k_w * hw[0] * hw[1] // conv.groups
    return MacsTerm(name, coef, in_gate, conv.in_channels, out_gate, conv.out_channels)


def build_plan(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> MacsPlan:
    """The MACs plan of a gated VGG or ResNet (which gate governs each layer's inputs and outputs)."""
    gates = named_gates(model)
    index = {id(gate): i for i, (_, gate) in enumerate(gates)}
    hw = _output_hw(model, input_shape)
    terms: list[MacsTerm] = []

    def gate_index(gate: nn.Module) -> int:
        return index.get(id(gate), FULL)

    if isinstance(model, VGG):
        source = FULL
        for i, unit in enumerate(model.features):
            if isinstance(unit, ConvUnit):
                out = gate_index(unit.gate)
                name = f"features.{i}.conv"
                terms.append(_conv_term(name, unit.conv, hw[name], source, out))
                source = out
        terms.append(MacsTerm("classifier", 1, source, model.classifier.in_features, FULL,
                              model.classifier.out_features))
    elif isinstance(model, ResNet):
        terms.append(_conv_term("conv_stem", model.conv_stem, hw["conv_stem"], FULL, FULL))
        for i, block in enumerate(model.blocks):
            a, b = gate_index(block.gate_a), gate_index(block.gate_b)
            terms.append(_conv_term(f"blocks.{i}.conv_a", block.conv_a, hw[f"blocks.{i}.conv_a"], FULL, a))
            terms.append(_conv_term(f"blocks.{i}.conv_b", block.conv_b, hw[f"blocks.{i}.conv_b"], a, b))
            if isinstance(block.shortcut, nn.Sequential):
                name = f"blocks.{i}.shortcut.0"
                terms.append(_conv_term(name, block.shortcut[0], hw[name], FULL, FULL))
        terms.append(MacsTerm("classifier", 1, FULL, model.classifier.in_features, FULL,
                              model.classifier.out_features))
    else:
        raise TypeError(f"build_plan does not know {type(model).__name__}")
    gate_macs = sum(gate.macs() for _, gate in gates)
    names = tuple(name for name, _ in gates)
    return MacsPlan(tuple(terms), names, tuple(gate.out_channels for _, gate in gates), gate_macs)


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
    weight = conv.weight.detach()
    if out_idx is not None:
        weight = weight.index_select(0, out_idx)
    if in_idx is not None:
        weight = weight.index_select(1, in_idx)
    sliced = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, stride=conv.stride,
                       padding=conv.padding, bias=False).to(weight.device)
    sliced.weight.data.copy_(weight)
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


def slice_for_image(model: nn.Module, image: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """(static sub-network of `image` [1, C, H, W] built with build_model, masked dense logits [1, K])."""
    logits, kept = _image_gates(model, image)
    gate_pos = {id(g): i for i, (_, g) in enumerate(named_gates(model))}
    spec = copy.deepcopy(spec_of(model))
    if isinstance(model, VGG):
        units = [u for u in model.features if isinstance(u, ConvUnit)]
        spec["layers"] = [len(kept[gate_pos[id(u.gate)]][0]) if isinstance(u, ConvUnit) else "M"
                          for u in model.features]
        sliced = build_model(spec).to(image.device).eval()
        sliced_units = [u for u in sliced.features if isinstance(u, ConvUnit)]
        prev: torch.Tensor | None = None
        for unit, target in zip(units, sliced_units, strict=True):
            idx, scale = kept[gate_pos[id(unit.gate)]]
            target.conv = _slice_conv(unit.conv, idx, prev)
            target.bn = _slice_bn(unit.bn, idx, scale)
            prev = idx
        assert prev is not None
        with torch.no_grad():
            sliced.classifier.weight.copy_(model.classifier.weight[:, prev])
            sliced.classifier.bias.copy_(model.classifier.bias)
    elif isinstance(model, ResNet):
        spec["blocks"] = [[len(kept[gate_pos[id(b.gate_a)]][0]), out, stride]
                          for b, (_, out, stride) in zip(model.blocks, spec["blocks"], strict=True)]
        sliced = build_model(spec).to(image.device).eval()
        sliced.conv_stem.load_state_dict(model.conv_stem.state_dict())
        sliced.bn_stem.load_state_dict(model.bn_stem.state_dict())
        for block, target in zip(model.blocks, sliced.blocks, strict=True):
            _slice_block(block, target, kept[gate_pos[id(block.gate_a)]], kept[gate_pos[id(block.gate_b)]])
        sliced.classifier.load_state_dict(model.classifier.state_dict())
    else:
        raise TypeError(f"slice_for_image does not know {type(model).__name__}")
    return sliced.eval(), logits


def _slice_block(block: BasicBlock, target: BasicBlock, gate_a: tuple[torch.Tensor, torch.Tensor],
                 gate_b: tuple[torch.Tensor, torch.Tensor]) -> None:
    (idx_a, scale_a), (idx_b, scale_b) = gate_a, gate_b
    target.conv_a = _slice_conv(block.conv_a, idx_a, None)
    target.bn_a = _slice_bn(block.bn_a, idx_a, scale_a)
    target.conv_b = _slice_conv(block.conv_b, idx_b, idx_a)
    target.bn_b = _slice_bn(block.bn_b, idx_b, scale_b)
    target.gate_b = ChannelScatter(idx_b, block.conv_b.out_channels)
    target.shortcut.load_state_dict(block.shortcut.state_dict())


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
