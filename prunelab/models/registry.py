"""Model registry: name -> spec factory, and `build_model` from a JSON-able `ModelSpec`.

A spec holds every width explicitly, so the same function rebuilds a freshly configured network
and a physically pruned one (`spec_of(model)` reads the widths back from a live module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from prunelab.models.catalog import RESNET_DEPTHS, TORCHVISION_PREFIX, VGG_LAYERS, check_model_name, is_torchvision
from prunelab.models.resnet import ResNet, resnet_blocks
from prunelab.models.torchvision_models import base_spec, build_from_spec, is_torchvision_model, torchvision_spec
from prunelab.models.vgg import VGG, vgg_layers

# {"family": "vgg"|"resnet", "name", "num_classes", "layers" | ("stem", "blocks")}, or
# {"family": "torchvision", "name", "arch", "num_classes", "cifar_stem", ["shapes"]}
ModelSpec = dict[str, Any]

MODELS: dict[str, Callable[[int, float], ModelSpec]] = {}


def register_model(name: str) -> Callable[[Callable[[int, float], ModelSpec]], Callable[[int, float], ModelSpec]]:
    def decorate(factory: Callable[[int, float], ModelSpec]) -> Callable[[int, float], ModelSpec]:
        MODELS[name] = factory
        return factory

    return decorate


def _vgg_factory(name: str) -> Callable[[int, float], ModelSpec]:
    def factory(num_classes: int, width: float) -> ModelSpec:
        return {"family": "vgg", "name": name, "num_classes": num_classes, "layers": vgg_layers(name, width)}

    return factory


def _resnet_factory(name: str) -> Callable[[int, float], ModelSpec]:
    def factory(num_classes: int, width: float) -> ModelSpec:
        stem, blocks = resnet_blocks(name, width)
        return {"family": "resnet", "name": name, "num_classes": num_classes, "stem": stem,
                "blocks": [list(block) for block in blocks]}

    return factory


for _name in VGG_LAYERS:
    register_model(_name)(_vgg_factory(_name))
for _name in RESNET_DEPTHS:
    register_model(_name)(_resnet_factory(_name))


def list_models() -> list[str]:
    return sorted(MODELS)


def model_spec(name: str, num_classes: int, width: float = 1.0, cifar_stem: bool | None = None) -> ModelSpec:
    """The spec of a registered model at a width multiplier, or of `torchvision:NAME` (its own widths; the
    CIFAR stem unless `cifar_stem` is False); raises listing valid names."""
    if is_torchvision(name):
        check_model_name(name)
        return base_spec(name[len(TORCHVISION_PREFIX):], num_classes, cifar_stem is not False)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(list_models())}")
    return MODELS[name](num_classes, width)


def build_model(spec: ModelSpec) -> nn.Module:
    """Instantiate a network from its spec (fresh weights)."""
    family = spec.get("family")
    if family == "vgg":
        return VGG(list(spec["layers"]), int(spec["num_classes"]))
    if family == "resnet":
        blocks = [tuple(int(v) for v in block) for block in spec["blocks"]]
        return ResNet(int(spec["stem"]), blocks, int(spec["num_classes"]))
    if family == "torchvision":
        return build_from_spec(spec)
    raise ValueError(f"unknown model family {family!r}; allowed: vgg, resnet, torchvision")


def spec_of(model: nn.Module, name: str | None = None) -> ModelSpec:
    """Read the explicit widths back from a (possibly pruned) model."""
    if is_torchvision_model(model):
        return torchvision_spec(model)
    if isinstance(model, VGG):
        return {"family": "vgg", "name": name or "vgg", "num_classes": model.classifier.out_features,
                "layers": model.layer_widths()}
    if isinstance(model, ResNet):
        stem, blocks = model.block_widths()
        return {"family": "resnet", "name": name or "resnet", "num_classes": model.classifier.out_features,
                "stem": stem, "blocks": [list(block) for block in blocks]}
    raise TypeError(f"spec_of does not know {type(model).__name__}")
