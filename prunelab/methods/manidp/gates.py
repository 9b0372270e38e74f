"""Per-image channel gates of ManiDP (Tang et al., CVPR 2021), the FBS family (Gao et al., ICLR 2019).

A gate G^l looks at the global-average-pooled input of its unit and returns a channel saliency

    pi^l(x) = min(ReLU(W_2 ReLU(W_1 p(x) [+ b_1]) + b_2), clamp_max)

and masks the unit's output with `pi_hat = pi * 1[pi >= xi^l]` (the indicator is a constant in backprop, so the
cross-entropy reaches the gates through pi itself). Two initialisations (`GateStyle`):
- reference (huawei-noah/Efficient-Computing, Pruning/ManiDP/models/resnet_cifar.py, class MaskBlock): W_1
  without bias and W_2 Kaiming-normal, b_2 = 1, hidden width C_out when C_out < 80 (squeeze_rate 2 // 2) else
  C_out / 2, saliency clamped at 1000;
- PruneLab's departure `small_gate_init`: W_1 with a bias (default Linear init), W_2 ~ N(0, 0.1^2), b_2 = 1,
  hidden width C_in (C_in < 32) or C_in / 2, no clamp: pi starts within a few tenths of 1 for every image.
A channel with pi = 0 counts as pruned even when xi^l <= 0: its output is multiplied by 0, so running it
would be wasted work. Guard (both forms): each image keeps at least its most salient channel in every
gated layer, because a layer with zero channels cannot be executed (nor built as a static network).

What a gate records for the similarity term (`GateRecord.features`, p(F^l(x)) = the pooled unit output before
masking): reference: the output itself (conv_a after BN+ReLU, conv_b after BN, signed), attached, so the
term trains the backbone too; PruneLab's departures `post_relu_similarity_features` (ReLU of it, >= 0) and
`gates_only_similarity` (detached, with T differentiable in the gate's own parameters only).

`install_gates(model)` fills the gate slot of every unit the model lists (`prunelab.models.channel_units`):
the gate sees the unit's input and masks its conv's output after BN (and ReLU, where the unit has one).
In a ResNet basic block `gate_a` sees the block input and masks conv_a's output after BN+ReLU, `gate_b`
sees the masked conv_a output and masks conv_b's output after BN, before the residual add. Stem and
shortcut convolutions are not units, so they are never gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# the smoothing of smoothed_gate_cosine and F.normalize's floor: one definition, which the probe's reader
# (artefacts.cosine_rows) derives T and R with too
from prunelab.methods.manidp.artefacts import COSINE_EPS, NORMALIZE_EPS
from prunelab.models import ChannelUnit, NoGate, channel_units
from prunelab.models.torchvision_models import GATE_CONTAINER

OPEN_BIAS = 1.0  # second Linear's bias at initialisation: every channel starts open (both forms)
REFERENCE_SQUEEZE_RATE = 2  # the reference's --squeeze_rate default
REFERENCE_WIDE_CHANNELS = 80  # below this many output channels the reference halves its squeeze rate
REFERENCE_CLAMP_MAX = 1000.0  # the reference's --clamp_max default
SMALL_NARROW_CHANNELS = 32  # small_gate_init: gates of layers narrower than this use squeeze ratio 1, else 2
SMALL_INIT_STD = 0.1  # small_gate_init: std of the second Linear's initial weight
# Why PruneLab's small init: with the second weight at 0, pi = 1 exactly for every image, every T_ij = 1 and the
# similarity term's gradient vanishes (measured: its value stayed 1.3555 over 200 SGD steps on a fixed batch);
# with std 0.1 pi starts within a few tenths of 1 yet differs between images. With a default Linear init pi
# varied by +-1 between images from the first step, and on `shapes` training once stalled at chance level.


@dataclass(frozen=True)
class GateStyle:
    """How gates are built and what they record: the reference's, or PruneLab's departures (each a flag)."""

    small_init: bool = False  # departure small_gate_init
    post_relu_features: bool = False  # departure post_relu_similarity_features
    gates_only_similarity: bool = False  # departure gates_only_similarity

    @classmethod
    def of(cls, config: Any) -> GateStyle:
        """From a ManiDPConfig (its departure fields)."""
        return cls(bool(config.small_gate_init), bool(config.post_relu_similarity_features),
                   bool(config.gates_only_similarity))

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> GateStyle:
        """From a checkpoint's method state; a run saved before gate styles existed used PruneLab's."""
        saved = (state or {}).get("gate_style")
        return cls(**saved) if isinstance(saved, dict) else cls(True, True, True)

    def as_dict(self) -> dict[str, bool]:
        return {"small_init": self.small_init, "post_relu_features": self.post_relu_features,
                "gates_only_similarity": self.gates_only_similarity}


@dataclass
class GateRecord:
    """What one gate saw in the last forward pass (for the losses and the artefacts)."""

    saliency: torch.Tensor  # pi [B, C] (attached to the graph in training)
    # T's input in the similarity term: pi itself (reference), or with gates_only_similarity the same pi
    # differentiable in the gate's own parameters only (input detached)
    own_saliency: torch.Tensor
    # p(F^l(x)) [B, C]: the pooled unit output before masking (`pooled_features`), R's input
    features: torch.Tensor
    mask: torch.Tensor  # bool [B, C], 1[pi >= xi] plus the keep-one guard


def pooled_features(outputs: torch.Tensor, style: GateStyle) -> torch.Tensor:
    """p(F^l(x)) [B, C]: mean_{h,w} of the unit's output before masking.

    Reference: the output as it is (conv_a after BN+ReLU, conv_b after BN: signed, before the residual add),
    attached. post_relu_features: mean_{h,w} ReLU(outputs), the non-negative part the block passes on (a
    signed R reaches -1, which T = cos(pi_i, pi_j) >= 0 never can). gates_only_similarity: detached.
    """
    if style.gates_only_similarity:
        outputs = outputs.detach()
    if style.post_relu_features:
        outputs = torch.relu(outputs)
    return outputs.mean(dim=(2, 3))


def gate_hidden(in_channels: int, out_channels: int, small_init: bool) -> int:
    """Hidden width of a gate. Reference: C_out // (squeeze_rate // 2) when C_out < 80, else
    C_out // squeeze_rate, squeeze_rate = 2. small_gate_init: C_in when C_in < 32, else C_in // 2."""
    if small_init:
        return in_channels if in_channels < SMALL_NARROW_CHANNELS else max(1, in_channels // 2)
    rate = REFERENCE_SQUEEZE_RATE // 2 if out_channels < REFERENCE_WIDE_CHANNELS else REFERENCE_SQUEEZE_RATE
    return max(1, out_channels // rate)


def threshold_mask(saliency: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Bool mask [B, C]: 1[pi >= xi] and pi > 0, plus the most salient channel of every image."""
    mask = (saliency >= threshold) & (saliency > 0)
    top = saliency.argmax(dim=1, keepdim=True)  # [B, 1]
    return mask.scatter(1, top, True)


class ChannelGate(nn.Module):
    """`gate(inputs, outputs)`: pooled inputs -> Linear -> ReLU -> Linear -> ReLU (-> clamp) = pi; outputs * pi_hat."""

    def __init__(self, in_channels: int, out_channels: int, style: GateStyle | None = None) -> None:
        super().__init__()
        self.style = style or GateStyle()
        small = self.style.small_init
        hidden = gate_hidden(in_channels, out_channels, small)
        self.fc1 = nn.Linear(in_channels, hidden, bias=small)
        self.fc2 = nn.Linear(hidden, out_channels)
        if small:
            nn.init.normal_(self.fc2.weight, 0.0, SMALL_INIT_STD)
        else:
            nn.init.kaiming_normal_(self.fc1.weight)
            nn.init.kaiming_normal_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, OPEN_BIAS)
        self.clamp_max = math.inf if small else REFERENCE_CLAMP_MAX
        self.register_buffer("threshold", torch.zeros(()))  # xi^l, saved with the model's state_dict
        self.record: GateRecord | None = None
        self.recording = True
        # hooked onto a torchvision model (`attach_hooks`): the producer's input, and the last forward's mask
        self.pending_input: torch.Tensor | None = None
        self.last_mask: torch.Tensor | None = None

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
        pi = torch.relu(self.fc2(torch.relu(self.fc1(pooled))))
        return pi if math.isinf(self.clamp_max) else pi.clamp(max=self.clamp_max)

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        pooled = inputs.mean(dim=(2, 3))  # (B, C_in)
        pi = self._from_pooled(pooled)  # (B, C_out)
        mask = threshold_mask(pi.detach(), self.threshold)
        if self.recording:
            # gates_only_similarity: T differentiable in the gate's own parameters only, so the term cannot
            # move the backbone (measured on shapes with a detached R: the backbone moved R while chasing it
            # through the gate's input, and ||T - R|| rose)
            gates_only = self.style.gates_only_similarity and torch.is_grad_enabled()
            own = self._from_pooled(pooled.detach()) if gates_only else pi
            self.record = GateRecord(pi, own, pooled_features(outputs, self.style), mask)
        self.last_mask = mask
        pi_hat = pi * mask.to(pi.dtype)
        return outputs * pi_hat[:, :, None, None].to(outputs.dtype)

    # hooks of a gate on a model without gate slots (`attach_hooks`, a torchvision model)
    def take_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook of the unit's conv: keep its input, which the gate reads."""
        self.pending_input = args[0]

    def gate_output(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        """Forward hook of the unit's BN: `gate(conv input, BN output)`."""
        inputs, self.pending_input = self.pending_input, None
        if inputs is None:
            raise RuntimeError("a gate's BN ran before its convolution: the unit's layers run out of order")
        return self(inputs, output)

    def mask_carrier(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        """Forward hook of a depthwise conv's BN carrying the unit's channels: the same channels stay off."""
        if self.last_mask is None:
            raise RuntimeError("a depthwise BN after a gate ran before the gate")
        return output * self.last_mask[:, :, None, None].to(output.dtype)

    def macs(self) -> int:
        """MACs of the two Linear layers for one image (pooling is not counted, as in FlopCounterMode)."""
        return self.fc1.in_features * self.fc1.out_features + self.fc2.in_features * self.fc2.out_features


def install_gates(model: nn.Module, style: GateStyle | None = None) -> nn.Module:
    """Put a fresh `ChannelGate` of `style` (default: the reference's) in every empty gate slot (in place).

    A model without gate slots (a torchvision one: its units come from the dependency graph) gets them in a
    `GATE_CONTAINER` ModuleDict, each gate hooked onto its unit (`attach_hooks`)."""
    for unit in channel_units(model):
        parent, attr = unit.slot
        hooked = parent == GATE_CONTAINER
        if hooked and GATE_CONTAINER not in model._modules:
            model.add_module(GATE_CONTAINER, nn.ModuleDict())
        owner = model.get_submodule(parent)
        if hooked and attr not in owner._modules:
            setattr(owner, attr, NoGate())
        if isinstance(getattr(owner, attr), NoGate):
            conv = model.get_submodule(unit.conv)
            gate = ChannelGate(conv.in_channels, conv.out_channels, style).to(conv.weight.device)
            setattr(owner, attr, gate)
            if hooked:
                attach_hooks(model, unit, gate)
    return model


def attach_hooks(model: nn.Module, unit: ChannelUnit, gate: ChannelGate) -> None:
    """The unit's conv hands its input to the gate, the gate masks its BN's output (`outputs * pi_hat`, before
    the activation: for ReLU the same as after it, and the saliency folds into the BN exactly), and every
    depthwise BN carrying the channels is masked with the same channels."""
    model.get_submodule(unit.conv).register_forward_pre_hook(gate.take_input)
    model.get_submodule(unit.bn).register_forward_hook(gate.gate_output)
    for _, bn in unit.carriers:
        model.get_submodule(bn).register_forward_hook(gate.mask_carrier)


def gated_units(model: nn.Module) -> list[tuple[ChannelUnit, ChannelGate]]:
    """(unit, its gate) for every unit whose slot holds a `ChannelGate`, in forward order."""
    found = []
    for unit in channel_units(model):
        try:
            gate = model.get_submodule(unit.name)
        except AttributeError:  # no gate container yet (an ungated torchvision model)
            continue
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




def cosine_matrix(vectors: torch.Tensor, eps: float = COSINE_EPS) -> torch.Tensor:
    """[N, N] cosines of the rows of `vectors` [N, C]: v_i.v_j / (sqrt(|v_i|^2 + eps^2) sqrt(|v_j|^2 + eps^2)).

    PruneLab's departure smoothed_gate_cosine for T. For rows much longer than eps (an open gate has
    |pi| ~ sqrt(C) >= 1) this is the plain cosine; an all-zero row has cosine 0 with everything. The gradient
    of v / |v| grows like 1 / |v|: with a hard floor of 1e-3 a gate vector near zero got gradients 1000 times
    larger than an open one and the run ended in NaN (similarity weight 10, or gate lr x10).
    """
    vectors = vectors.float()
    unit = vectors / (vectors.pow(2).sum(dim=1, keepdim=True) + eps * eps).sqrt()
    return unit @ unit.T


def normalized_cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """[N, N] Gram matrix of F.normalize(vectors): v_i.v_j / (max(|v_i|, 1e-12) max(|v_j|, 1e-12)), the
    reference's G = f f^T (cal_similarity_loss), for T and R alike."""
    unit = F.normalize(vectors.float(), dim=1, eps=NORMALIZE_EPS)
    return unit @ unit.T


def feature_similarity(features: torch.Tensor) -> torch.Tensor:
    """R = [N, N] cosines of pooled features, for display and figures (detached)."""
    return normalized_cosine_matrix(features.detach())
