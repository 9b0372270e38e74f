"""A sparse executor for gated networks: one image runs through only its active channels.

The masked dense model computes every channel and multiplies the pruned ones by zero, so dynamic
pruning saves nothing (the reference code's "no acceleration" gap). Here, layer by layer, the gate
runs first on the pooled (compact) input, `idx = {c : pi_c >= xi, pi_c > 0}` (at least the argmax,
as in `prunelab.methods.manidp.gates.threshold_mask`), and the convolution runs with gathered weights
`W[idx_out][:, idx_in]` on the compact input, producing only the kept channels:

    out = pi[idx] * ReLU(conv(x_in, W_bn[idx_out][:, idx_in], b_bn[idx_out]))

where W_bn, b_bn are the convolution with its eval-mode BatchNorm folded in. Since pi >= 0,
ReLU(pi * a) = pi * ReLU(a), so the saliency scales whichever is smaller: the conv output
(|out| * H * W products) or the gathered weights and bias (|out| * |in| * k * k). A residual unit
(a ResNet block's conv_b) adds its kept channels into the full-width stream with `index_add_`. The
gate's first Linear only needs the weights of the active input channels (inactive ones pool to
zero); it is stored transposed so that gathering them copies whole rows. Outputs equal the masked
dense model's to float tolerance. The program is the model's own walk (`prunelab.models.walk`),
compiled once into plain tensors: functional calls only, no module dispatch, little Python overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.methods.manidp.gates import ChannelGate
from prunelab.models import ChannelUnit, Head, Pool, ResidualBlock, StaticConv, walk

EXECUTOR_SCOPE = ("the sparse executor is written for PruneLab's VGG and CIFAR-ResNet (their steps); this network "
                  "runs masked only")


def executor_applies(model: nn.Module) -> bool:
    """True for a model that describes its steps (PruneLab's own), which the executor compiles."""
    return getattr(model, "steps", None) is not None


@dataclass
class _Gate:
    w1_rows: torch.Tensor  # first Linear's weight transposed, [C_in, hidden]: gathering inputs gathers rows
    b1: torch.Tensor
    w2: torch.Tensor  # [C_out, hidden]
    b2: torch.Tensor
    threshold: float
    positive_only: bool  # xi <= 0: keep pi > 0 (a zero saliency zeroes the channel anyway)
    clamp_max: float  # pi = min(ReLU(z), clamp_max) (inf: no clamp)


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
    w1 = gate.fc1.weight.detach().float()
    b1 = gate.fc1.bias.detach().float() if gate.fc1.bias is not None else w1.new_zeros(w1.shape[0])
    return _Gate(w1.t().contiguous(), b1.contiguous(),
                 gate.fc2.weight.detach().float().contiguous(), gate.fc2.bias.detach().float().contiguous(),
                 float(gate.threshold), float(gate.threshold) <= 0.0, float(gate.clamp_max))


def _kept(gate: _Gate, pooled: torch.Tensor,
          in_idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept channel indices, their saliencies) for one image; `pooled` [1, |in_idx|] is compact."""
    w1_rows = gate.w1_rows if in_idx is None else gate.w1_rows.index_select(0, in_idx)
    hidden = torch.relu_(torch.addmm(gate.b1, pooled, w1_rows))
    z = F.linear(hidden, gate.w2, gate.b2)[0].clamp_(max=gate.clamp_max)  # (C_out,), pi = ReLU(z)
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


@dataclass
class _Unit:
    """One gated unit, compiled: its gate, its conv with the BN folded in."""

    block: str  # traced under this name
    gate: _Gate
    conv: _Conv
    relu: bool
    residual: bool


@dataclass
class _Block:
    """A residual block: its units in a chain from the block input, the last one added into the stream."""

    name: str
    units: list[_Unit]
    shortcut: _Conv | None  # None: identity


@dataclass
class _Static:
    conv: _Conv
    relu: bool


def _run_static(conv: _Static, x: torch.Tensor, in_idx: torch.Tensor | None) -> torch.Tensor:
    """An ungated conv (BN folded in) over the stream; `in_idx`: the channels a compact stream holds."""
    weight = conv.conv.weight if in_idx is None else conv.conv.weight.index_select(1, in_idx)
    out = F.conv2d(x, weight, conv.conv.bias, conv.conv.stride, conv.conv.padding)
    return torch.relu_(out) if conv.relu else out


def _run_unit(unit: _Unit, x: torch.Tensor,
              in_idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the unit's kept output channels (1, |idx|, H', W'), idx) for the compact input `x`."""
    idx, pi = _kept(unit.gate, x.mean(dim=(2, 3)), in_idx)
    return _sparse_conv(unit.conv, x, idx, in_idx, pi, relu=unit.relu), idx


class SparseExecutor:
    """`SparseExecutor(gated_model)(image [1, C, H, W]) -> logits [1, K]`, on CPU, in float32."""

    def __init__(self, model: nn.Module) -> None:
        model = model.eval()
        self.units: dict[str, _Unit] = {}  # by unit name, e.g. "blocks.4.gate_b" (the same objects as below)
        self.program: list[Any] = []
        for step in walk(model):
            if isinstance(step, ChannelUnit):
                self.program.append(self._compile_unit(model, step))
            elif isinstance(step, ResidualBlock):
                shortcut = None if step.shortcut is None else self._compile_static(model, step.shortcut).conv
                self.program.append(_Block(step.name, [self._compile_unit(model, u) for u in step.units], shortcut))
            elif isinstance(step, StaticConv):
                self.program.append(self._compile_static(model, step))
            elif isinstance(step, Head):
                classifier = model.get_submodule(step.linear)
                self.classifier_w = classifier.weight.detach().float().contiguous()
                self.classifier_b = classifier.bias.detach().float().contiguous()
                self.program.append(step)
            else:
                self.program.append(step)

    def _compile_unit(self, model: nn.Module, unit: ChannelUnit) -> _Unit:
        compiled = _Unit(unit.block, _gate(model.get_submodule(unit.name)),
                         _fold_bn(model.get_submodule(unit.conv), model.get_submodule(unit.bn)), unit.relu,
                         unit.residual)
        self.units[unit.name] = compiled
        return compiled

    @staticmethod
    def _compile_static(model: nn.Module, step: StaticConv) -> _Static:
        return _Static(_fold_bn(model.get_submodule(step.conv), model.get_submodule(step.bn)), step.relu)

    def __call__(self, image: torch.Tensor, trace: list[tuple[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits [1, K]; with `trace`, appends (unit name as in the model, its compact output) per unit."""
        if image.shape[0] != 1:
            raise ValueError(f"the sparse executor runs one image at a time, got a batch of {image.shape[0]}")
        with torch.inference_mode():
            return self._run(image, trace)

    def _run(self, x: torch.Tensor, trace: list[tuple[str, torch.Tensor]] | None) -> torch.Tensor:
        in_idx: torch.Tensor | None = None  # the channels the stream holds; None: all of them
        for op in self.program:
            if isinstance(op, Pool):
                x = F.max_pool2d(x, op.kernel)
                continue
            if isinstance(op, Head):
                weight = self.classifier_w if in_idx is None else self.classifier_w.index_select(1, in_idx)
                return F.linear(x.mean(dim=(2, 3)), weight, self.classifier_b)  # (1, K)
            if isinstance(op, _Static):
                x, in_idx = _run_static(op, x, in_idx), None
                continue
            if isinstance(op, _Unit):
                x, in_idx = _run_unit(op, x, in_idx)  # (1, |idx|, H, W)
                name = op.block
            else:
                x, in_idx, name = self._block(op, x), None, op.name
            if trace is not None:
                trace.append((name, x.clone()))
        raise ValueError("the model's walk has no head")

    @staticmethod
    def _block(block: _Block, x: torch.Tensor) -> torch.Tensor:
        """ReLU(shortcut(x) + the last unit's kept channels); the stream stays full width."""
        h, idx = x, None
        for unit in block.units[:-1]:
            h, idx = _run_unit(unit, h, idx)  # (1, |a|, H', W')
        out, kept = _run_unit(block.units[-1], h, idx)  # (1, |b|, H', W')
        if block.shortcut is not None:
            x = F.conv2d(x, block.shortcut.weight, block.shortcut.bias, block.shortcut.stride, block.shortcut.padding)
        return torch.relu_(x.index_add_(1, kept, out))


def max_abs_diff(model: nn.Module, executor: SparseExecutor, images: torch.Tensor) -> float:
    """Largest |executor(x) - masked dense model(x)| over the logits of `images` [N, C, H, W]."""
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for i in range(images.shape[0]):
            image = images[i:i + 1]
            worst = max(worst, float((executor(image) - model(image)).abs().max()))
    return worst
