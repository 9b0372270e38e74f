"""Building blocks shared by the model families, and the one walk over their units.

Every prunable convolution sits in a unit whose forward ends in a `gate(inputs, outputs)` call.
Static models use `NoGate` (returns `outputs` unchanged); ManiDP swaps in per-image gates that
see the unit's input features and mask its output channels.

Each model describes its forward once, as a list of steps (`model.steps()`: `ChannelUnit`,
`StaticConv`, `Pool`, `ResidualBlock`, `Head`). `walk(model)` resolves which unit's channels each
layer reads, and `step_units(model)` lists the units (`prunelab.models.channel_graph.channel_units` serves them,
and a torchvision model's free channel groups): gates, per-image MACs, the sliced sub-network, the sparse executor
and the unit trace all read these instead of naming an architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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


# ------------------------------------------------------------------------------------------------
# the walk: what a model computes, step by step, and which convolutions carry gated channels


@dataclass(frozen=True)
class ChannelUnit:
    """conv -> BN [-> ReLU] -> gate slot: a convolution whose output channels a gate may mask.

    `walk(model)` fills `index` (position among the model's units), `source` (the unit whose kept
    channels are this conv's inputs; None: the full-width stream) and `consumers` (the layers whose
    input channels are this unit's output channels).
    """

    name: str  # the gate slot, e.g. "features.0.gate", "blocks.3.gate_b" (layer names in the artefacts)
    conv: str  # the convolution whose output channels are gated
    bn: str  # its BatchNorm
    block: str  # the module whose output is compared unit by unit, e.g. "features.0", "blocks.3"
    relu: bool = True  # a ReLU between the BN and the gate (False: conv_b before the residual add)
    residual: bool = False  # its channels are added into the full-width residual stream
    index: int = -1
    source: int | None = None
    consumers: tuple[str, ...] = ()
    # (depthwise conv, its BN) pairs carrying the same channels after `bn` (a MobileNet's expanded channels),
    # masked with the same channels; only for units read from the dependency graph (`channel_graph.free_units`)
    carriers: tuple[tuple[str, str], ...] = ()

    @property
    def slot(self) -> tuple[str, str]:
        """(module name, attribute) of the gate slot."""
        parent, _, attr = self.name.rpartition(".")
        return parent, attr


@dataclass(frozen=True)
class StaticConv:
    """conv -> BN [-> ReLU] on the full-width stream, never gated (a ResNet stem or projection shortcut)."""

    conv: str
    bn: str
    relu: bool = True


@dataclass(frozen=True)
class Pool:
    """k x k max-pooling of the stream."""

    kernel: int


@dataclass(frozen=True)
class ResidualBlock:
    """`stream = ReLU(shortcut(stream) + units(stream))`: the units run in a chain from the block input,
    the last one (`residual=True`) is added into the full-width stream; shortcut None is the identity."""

    name: str
    units: tuple[ChannelUnit, ...]
    shortcut: StaticConv | None = None


@dataclass(frozen=True)
class Head:
    """Global average pooling, then the Linear classifier `linear`."""

    linear: str


Step = ChannelUnit | StaticConv | Pool | ResidualBlock | Head


class _Links:
    """Unit indices, sources and consumers, filled in while the steps are read in forward order."""

    def __init__(self) -> None:
        self.consumers: list[list[str]] = []  # per unit: the layers reading its channels
        self.stream: int | None = None  # the unit whose channels the stream holds (None: full width)

    def unit(self, unit: ChannelUnit, source: int | None) -> ChannelUnit:
        if source is not None:
            self.consumers[source].append(unit.conv)
        self.consumers.append([])
        return replace(unit, index=len(self.consumers) - 1, source=source)

    def read(self, layer: str) -> None:
        """A static layer reads the stream (the channels of the unit that wrote it) and writes it at full width."""
        if self.stream is not None:
            self.consumers[self.stream].append(layer)
        self.stream = None

    def step(self, step: Step) -> Step:
        if isinstance(step, ChannelUnit):
            step = self.unit(step, self.stream)
            self.stream = None if step.residual else step.index
        elif isinstance(step, ResidualBlock):
            if self.stream is not None:
                raise ValueError(f"residual block {step.name} reads a gated stream; it must start at full width")
            if not step.units or [u.residual for u in step.units] != [False] * (len(step.units) - 1) + [True]:
                raise ValueError(f"residual block {step.name}: its last unit, and only that one, must be residual")
            units: list[ChannelUnit] = []
            for unit in step.units:  # a chain from the block input; the last one is added into the stream
                units.append(self.unit(unit, units[-1].index if units else None))
            step = replace(step, units=tuple(units))
        elif isinstance(step, StaticConv):
            self.read(step.conv)
        elif isinstance(step, Head):
            self.read(step.linear)
        return step  # a Pool keeps the stream's channels

    def finish(self, step: Step) -> Step:
        if isinstance(step, ChannelUnit):
            return replace(step, consumers=tuple(self.consumers[step.index]))
        if isinstance(step, ResidualBlock):
            return replace(step, units=tuple(self.finish(unit) for unit in step.units))  # type: ignore[misc]
        return step


def walk(model: nn.Module) -> list[Step]:
    """The model's forward as its steps (`model.steps()`), every unit with its index, source and consumers.

    A unit's output channels (only the kept ones, under a gate) feed the next step, unless the unit
    is added into a residual stream, which stays at full width; a residual block starts from the
    full-width stream.
    """
    steps = getattr(model, "steps", None)
    if steps is None:
        raise TypeError(f"{type(model).__name__} does not describe its units (it has no steps() method)")
    links = _Links()
    resolved = [links.step(step) for step in steps()]
    return [links.finish(step) for step in resolved]


def step_units(model: nn.Module) -> list[ChannelUnit]:
    """Every unit of `walk(model)`, in forward order (`unit.index` is its position here)."""
    units: list[ChannelUnit] = []
    for step in walk(model):
        if isinstance(step, ChannelUnit):
            units.append(step)
        elif isinstance(step, ResidualBlock):
            units.extend(step.units)
    return units
