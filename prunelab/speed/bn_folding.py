"""Fold eval-mode BatchNorm into the convolution before it: one op instead of two, same function.

For a convolution z = W * x (no bias) followed by eval-mode BN with scale g, shift b, running mean m and
running variance v,

    BN(z) = g (z - m) / sqrt(v + eps) + b = (W s) * x + (b - m s),    s = g / sqrt(v + eps),

so the pair becomes one convolution with weight W s (per output channel) and bias b - m s. `fold_bn`
returns a copy of a PruneLab VGG or ResNet (static, compact or gated) in which every conv/BN pair is one
biased convolution and the BN slot holds `nn.Identity`; gates, pooling and the classifier are untouched,
so `spec_of` still reads the widths back. The result is for inference only (eval mode).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from prunelab.models import VGG, BasicBlock, ConvUnit, ResNet


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


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """(owner module, conv attribute, BN attribute) of every conv followed by its BN, in forward order."""
    pairs: list[tuple[nn.Module, str, str]] = []
    if isinstance(model, VGG):
        pairs.extend((unit, "conv", "bn") for unit in model.features if isinstance(unit, ConvUnit))
    elif isinstance(model, ResNet):
        pairs.append((model, "conv_stem", "bn_stem"))
        for block in model.blocks:
            assert isinstance(block, BasicBlock)
            pairs.extend([(block, "conv_a", "bn_a"), (block, "conv_b", "bn_b")])
            if isinstance(block.shortcut, nn.Sequential):
                pairs.append((block.shortcut, "0", "1"))
    else:
        raise TypeError(f"fold_bn does not know {type(model).__name__}")
    return pairs


def fold_bn(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode) with every BatchNorm folded into its convolution."""
    folded = copy.deepcopy(model).eval()
    for owner, conv_name, bn_name in conv_bn_pairs(folded):
        bn = getattr(owner, bn_name)
        if isinstance(bn, nn.Identity):
            continue  # already folded
        setattr(owner, conv_name, folded_conv(getattr(owner, conv_name), bn))
        setattr(owner, bn_name, nn.Identity())
    return folded
