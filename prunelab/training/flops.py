"""Static compute cost of a model: MACs (multiply-accumulates) and parameters.

MACs come from `torch.utils.flop_counter.FlopCounterMode`, which counts 2 FLOPs per multiply-add of
convolutions and matrix products; PruneLab reports MACs = FLOPs / 2 everywhere. BatchNorm, ReLU and
pooling are not counted (they are negligible and the counter ignores them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> int:
    """MACs of one forward pass for ONE image of `input_shape` (C, H, W)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
