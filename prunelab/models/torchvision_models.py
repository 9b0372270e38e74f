"""torchvision's classification models as PruneLab models: `torchvision:NAME`, fresh weights, any class count.

`build_torchvision(arch, num_classes, cifar_stem)` calls `torchvision.models.get_model(arch, weights=None, ...)`:
nothing is downloaded (a user's own weights come from a file, `prunelab.models.weights`). With `cifar_stem` the
stem is adapted the way CIFAR practice does for 32x32 images (He et al.'s CIFAR ResNets; kuangliu/pytorch-cifar):
the first convolution becomes 3x3 with stride 1 and padding 1, and a max-pool that follows it before the next
convolution is dropped; a stem that already is a 3x3 stride-1 convolution (VGG) is left as it is.

A built model carries `PRUNELAB_BASE` (family, name, arch, num_classes, cifar_stem, replaced modules); its spec
(`spec_of`) adds the shape of every Conv2d, BatchNorm2d and Linear, so `build_model(spec)` rebuilds a physically
pruned network too: each module whose recorded shape differs is rebuilt at that shape (`reshape_to`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from prunelab.models.catalog import TORCHVISION_PREFIX

PRUNELAB_BASE = "prunelab_base"  # the attribute holding a built torchvision model's base spec
GATE_CONTAINER = "gates"  # the ModuleDict holding ManiDP's gates on a torchvision model
# torchvision builders that need more than num_classes to return plain logits in training mode
_EXTRA_KWARGS: dict[str, dict[str, Any]] = {"googlenet": {"aux_logits": False, "init_weights": True},
                                            "inception_v3": {"aux_logits": False, "init_weights": True}}


def is_torchvision_model(model: nn.Module) -> bool:
    return isinstance(getattr(model, PRUNELAB_BASE, None), dict)


def base_spec(arch: str, num_classes: int, cifar_stem: bool) -> dict[str, Any]:
    return {"family": "torchvision", "name": f"{TORCHVISION_PREFIX}{arch}", "arch": arch,
            "num_classes": int(num_classes), "cifar_stem": bool(cifar_stem)}


def build_torchvision(arch: str, num_classes: int, cifar_stem: bool) -> nn.Module:
    """torchvision's `arch` with fresh weights and `num_classes` outputs, its stem adapted with `cifar_stem`."""
    import torchvision

    model = torchvision.models.get_model(arch, weights=None, num_classes=int(num_classes),
                                         **_EXTRA_KWARGS.get(arch, {}))
    replaced = adapt_stem(model) if cifar_stem else []
    setattr(model, PRUNELAB_BASE, {**base_spec(arch, num_classes, cifar_stem), "replaced": replaced})
    return model


def adapt_stem(model: nn.Module) -> list[str]:
    """CIFAR stem in place: the first Conv2d -> 3x3 stride 1 padding 1, the max-pool before the next Conv2d ->
    Identity. Returns the names of the modules replaced (none when the stem already is 3x3 stride 1)."""
    modules = list(model.named_modules())
    first = next(((name, m) for name, m in modules if isinstance(m, nn.Conv2d)), None)
    if first is None:
        return []
    name, conv = first
    if tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1):
        return []
    stem = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, groups=conv.groups,
                     bias=conv.bias is not None)
    nn.init.kaiming_normal_(stem.weight, mode="fan_out", nonlinearity="relu")
    if stem.bias is not None:
        nn.init.zeros_(stem.bias)
    model.set_submodule(name, stem)
    replaced = [name]
    after = [(n, m) for n, m in modules[[n for n, _ in modules].index(name) + 1:]]
    for other, module in after:
        if isinstance(module, nn.Conv2d):
            break
        if isinstance(module, nn.MaxPool2d):
            model.set_submodule(other, nn.Identity())
            replaced.append(other)
            break
    return replaced


def shapes_of(model: nn.Module) -> dict[str, list[int]]:
    """Every Conv2d ([out, in, groups]), BatchNorm2d ([features]) and Linear ([out, in]) of the backbone."""
    shapes: dict[str, list[int]] = {}
    for name, module in model.named_modules():
        if name == GATE_CONTAINER or name.startswith(f"{GATE_CONTAINER}."):
            continue
        if isinstance(module, nn.Conv2d):
            shapes[name] = [module.out_channels, module.in_channels, module.groups]
        elif isinstance(module, nn.BatchNorm2d):
            shapes[name] = [module.num_features]
        elif isinstance(module, nn.Linear):
            shapes[name] = [module.out_features, module.in_features]
    return shapes


def _resized(module: nn.Module, shape: list[int]) -> nn.Module:
    """A fresh module like `module` at `shape` (weights are loaded afterwards)."""
    if isinstance(module, nn.Conv2d):
        out_channels, in_channels, groups = shape
        return nn.Conv2d(in_channels, out_channels, module.kernel_size, stride=module.stride, padding=module.padding,
                         dilation=module.dilation, groups=groups, bias=module.bias is not None,
                         padding_mode=module.padding_mode)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(shape[0], eps=module.eps, momentum=module.momentum, affine=module.affine,
                              track_running_stats=module.track_running_stats)
    if isinstance(module, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=module.bias is not None)
    raise TypeError(f"cannot resize a {type(module).__name__}")


def reshape_to(model: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Rebuild, in place, every module whose shape in `shapes` (a spec's, `shapes_of`) differs from its own."""
    own = shapes_of(model)
    for name, shape in shapes.items():
        if name not in own:
            raise ValueError(f"the spec names {name}, which {getattr(model, PRUNELAB_BASE)['name']} does not have")
        if list(shape) != own[name]:
            model.set_submodule(name, _resized(model.get_submodule(name), list(shape)))
    return model


def torchvision_spec(model: nn.Module) -> dict[str, Any]:
    """The spec of a built (possibly pruned) torchvision model: its base and every layer's shape."""
    base = {k: v for k, v in getattr(model, PRUNELAB_BASE).items() if k != "replaced"}
    return {**base, "shapes": shapes_of(model)}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    model = build_torchvision(str(spec["arch"]), int(spec["num_classes"]), bool(spec.get("cifar_stem", True)))
    if spec.get("shapes"):
        reshape_to(model, {str(k): [int(v) for v in shape] for k, shape in spec["shapes"].items()})
    return model
