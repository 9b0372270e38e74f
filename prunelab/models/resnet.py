"""CIFAR ResNet with basic blocks (He et al., 2016): depth 6n+2 (20, 32, 56, 110).

Downsampling blocks use a 1x1 conv + BN projection shortcut (option B), which keeps the residual
coupling visible to dependency-aware pruning. Widths are explicit per block so a pruned network can
be rebuilt from its `ModelSpec` alone.
"""

from __future__ import annotations

import torch
from torch import nn

from prunelab.models.catalog import RESNET_DEPTHS
from prunelab.models.units import (
    ChannelUnit,
    Head,
    NoGate,
    ResidualBlock,
    StaticConv,
    Step,
    init_weights,
    scaled,
)

STAGE_WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    """out = relu(gate_b(bn_b(conv_b(gate_a(relu(bn_a(conv_a(x))))))) + shortcut(x))."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(in_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(mid_channels)
        self.gate_a: nn.Module = NoGate()
        self.conv_b = nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(out_channels)
        self.gate_b: nn.Module = NoGate()
        self.stride = stride
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = torch.relu(self.bn_a(self.conv_a(x)))  # (B, C_mid, H', W')
        mid = self.gate_a(x, mid)
        out = self.bn_b(self.conv_b(mid))  # (B, C_out, H', W')
        out = self.gate_b(mid, out)
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """`blocks` is a list of (mid, out, stride) per basic block, after a conv3x3 stem of `stem` channels."""

    def __init__(self, stem: int, blocks: list[tuple[int, int, int]], num_classes: int, in_channels: int = 3):
        super().__init__()
        self.conv_stem = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        self.bn_stem = nn.BatchNorm2d(stem)
        layers = []
        channels = stem
        for mid, out, stride in blocks:
            layers.append(BasicBlock(channels, mid, out, stride))
            channels = out
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_stem(self.conv_stem(x)))  # (B, stem, 32, 32)
        x = self.blocks(x)  # (B, C_last, 8, 8)
        x = self.pool(x).flatten(1)  # (B, C_last)
        return self.classifier(x)

    def steps(self) -> list[Step]:
        """The forward for `prunelab.models.units.walk`: the stem, then per block the gated conv_a and conv_b
        (conv_b added into the full-width residual stream, beside the shortcut), then the head."""
        steps: list[Step] = [StaticConv("conv_stem", "bn_stem")]
        for i, block in enumerate(self.blocks):
            name = f"blocks.{i}"
            shortcut = (StaticConv(f"{name}.shortcut.0", f"{name}.shortcut.1", relu=False)
                        if isinstance(block.shortcut, nn.Sequential) else None)
            units = (ChannelUnit(f"{name}.gate_a", f"{name}.conv_a", f"{name}.bn_a", name),
                     ChannelUnit(f"{name}.gate_b", f"{name}.conv_b", f"{name}.bn_b", name, relu=False, residual=True))
            steps.append(ResidualBlock(name, units, shortcut))
        return [*steps, Head("classifier")]

    def block_widths(self) -> tuple[int, list[tuple[int, int, int]]]:
        """(stem, blocks) that rebuild this (possibly pruned) network."""
        blocks = [(b.conv_a.out_channels, b.conv_b.out_channels, b.stride) for b in self.blocks]
        return self.conv_stem.out_channels, blocks


def resnet_blocks(name: str, width: float) -> tuple[int, list[tuple[int, int, int]]]:
    per_stage = (RESNET_DEPTHS[name] - 2) // 6
    blocks = []
    for stage, base in enumerate(STAGE_WIDTHS):
        channels = scaled(base, width)
        for index in range(per_stage):
            stride = 2 if stage > 0 and index == 0 else 1
            blocks.append((channels, channels, stride))
    return scaled(STAGE_WIDTHS[0], width), blocks
