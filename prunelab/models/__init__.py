"""CIFAR-style CNNs with explicit per-layer widths: VGG-11/16/19 and ResNet-20/32/56/110.

The exports are loaded on first use, so `prunelab.models.catalog` (names and layer shapes, no torch; what
`prunelab.config` reads) can be imported without importing torch: the app's home page draws its first
chart before torch is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MODELS": "registry", "ModelSpec": "registry", "build_model": "registry", "list_models": "registry",
    "model_spec": "registry", "spec_of": "registry", "BasicBlock": "resnet", "ResNet": "resnet",
    "NoGate": "units", "VGG": "vgg", "ConvUnit": "vgg", "ChannelUnit": "units", "Head": "units",
    "Pool": "units", "ResidualBlock": "units", "StaticConv": "units", "Step": "units",
    "channel_units": "channel_graph", "step_units": "units", "walk": "units",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prunelab.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"prunelab.models.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
