"""A sparse executor for gated networks: one image runs through only its active channels.

The masked dense model computes every channel and multiplies the pruned ones by zero, so dynamic
pruning saves nothing (the reference code's "no acceleration" gap). Here, layer by layer, the gate
runs first on the pooled (compact) input, `idx = {c : pi_c >= xi, pi_c > 0}` (at least the argmax,
as in `prunelab.methods.manidp.gates.threshold_mask`), and the convolution runs with gathered weights
`W[idx_out][:, idx_in]` on the compact input, producing only the kept channels:

    out = pi[idx] * ReLU(conv(x_in, W_bn[idx_out][:, idx_in], b_bn[idx_out]))

where W_bn, b_bn are the convolution with its eval-mode BatchNorm folded in. Since pi >= 0,
ReLU(pi * a) = pi * ReLU(a), so the saliency scales whichever is smaller: the conv output
(|out| * H * W products) or the gathered weights and bias (|out| * |in| * k * k). In a ResNet
block conv_b's kept channels are added into the full-width residual stream with `index_add_`. The
gate's first Linear only needs the weights of the active input channels (inactive ones pool to
zero); it is stored transposed so that gathering them copies whole rows. Outputs equal the masked dense model's to float
tolerance. Plain tensors and functional calls only: no module dispatch, little Python overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.methods.manidp.gates import ChannelGate
from prunelab.models import VGG, ConvUnit, ResNet


@dataclass
class _Gate:
    w1_rows: torch.Tensor  # first Linear's weight transposed, [C_in, hidden]: gathering inputs gathers rows
    b1: torch.Tensor
    w2: torch.Tensor  # [C_out, hidden]
    b2: torch.Tensor
    threshold: float
    positive_only: bool  # xi <= 0: keep pi > 0 (a zero saliency zeroes the channel anyway)


@dataclass
class _Conv:
    weight: torch.Tensor  # BN folded in, [C_out, C_in, k, k]
    bias: torch.Tensor  # [C_out]
    stride: int
    padding: int


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _Conv:
    """conv then eval-mode BN as one conv: W * g / sqrt(v + eps), beta - mean * g / sqrt(v + eps)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    weight = (conv.weight.detach() * scale[:, None, None, None]).float().contiguous()
    bias = (bn.bias.detach() - bn.running_mean * scale).float().contiguous()
    return _Conv(weight, bias, int(conv.stride[0]), int(conv.padding[0]))


def _gate(gate: nn.Module) -> _Gate:
    if not isinstance(gate, ChannelGate):
        raise TypeError("the sparse executor needs a gated model (prunelab.methods.manidp.gates.install_gates)")
    return _Gate(gate.fc1.weight.detach().float().t().contiguous(), gate.fc1.bias.detach().float().contiguous(),
                 gate.fc2.weight.detach().float().contiguous(), gate.fc2.bias.detach().float().contiguous(),
                 float(gate.threshold), float(gate.threshold) <= 0.0)


def _kept(gate: _Gate, pooled: torch.Tensor,
          in_idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept channel indices, their saliencies) for one image; `pooled` [1, |in_idx|] is compact."""
    w1_rows = gate.w1_rows if in_idx is None else gate.w1_rows.index_select(0, in_idx)
    hidden = torch.relu_(torch.addmm(gate.b1, pooled, w1_rows))
    z = F.linear(hidden, gate.w2, gate.b2)[0]  # (C_out,), pi = ReLU(z)
    keep = z > 0 if gate.positive_only else z >= gate.threshold  # xi > 0: z >= xi <=> ReLU(z) >= xi
    idx = torch.nonzero(keep).squeeze(1)
    if idx.numel() == 0:  # keep-one guard of threshold_mask
        pi = torch.relu(z)
        idx = pi.argmax().view(1)
        return idx, pi.index_select(0, idx)
    return idx, z.index_select(0, idx)  # positive on the kept channels, so equal to pi there


def _sparse_conv(conv: _Conv, x: torch.Tensor, out_idx: torch.Tensor, in_idx: torch.Tensor | None,
                 pi: torch.Tensor, relu: bool) -> torch.Tensor:
    """pi * [ReLU](conv of the compact input `x` with the kept channels' weights): (1, |out|, H', W').

    The saliency multiplies the output when that is fewer products than multiplying the gathered
    weights (late, low-resolution layers), else the weights and bias (early, high-resolution layers).
    """
    weight = conv.weight.index_select(0, out_idx)
    if in_idx is not None:
        weight = weight.index_select(1, in_idx)
    bias = conv.bias.index_select(0, out_idx)
    _, fan_in, k_h, k_w = weight.shape
    size = (x.shape[-1] + 2 * conv.padding - k_w) // conv.stride + 1
    if size * size <= fan_in * k_h * k_w:
        out = F.conv2d(x, weight, bias, conv.stride, conv.padding)
        return (torch.relu_(out) if relu else out).mul_(pi.view(-1, 1, 1))
    out = F.conv2d(x, weight * pi.view(-1, 1, 1, 1), bias * pi, conv.stride, conv.padding)
    return torch.relu_(out) if relu else out


class SparseExecutor:
    """`SparseExecutor(gated_model)(image [1, C, H, W]) -> logits [1, K]`, on CPU, in float32."""

    def __init__(self, model: nn.Module) -> None:
        model = model.eval()
        if isinstance(model, VGG):
            self.family = "vgg"
            self.vgg_units: list[tuple[_Gate, _Conv] | None] = [
                (_gate(u.gate), _fold_bn(u.conv, u.bn)) if isinstance(u, ConvUnit) else None
                for u in model.features]
        elif isinstance(model, ResNet):
            self.family = "resnet"
            self.stem = _fold_bn(model.conv_stem, model.bn_stem)
            self.blocks = []
            for block in model.blocks:
                shortcut = (_fold_bn(block.shortcut[0], block.shortcut[1])
                            if isinstance(block.shortcut, nn.Sequential) else None)
                self.blocks.append((_gate(block.gate_a), _fold_bn(block.conv_a, block.bn_a),
                                    _gate(block.gate_b), _fold_bn(block.conv_b, block.bn_b), shortcut))
        else:
            raise TypeError(f"SparseExecutor does not know {type(model).__name__}")
        self.classifier_w = model.classifier.weight.detach().float().contiguous()
        self.classifier_b = model.classifier.bias.detach().float().contiguous()

    def __call__(self, image: torch.Tensor, trace: list[tuple[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits [1, K]; with `trace`, appends (unit name as in the model, its compact output) per unit."""
        if image.shape[0] != 1:
            raise ValueError(f"the sparse executor runs one image at a time, got a batch of {image.shape[0]}")
        with torch.inference_mode():
            return self._vgg(image, trace) if self.family == "vgg" else self._resnet(image, trace)

    def _vgg(self, x: torch.Tensor, trace: list[tuple[str, torch.Tensor]] | None) -> torch.Tensor:
        in_idx: torch.Tensor | None = None  # None: all input channels (the image)
        for position, unit in enumerate(self.vgg_units):
            if unit is None:
                x = F.max_pool2d(x, 2)
                continue
            gate, conv = unit
            idx, pi = _kept(gate, x.mean(dim=(2, 3)), in_idx)
            x = _sparse_conv(conv, x, idx, in_idx, pi, relu=True)  # (1, |idx|, H, W)
            in_idx = idx
            if trace is not None:
                trace.append((f"features.{position}", x.clone()))
        assert in_idx is not None
        pooled = x.mean(dim=(2, 3))  # (1, |idx_last|)
        return F.linear(pooled, self.classifier_w.index_select(1, in_idx), self.classifier_b)

    def _resnet(self, x: torch.Tensor, trace: list[tuple[str, torch.Tensor]] | None) -> torch.Tensor:
        stem = self.stem
        x = torch.relu_(F.conv2d(x, stem.weight, stem.bias, stem.stride, stem.padding))  # (1, C, H, W), full
        for position, (gate_a, conv_a, gate_b, conv_b, shortcut) in enumerate(self.blocks):
            idx_a, pi_a = _kept(gate_a, x.mean(dim=(2, 3)), None)
            mid = _sparse_conv(conv_a, x, idx_a, None, pi_a, relu=True)  # (1, |a|, H', W')
            idx_b, pi_b = _kept(gate_b, mid.mean(dim=(2, 3)), idx_a)
            out = _sparse_conv(conv_b, mid, idx_b, idx_a, pi_b, relu=False)  # (1, |b|, H', W')
            if shortcut is not None:
                x = F.conv2d(x, shortcut.weight, shortcut.bias, shortcut.stride, shortcut.padding)
            x = torch.relu_(x.index_add_(1, idx_b, out))  # residual stream stays full width
            if trace is not None:
                trace.append((f"blocks.{position}", x.clone()))
        return F.linear(x.mean(dim=(2, 3)), self.classifier_w, self.classifier_b)


def max_abs_diff(model: nn.Module, executor: SparseExecutor, images: torch.Tensor) -> float:
    """Largest |executor(x) - masked dense model(x)| over the logits of `images` [N, C, H, W]."""
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for i in range(images.shape[0]):
            image = images[i:i + 1]
            worst = max(worst, float((executor(image) - model(image)).abs().max()))
    return worst
