"""Per-image channel gates of ManiDP (Tang et al., CVPR 2021), the FBS family (Gao et al., ICLR 2019).

A gate G^l looks at the global-average-pooled input of its unit and returns a channel saliency

    pi^l(x) = ReLU(W_2 ReLU(W_1 p(x) + b_1) + b_2)        (W_2 ~ N(0, 0.1^2), b_2 = 1 at initialisation)

and masks the unit's output with `pi_hat = pi * 1[pi >= xi^l]` (the indicator is a constant in
backprop). A channel with pi = 0 counts as pruned even when xi^l = 0: its output is multiplied by 0,
so running it would be wasted work. Guard: each image keeps at least its most salient channel in every
gated layer, because a layer with zero channels cannot be executed (nor built as a static network).

`install_gates(model)` fills the gate slot of every unit the model lists (`prunelab.models.channel_units`):
the gate sees the unit's input and masks its conv's output after BN (and ReLU, where the unit has one).
In a ResNet basic block `gate_a` sees the block input and masks conv_a's output after BN+ReLU, `gate_b`
sees the masked conv_a output and masks conv_b's output after BN, before the residual add. Stem and
shortcut convolutions are not units, so they are never gated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunelab.models import ChannelUnit, NoGate, channel_units

NARROW_CHANNELS = 32  # gates of layers narrower than this use squeeze ratio 1 (reference: 2 otherwise)
OPEN_BIAS = 1.0  # second Linear's bias at initialisation: every channel starts open
GATE_INIT_STD = 0.1  # std of the second Linear's initial weight
# With the second Linear's weight at 0 (the reference's open start), pi = 1 exactly for every image, so
# every T_ij = 1 and the similarity term's gradient d cos(pi_i, pi_j) / d pi_i vanishes: the term cannot
# move the gates at all (measured: its value stayed 1.3555 over 200 SGD steps on a fixed batch). With
# std 0.1 pi starts within a few tenths of 1 (the network starts close to the plain one, or to the
# baseline it is initialised from) yet differs between images. With the default Linear init, pi varied by
# +-1 between images from the first step, and on `shapes` training stalled at chance level.


@dataclass
class GateRecord:
    """What one gate saw in the last forward pass (for the losses and the artefacts)."""

    saliency: torch.Tensor  # pi [B, C] (attached to the graph in training)
    own_saliency: torch.Tensor  # the same pi, differentiable in the gate's own parameters only (input detached)
    features: torch.Tensor  # pooled layer output after its activation, before masking [B, C] (detached, >= 0)
    mask: torch.Tensor  # bool [B, C], 1[pi >= xi] plus the keep-one guard


def passed_on_features(outputs: torch.Tensor) -> torch.Tensor:
    """p(F^l(x)) = mean_{h,w} ReLU(outputs) [B, C]: the pooled features the layer passes on, >= 0.

    A VGG unit and a block's conv_a already end in a ReLU (the ReLU changes nothing there). A block's
    conv_b output is a signed BatchNorm output before the residual add; its ReLU is the non-negative part
    the block passes on. Saliencies are non-negative, so T = cos(pi_i, pi_j) lies in [0, 1]: a signed
    feature would give R down to -1, a target T can never reach.
    """
    return torch.relu(outputs).mean(dim=(2, 3))


def gate_hidden(in_channels: int) -> int:
    """Hidden width of a gate: squeeze ratio 2, or 1 for narrow layers (reference code)."""
    return in_channels if in_channels < NARROW_CHANNELS else max(1, in_channels // 2)


def threshold_mask(saliency: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Bool mask [B, C]: 1[pi >= xi] and pi > 0, plus the most salient channel of every image."""
    mask = (saliency >= threshold) & (saliency > 0)
    top = saliency.argmax(dim=1, keepdim=True)  # [B, 1]
    return mask.scatter(1, top, True)


class ChannelGate(nn.Module):
    """`gate(inputs, outputs)`: pooled inputs -> Linear -> ReLU -> Linear -> ReLU = pi; outputs * pi_hat."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = gate_hidden(in_channels)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, out_channels)
        nn.init.normal_(self.fc2.weight, 0.0, GATE_INIT_STD)
        nn.init.constant_(self.fc2.bias, OPEN_BIAS)
        self.register_buffer("threshold", torch.zeros(()))  # xi^l, saved with the model's state_dict
        self.record: GateRecord | None = None
        self.recording = True

    @property
    def in_channels(self) -> int:
        return self.fc1.in_features

    @property
    def out_channels(self) -> int:
        return self.fc2.out_features

    def saliency(self, inputs: torch.Tensor) -> torch.Tensor:
        """pi = ReLU(fc2(ReLU(fc1(mean_{h,w} inputs)))), shape [B, C_out]."""
        return self._from_pooled(inputs.mean(dim=(2, 3)))

    def _from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc2(torch.relu(self.fc1(pooled))))

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        pooled = inputs.mean(dim=(2, 3))  # (B, C_in)
        pi = self._from_pooled(pooled)  # (B, C_out)
        mask = threshold_mask(pi.detach(), self.threshold)
        if self.recording:
            # The similarity term's target R is computed from the backbone's features and detached. If its
            # gradient also reached the backbone through the gate's input, the backbone would move R while
            # chasing it (R^l of conv_a is built from the very features gate_b reads): measured on shapes,
            # the term then *raised* ||T - R||. So the term trains the gate's own parameters only.
            own = self._from_pooled(pooled.detach()) if torch.is_grad_enabled() else pi
            self.record = GateRecord(pi, own, passed_on_features(outputs.detach()), mask)
        pi_hat = pi * mask.to(pi.dtype)
        return outputs * pi_hat[:, :, None, None].to(outputs.dtype)

    def macs(self) -> int:
        """MACs of the two Linear layers for one image (pooling is not counted, as in FlopCounterMode)."""
        return self.fc1.in_features * self.fc1.out_features + self.fc2.in_features * self.fc2.out_features


def install_gates(model: nn.Module) -> nn.Module:
    """Put a fresh `ChannelGate` in every empty gate slot (in place; returns the model)."""
    for unit in channel_units(model):
        parent, attr = unit.slot
        owner = model.get_submodule(parent)
        if isinstance(getattr(owner, attr), NoGate):
            conv = model.get_submodule(unit.conv)
            setattr(owner, attr, ChannelGate(conv.in_channels, conv.out_channels).to(conv.weight.device))
    return model


def gated_units(model: nn.Module) -> list[tuple[ChannelUnit, ChannelGate]]:
    """(unit, its gate) for every unit whose slot holds a `ChannelGate`, in forward order."""
    found = []
    for unit in channel_units(model):
        gate = model.get_submodule(unit.name)
        if isinstance(gate, ChannelGate):
            found.append((unit, gate))
    return found


def named_gates(model: nn.Module) -> list[tuple[str, ChannelGate]]:
    """('features.0.gate', gate), ... in forward order; empty for an ungated model."""
    return [(unit.name, gate) for unit, gate in gated_units(model)]


def gates_of(model: nn.Module) -> list[ChannelGate]:
    return [gate for _, gate in named_gates(model)]


def set_thresholds(model: nn.Module, thresholds: list[float]) -> None:
    gates = gates_of(model)
    if len(gates) != len(thresholds):
        raise ValueError(f"{len(thresholds)} thresholds for {len(gates)} gates")
    for gate, value in zip(gates, thresholds, strict=True):
        gate.threshold.fill_(float(value))


def get_thresholds(model: nn.Module) -> list[float]:
    return [float(gate.threshold) for gate in gates_of(model)]


def set_recording(model: nn.Module, on: bool) -> None:
    """Switch the per-forward records on or off (off also drops the last record)."""
    for gate in gates_of(model):
        gate.recording = on
        if not on:
            gate.record = None


def records(model: nn.Module) -> list[GateRecord]:
    """The last forward pass's records, one per gate (raises if a gate has none)."""
    out = []
    for name, gate in named_gates(model):
        if gate.record is None:
            raise RuntimeError(f"gate {name} has no record; run a forward pass with recording on")
        out.append(gate.record)
    return out


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for gate in gates_of(model) for p in gate.parameters()]


COSINE_EPS = 1e-2  # smoothing of the norm in the cosine: bounds the gradient of a near-dead gate vector


def cosine_matrix(vectors: torch.Tensor, eps: float = COSINE_EPS) -> torch.Tensor:
    """[N, N] cosines of the rows of `vectors` [N, C]: v_i.v_j / (sqrt(|v_i|^2 + eps^2) sqrt(|v_j|^2 + eps^2)).

    For rows much longer than eps (an open gate has |pi| ~ sqrt(C) >= 1) this is the plain cosine; an
    all-zero row has cosine 0 with everything. The gradient of v / |v| grows like 1 / |v|: with a hard
    floor of 1e-3 a gate vector near zero got gradients 1000 times larger than an open one, its gate
    weights jumped, activations overflowed and the run ended in NaN (similarity weight 10, or gate lr x10).
    The smooth norm bounds that gradient by 1 / eps and has no 0/0 at zero.
    """
    vectors = vectors.float()
    unit = vectors / (vectors.pow(2).sum(dim=1, keepdim=True) + eps * eps).sqrt()
    return unit @ unit.T


def feature_similarity(features: torch.Tensor) -> torch.Tensor:
    """R = [N, N] plain cosines of pooled features (a detached target: no gradient, so no smoothing needed;
    pooled features can be short vectors, whose cosines the smoothing would shrink)."""
    return cosine_matrix(features.detach(), eps=1e-12)
