"""Fold eval-mode BatchNorm into the convolution before it: one op instead of two, same function.

For a convolution z = W * x (no bias) followed by eval-mode BN with scale g, shift b, running mean m and
running variance v,

    BN(z) = g (z - m) / sqrt(v + eps) + b = (W s) * x + (b - m s),    s = g / sqrt(v + eps),

so the pair becomes one convolution with weight W s (per output channel) and bias b - m s. `fold_bn`
returns a copy of a CNN (PruneLab's static, compact or gated VGG and ResNet; a static torchvision model) in which
every conv/BN pair is one biased convolution and the BN slot holds `nn.Identity`; gates, pooling and the classifier
are untouched, so `spec_of` still reads the widths back. The result is for inference only (eval mode).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunelab.models.channel_graph import conv_bn_pairs
from prunelab.models.torchvision_models import GATE_CONTAINER


def folded_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [C_out, C_in, k, k], bias [C_out]) of the one convolution equal to `bn(conv(x))` in eval mode."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight.detach() * scale[:, None, None, None]
    bias = bn.bias.detach() - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach() * scale
    return weight.contiguous(), bias.contiguous()


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new biased `nn.Conv2d` computing `bn(conv(x))` of eval mode."""
    weight, bias = folded_weights(conv, bn)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                      padding_mode=conv.padding_mode).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
    return fused


def fold_bn(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode) with every BatchNorm folded into its convolution (the pairs come from the
    model's channel structure, `prunelab.models.channel_graph.conv_bn_pairs`: any PruneLab or torchvision CNN)."""
    if GATE_CONTAINER in model._modules:
        raise TypeError("fold_bn: this model's gates are hooked onto its BatchNorm layers; fold its backbone only")
    folded = copy.deepcopy(model).eval()
    for conv_name, bn_name in conv_bn_pairs(folded):
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        folded.set_submodule(conv_name, folded_conv(conv, bn))
        folded.set_submodule(bn_name, nn.Identity())
    return folded
