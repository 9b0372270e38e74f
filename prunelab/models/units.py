"""Building blocks shared by the model families.

Every prunable convolution sits in a unit whose forward ends in a `gate(inputs, outputs)` call.
Static models use `NoGate` (returns `outputs` unchanged); ManiDP swaps in per-image gates that
see the unit's input features and mask its output channels.
"""

from __future__ import annotations

import torch
from torch import nn


class NoGate(nn.Module):
    """Placeholder gate: `gate(inputs, outputs) = outputs`."""

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        return outputs


def scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier, at least 1."""
    return max(1, round(channels * width))


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions, unit BN scales, zero biases (He et al., 2015)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
