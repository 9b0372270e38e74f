"""CIFAR-style VGG (Simonyan & Zisserman, 2015) with BatchNorm after every convolution.

The configurations are the ones Network Slimming uses on CIFAR; widths are explicit per layer so a
pruned network can be rebuilt from its `ModelSpec` alone.
"""

from __future__ import annotations

import torch
from torch import nn

from prunelab.models.catalog import VGG_LAYERS
from prunelab.models.units import ChannelUnit, Head, NoGate, Pool, Step, init_weights, scaled


class ConvUnit(nn.Module):
    """conv3x3 -> BN -> ReLU -> gate."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.gate: nn.Module = NoGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.conv(x)))  # (B, C_out, H, W)
        return self.gate(x, out)


class VGG(nn.Module):
    """`layers` lists conv widths and "M" (2x2 max-pool); global average pool, then one Linear."""

    def __init__(self, layers: list[int | str], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        units: list[nn.Module] = []
        channels = in_channels
        for item in layers:
            if item == "M":
                units.append(nn.MaxPool2d(2))
            else:
                units.append(ConvUnit(channels, int(item)))
                channels = int(item)
        self.features = nn.Sequential(*units)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C_last, 2, 2) for 32x32 inputs
        x = self.pool(x).flatten(1)  # (B, C_last)
        return self.classifier(x)  # (B, num_classes)

    def steps(self) -> list[Step]:
        """The forward for `prunelab.models.units.walk`: one unit per conv, max-pools between them, the head."""
        steps: list[Step] = []
        for i, module in enumerate(self.features):
            name = f"features.{i}"
            if isinstance(module, ConvUnit):
                steps.append(ChannelUnit(f"{name}.gate", f"{name}.conv", f"{name}.bn", name))
            else:
                steps.append(Pool(int(module.kernel_size)))
        return [*steps, Head("classifier")]

    def layer_widths(self) -> list[int | str]:
        """The `layers` list that rebuilds this (possibly pruned) network."""
        return [unit.conv.out_channels if isinstance(unit, ConvUnit) else "M" for unit in self.features]


def vgg_layers(name: str, width: float) -> list[int | str]:
    return [item if item == "M" else scaled(int(item), width) for item in VGG_LAYERS[name]]
