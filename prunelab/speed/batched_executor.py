"""The sparse executor's batched mode: a batch of images runs each layer on the union of its active channels.

`prunelab.methods.manidp.executor.SparseExecutor` runs one image through only its own channels. For a batch of B
images that would be B small convolutions per layer, each far less efficient than one batched convolution.
Here every layer runs ONCE for the whole batch: the gate computes every image's saliencies pi [B, C_out]
and mask (`prunelab.methods.manidp.gates.threshold_mask`, the masked model's rule), the layer takes the union U of the
channels any image of the batch keeps, and the convolution runs with the gathered weights W[U_out][:, U_in]
(BN folded in) on the batch's compact input [B, |U_in|, H, W]. Each image's output is then multiplied by
its masked saliency pi_hat = pi * mask, which is zero on the channels that image does not keep:

    out[i] = pi_hat[i, U_out] * ReLU(conv(x[i], W_bn[U_out][:, U_in], b_bn[U_out]))

so the result equals the masked dense model's (to float tolerance). What this costs is the union's MACs,
not each image's: `last_widths` records the width every gated layer ran at.

Choices measured on the 2-core AVX2 CPU (docs/benchmarks.md, "Speed"):
- Channels-last activations by default: oneDNN then runs batched convolutions without reordering the
  activations to its blocked layout and back at every layer (ResNet-56 at batch 64: the dense network itself
  runs 1.3x faster in channels-last).
- The union is rounded up to whole blocks of `SIMD_CHANNELS` floats (8 on AVX2) with channels no image keeps
  (computed, then multiplied by 0): a partial block costs a full one, and a union that rounds up to the whole
  layer runs the full weights without a gather.
- In a ResNet block conv_b runs at the full width of the residual stream (its input is still only U_a) and is
  added with one fused `addcmul_` (x += out * pi_hat): scattering a partial output into a channels-last
  residual stream with `index_add_` cost more than the output channels it saved.
Batch 1 goes to `SparseExecutor`, whose per-image path is the executor proper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunelab.methods.manidp.executor import SparseExecutor, _Conv, _Gate, _gate
from prunelab.methods.manidp.gates import threshold_mask
from prunelab.models import VGG, BasicBlock, ConvUnit, ResNet
from prunelab.speed.alignment import SIMD_CHANNELS
from prunelab.speed.bn_folding import folded_weights


def _conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _Conv:
    weight, bias = folded_weights(conv, bn)
    return _Conv(weight.float().contiguous(), bias.float().contiguous(), int(conv.stride[0]), int(conv.padding[0]))


def padded_union(keep: torch.Tensor, block: int = SIMD_CHANNELS) -> torch.Tensor | None:
    """Channel indices that any image of `keep` [B, C] keeps, rounded up to whole `block`s with channels
    nobody keeps (lowest index first); None when that is every channel (run the full layer)."""
    channels = keep.shape[1]
    used = keep.any(dim=0)
    count = int(used.sum())
    target = min(channels, -(-count // block) * block)
    if target >= channels:
        return None
    if target > count:
        spare = torch.nonzero(~used).squeeze(1)[: target - count]
        used[spare] = True
    return torch.nonzero(used).squeeze(1)


class BatchedSparseExecutor:
    """`BatchedSparseExecutor(gated_model)(images [B, C, H, W]) -> logits [B, K]`, on CPU, in float32."""

    def __init__(self, model: nn.Module, simd_channels: int = SIMD_CHANNELS, channels_last: bool = True) -> None:
        model = model.eval()
        self.single = SparseExecutor(model)
        self.block = max(1, int(simd_channels))
        self.channels_last = channels_last
        self.last_widths: list[int] = []  # per gate, in forward order: channels the last batch computed
        if isinstance(model, VGG):
            self.family = "vgg"
            self.vgg_units: list[tuple[_Gate, _Conv] | None] = [
                (_gate(u.gate), _conv(u.conv, u.bn)) if isinstance(u, ConvUnit) else None for u in model.features]
        elif isinstance(model, ResNet):
            self.family = "resnet"
            self.stem = _conv(model.conv_stem, model.bn_stem)
            self.blocks: list[tuple[_Gate, _Conv, _Gate, _Conv, _Conv | None]] = []
            for block in model.blocks:
                assert isinstance(block, BasicBlock)
                shortcut = (_conv(block.shortcut[0], block.shortcut[1])
                            if isinstance(block.shortcut, nn.Sequential) else None)
                self.blocks.append((_gate(block.gate_a), _conv(block.conv_a, block.bn_a),
                                    _gate(block.gate_b), _conv(block.conv_b, block.bn_b), shortcut))
        else:
            raise TypeError(f"BatchedSparseExecutor does not know {type(model).__name__}")
        self.classifier_w = model.classifier.weight.detach().float().contiguous()
        self.classifier_b = model.classifier.bias.detach().float().contiguous()
        gates = ([u[0] for u in self.vgg_units if u is not None] if self.family == "vgg"
                 else [g for block in self.blocks for g in (block[0], block[2])])
        self.w2_t = {id(g): g.w2.t().contiguous() for g in gates}  # [hidden, C_out] for addmm

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B, K] of the masked dense model for `images` [B, C, H, W]."""
        if images.shape[0] == 1:
            return self.single(images)
        self.last_widths = []
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self._vgg(images) if self.family == "vgg" else self._resnet(images)

    # one gated layer ------------------------------------------------------------------------------
    def _gate(self, gate: _Gate, x: torch.Tensor, in_idx: torch.Tensor | None,
              union: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(padded union of kept output channels, or None = all; pi_hat on them [B, |U|]) for the batch `x`
        (compact on `in_idx`). With `union=False` every output channel is computed."""
        w1_rows = gate.w1_rows if in_idx is None else gate.w1_rows.index_select(0, in_idx)
        hidden = torch.relu_(torch.addmm(gate.b1, x.mean(dim=(2, 3)), w1_rows))
        pi = torch.relu_(torch.addmm(gate.b2, hidden, self.w2_t[id(gate)])).clamp_(max=gate.clamp_max)  # >= 0
        # threshold_mask's rule: pi >= xi and pi > 0 (for xi > 0 the first implies the second), plus each
        # image's most salient channel, which only matters for an image that would keep none
        keep = pi > 0 if gate.positive_only else pi >= gate.threshold
        if not bool(keep.any(dim=1).all()):
            keep = threshold_mask(pi, gate.threshold)
        pi_hat = pi.masked_fill_(~keep, 0.0)
        idx = padded_union(keep, self.block) if union else None
        self.last_widths.append(pi.shape[1] if idx is None else int(idx.numel()))
        return idx, (pi_hat if idx is None else pi_hat.index_select(1, idx))

    @staticmethod
    def _weights(conv: _Conv, out_idx: torch.Tensor | None,
                 in_idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        weight, bias = conv.weight, conv.bias
        if out_idx is not None:
            weight, bias = weight.index_select(0, out_idx), bias.index_select(0, out_idx)
        if in_idx is not None:
            weight = weight.index_select(1, in_idx)
        return weight, bias

    # networks -------------------------------------------------------------------------------------
    def _vgg(self, x: torch.Tensor) -> torch.Tensor:
        in_idx: torch.Tensor | None = None  # None: every input channel
        for unit in self.vgg_units:
            if unit is None:
                x = F.max_pool2d(x, 2)
                continue
            gate, conv = unit
            idx, pi_hat = self._gate(gate, x, in_idx)
            weight, bias = self._weights(conv, idx, in_idx)
            x = torch.relu_(F.conv2d(x, weight, bias, conv.stride, conv.padding)).mul_(pi_hat[:, :, None, None])
            in_idx = idx
        weight = self.classifier_w if in_idx is None else self.classifier_w.index_select(1, in_idx)
        return F.linear(x.mean(dim=(2, 3)), weight, self.classifier_b)

    def _resnet(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem
        x = torch.relu_(F.conv2d(x, stem.weight, stem.bias, stem.stride, stem.padding))
        for gate_a, conv_a, gate_b, conv_b, shortcut in self.blocks:
            idx_a, pi_a = self._gate(gate_a, x, None)
            weight, bias = self._weights(conv_a, idx_a, None)
            mid = torch.relu_(F.conv2d(x, weight, bias, conv_a.stride, conv_a.padding)).mul_(pi_a[:, :, None, None])
            _, pi_b = self._gate(gate_b, mid, idx_a, union=False)
            weight, _ = self._weights(conv_b, None, idx_a)
            out = F.conv2d(mid, weight, conv_b.bias, conv_b.stride, conv_b.padding)  # full residual width
            if shortcut is not None:
                x = F.conv2d(x, shortcut.weight, shortcut.bias, shortcut.stride, shortcut.padding)
            x = torch.relu_(x.addcmul_(out, pi_b[:, :, None, None]))
        return F.linear(x.mean(dim=(2, 3)), self.classifier_w, self.classifier_b)
