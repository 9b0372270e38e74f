"""The channel structure of any CNN, from one walk of Torch-Pruning's `DependencyGraph`.

A channel group is a set of BatchNorm channels that must be removed together: the DG's pruning group of a
BN's output channels. For each group this module records every (module, pruning function) removal touches
(the ops Network Slimming calls), and reads from them:

- producers: the convolutions writing the channels (not depthwise), depthwise: the depthwise convolutions
  carrying them (in = out channels), consumers: the convolutions and Linear layers reading them;
- coupling: why the channels are tied beyond one convolution's output, or None for a free group. Coupled:
  a residual add or a multiply across several producers (a ResNet stage, an inverted residual's output,
  a squeeze-excitation scale), a grouped convolution, a layer of another kind;
- mapped: an index mapping at a concatenation, split or flatten (DenseNet, ShuffleNet, a VGG classifier):
  such a group is left at full width, since its channels are renumbered on the way.

Network Slimming prunes every group without a mapping (`prunelab.methods.slimming.pruning`); ManiDP gates the
free ones (`free_units`: conv -> BN [-> depthwise conv -> BN ...] -> consumers, one gate per group), and their
per-image MACs come from the same records. PruneLab's own VGG and ResNet describe their units themselves
(`model.steps()`, `prunelab.models.units`); a test holds their DG groups equal to those units.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

PruneFn = Callable[[nn.Module, Sequence[int]], nn.Module]
UNITS_CACHE = "_prunelab_units"  # attribute caching a torchvision model's free units, keyed by its shapes


class GraphError(ValueError):
    """A model whose channel structure cannot be traced; the message names the layer and the reason."""


@dataclass(frozen=True)
class ChannelGroup:
    """Channels removed together, with what removing one touches and why they are (not) free."""

    name: str  # the group's first BN (module order)
    channels: int
    bns: tuple[str, ...]
    ops: tuple[tuple[str, PruneFn], ...]  # (module name, Torch-Pruning pruning fn) in the DG's order
    producers: tuple[str, ...] = ()
    depthwise: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    coupling: str | None = None  # None: the channels of one convolution only (free)
    mapped: str | None = None  # an index mapping: not prunable here
    grouped: str | None = None  # a grouped (not depthwise) convolution reads or writes them: not prunable here

    @property
    def prunable(self) -> bool:
        """Removable through the DG with the group's own channel indices (no mapping, no grouped convolution)."""
        return self.mapped is None and self.grouped is None

    @property
    def free(self) -> bool:
        return self.coupling is None and self.mapped is None

    @property
    def residual(self) -> bool:
        """Coupled to other layers' channels (a residual stream, a multiply, a grouped convolution)."""
        return self.coupling is not None


def _is_depthwise(module: nn.Module) -> bool:
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


def _channel_width(module: nn.Module, role: str) -> int | None:
    """The channel count of `module` on the side the group touches (None: not a layer with channels)."""
    if isinstance(module, nn.BatchNorm2d):
        return module.num_features
    if isinstance(module, nn.Conv2d) and not _is_depthwise(module) and module.groups == 1:
        return module.out_channels if role == "prune_out_channels" else module.in_channels
    if isinstance(module, nn.Linear) and role == "prune_in_channels":
        return module.in_features
    return None


def traceable_copy(model: nn.Module) -> nn.Module:
    """A CPU float eval copy of the backbone: without gates (their container dropped) and without hooks."""
    from prunelab.models.torchvision_models import GATE_CONTAINER
    from prunelab.models.units import NoGate, step_units

    work = copy.deepcopy(model).cpu().float().eval()
    if GATE_CONTAINER in work._modules:
        del work._modules[GATE_CONTAINER]
    for module in work.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    if getattr(work, "steps", None) is not None:  # a PruneLab model: its gate slots emptied
        for unit in step_units(work):
            parent, attr = unit.slot
            setattr(work.get_submodule(parent), attr, NoGate())
    return work


def build_graph(work: nn.Module, input_shape: tuple[int, ...]) -> Any:
    import torch_pruning as tp

    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(work, torch.zeros((1, *input_shape)), verbose=False)
    except Exception as error:  # noqa: BLE001 - whatever the tracer raised, reported in one line
        raise GraphError(f"Torch-Pruning cannot trace {type(work).__name__} on a {list(input_shape)} input: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None


def channel_groups(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> list[ChannelGroup]:
    """Every BN channel group of `model`, in module order of its first BN (one DependencyGraph walk).

    Traced on a CPU copy in eval mode, so the model's BN statistics are untouched. Raises ValueError for a
    model without BatchNorm2d, GraphError when the graph cannot be traced.
    """
    import torch_pruning as tp

    work = traceable_copy(model)
    bn_names = [name for name, module in work.named_modules() if isinstance(module, nn.BatchNorm2d)]
    if not bn_names:
        raise ValueError(f"{type(model).__name__} has no BatchNorm2d layer: both methods read BN channels "
                         "(slimming's scales, ManiDP's gates after BN)")
    graph = build_graph(work, input_shape)
    names = {module: name for name, module in work.named_modules()}
    order = {name: i for i, name in enumerate(names.values())}
    groups: list[ChannelGroup] = []
    seen: set[str] = set()
    for bn_name in bn_names:
        if bn_name in seen:
            continue
        bn = work.get_submodule(bn_name)
        group = graph.get_pruning_group(bn, tp.prune_batchnorm_out_channels, list(range(bn.num_features)))
        record = _read_group(group, names, order, bn.num_features)
        seen.update(record.bns)
        groups.append(record)
    return groups


def _read_group(group: Any, names: dict[Any, str], order: dict[str, int], channels: int) -> ChannelGroup:
    bns: list[str] = []
    ops: list[tuple[str, PruneFn]] = []
    producers: list[str] = []
    depthwise: list[str] = []
    consumers: list[str] = []
    couplings: list[str] = []
    mapped: str | None = None
    grouped: str | None = None
    for item in group:
        module, handler = item.dep.target.module, item.dep.handler
        name = names.get(module)
        if list(item.idxs) != list(item.root_idxs) and mapped is None:
            where = name or type(module).__name__.strip("_")
            mapped = f"its channels are renumbered at {where} (a concatenation, split or flatten)"
        if isinstance(module, nn.Parameter) or name is None:  # element-wise ops and bare parameters
            if isinstance(module, nn.Parameter) and mapped is None:
                mapped = "it reaches a bare nn.Parameter"
            continue
        ops.append((name, handler))
        role = getattr(handler, "__name__", "")
        width = _channel_width(module, role)
        if width is not None and width != channels and mapped is None:
            mapped = f"its channels are part of the wider {name} ({width} channels: a concatenation)"
        if isinstance(module, nn.BatchNorm2d):
            bns.append(name)
        elif isinstance(module, nn.Conv2d):
            if _is_depthwise(module):
                depthwise.append(name)
            elif module.groups > 1:
                grouped = grouped or f"grouped convolution {name} ({module.groups} groups)"
                couplings.append(grouped)
            elif role == "prune_out_channels":
                producers.append(name)
            else:
                consumers.append(name)
        elif isinstance(module, nn.Linear) and role == "prune_in_channels":
            consumers.append(name)
        else:
            couplings.append(f"{name} ({type(module).__name__}) shares them")
    if len(producers) > 1:
        couplings.insert(0, f"a residual add or multiply ties {len(producers)} convolutions "
                            f"({', '.join(sorted(producers, key=order.__getitem__)[:3])}...)")
    elif not producers:
        couplings.insert(0, "no convolution of its own writes them")
    if len(bns) != len(producers) + len(depthwise) and not couplings:
        couplings.append("its convolutions and BatchNorm layers do not pair up")
    key = order.__getitem__
    return ChannelGroup(sorted(bns, key=key)[0], channels, tuple(sorted(bns, key=key)), tuple(ops),
                        tuple(sorted(producers, key=key)), tuple(sorted(depthwise, key=key)),
                        tuple(sorted(consumers, key=key)), couplings[0] if couplings else None, mapped, grouped)


def execution_order(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Module name -> position of its first call in one forward pass (Conv2d, BatchNorm2d, Linear)."""
    work = traceable_copy(model)
    seen: dict[str, int] = {}
    handles = []
    for name, module in work.named_modules():
        if isinstance(module, nn.Conv2d | nn.BatchNorm2d | nn.Linear):
            def hook(mod: nn.Module, args: tuple, name: str = name) -> None:
                seen.setdefault(name, len(seen))

            handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            work(torch.zeros((1, *input_shape)))
    except Exception as error:  # noqa: BLE001 - the model's own error, in one line
        raise GraphError(f"{type(model).__name__} does not run on a {list(input_shape)} input: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    finally:
        for handle in handles:
            handle.remove()
    return seen


def probe_shape(model: nn.Module) -> tuple[int, int, int]:
    """The input a structural trace uses: the first convolution's channels at 32x32, the size of every image
    PruneLab's datasets hold (folders are resized to it)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return (first.in_channels if first is not None else 3, 32, 32)


def free_units(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> tuple[list[Any], dict[str, str]]:
    """(the gate units of a model without `steps()`, {group name: why it is not gated}).

    A unit is a free group whose convolutions and BNs run as conv -> BN [-> depthwise conv -> BN ...]: its
    gate reads the producer's input and masks the producer's BN output (`carriers`: the depthwise pairs after
    it, masked with the same channels); units are in forward order with `source` (the unit whose channels the
    producer reads) and `consumers` (the layers reading the group's channels).
    """
    from prunelab.models.torchvision_models import GATE_CONTAINER
    from prunelab.models.units import ChannelUnit

    shape = tuple(input_shape or probe_shape(model))
    groups = channel_groups(model, shape)
    run = execution_order(model, shape)
    found: list[ChannelUnit] = []
    skipped: dict[str, str] = {}
    for group in groups:
        if not group.free:
            skipped[group.name] = group.mapped or group.coupling or ""
            continue
        members = (*group.producers, *group.depthwise, *group.bns)
        if any(name not in run for name in members):
            skipped[group.name] = "a layer of it never runs in the forward pass"
            continue
        chain = sorted(members, key=run.__getitem__)
        convs, bns = chain[0::2], chain[1::2]
        if (len(convs) != len(bns) or convs[0] not in group.producers
                or any(c not in group.depthwise for c in convs[1:]) or any(b not in group.bns for b in bns)):
            skipped[group.name] = "its layers do not run as conv -> BN [-> depthwise conv -> BN]"
            continue
        carriers = tuple(zip(convs[1:], bns[1:], strict=True))
        found.append(ChannelUnit(name=f"{GATE_CONTAINER}.{bns[0].replace('.', '_')}", conv=convs[0], bn=bns[0],
                                 block=convs[0].rpartition(".")[0], carriers=carriers, consumers=group.consumers))
    found.sort(key=lambda unit: run[unit.conv])
    reader = {layer: i for i, unit in enumerate(found) for layer in unit.consumers}
    units = [replace(unit, index=i, source=reader.get(unit.conv)) for i, unit in enumerate(found)]
    return units, skipped


def cached_free_units(model: nn.Module) -> list[Any]:
    """`free_units(model)[0]`, cached on the model for its current layer shapes (a deep copy keeps the cache)."""
    from prunelab.models.torchvision_models import shapes_of

    key = repr(sorted(shapes_of(model).items()))
    cached = getattr(model, UNITS_CACHE, None)
    if cached is not None and cached[0] == key:
        return list(cached[1])
    units, _ = free_units(model)
    object.__setattr__(model, UNITS_CACHE, (key, tuple(units)))
    return units


def channel_units(model: nn.Module) -> list[Any]:
    """The units a gate can sit on, in forward order (`unit.index` is the position here): a PruneLab model's own
    (`units.step_units`, from its `steps()`), else a torchvision model's free groups (`cached_free_units`)."""
    from prunelab.models.torchvision_models import is_torchvision_model
    from prunelab.models.units import step_units

    if getattr(model, "steps", None) is None and is_torchvision_model(model):
        return cached_free_units(model)
    return step_units(model)


def conv_bn_pairs(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[tuple[str, str]]:
    """(conv, BN) of every BatchNorm2d applied straight to a convolution's output, in forward order: in one traced
    forward pass the BN's input is the very tensor the conv returned. A BN reading anything else (after a pool, a
    concatenation, an activation: DenseNet's pre-activation BNs) has no pair."""
    shape = tuple(input_shape or probe_shape(model))
    work = traceable_copy(model)
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # id(conv output) -> (conv, the tensor, kept alive)
    pairs: list[tuple[str, str]] = []
    handles = []
    for name, module in work.named_modules():
        if isinstance(module, nn.Conv2d):
            def conv_hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                produced[id(out)] = (name, out)

            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.BatchNorm2d):
            def bn_hook(mod: nn.Module, args: tuple, name: str = name) -> None:
                source = produced.get(id(args[0]))
                if source is not None and source[1] is args[0] and (source[0], name) not in pairs:
                    pairs.append((source[0], name))

            handles.append(module.register_forward_pre_hook(bn_hook))
    try:
        with torch.no_grad():
            work(torch.zeros((1, *shape)))
    finally:
        for handle in handles:
            handle.remove()
    return pairs
