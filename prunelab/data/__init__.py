"""Datasets as uint8 tensors (``ImageDataset``), ``load_dataset(cfg)`` and the ``BatchLoader``.

Sources: the embedded procedural ``shapes`` set (default), torchvision sets and ``folder:PATH``.
"""

import importlib
from typing import Any

# where each name lives; they load on first use, so that `prunelab.data.shapes_names` or the test-image
# pack's numpy reading imports no torch
_WHERE = {
    "DatasetError": ("base", "DatasetError"), "ImageDataset": ("base", "ImageDataset"),
    "channel_stats": ("base", "channel_stats"), "default_cache_dir": ("base", "default_cache_dir"),
    "clear_memory_cache": ("dataset", "clear_memory_cache"), "load_dataset": ("dataset", "load_dataset"),
    "BatchLoader": ("loader", "BatchLoader"), "normalize": ("loader", "normalize"),
    "SHAPES_CLASS_NAMES": ("shapes", "CLASS_NAMES"), "generate_shapes": ("shapes", "generate_shapes"),
    "TORCHVISION_SETS": ("torchvision_sets", "TORCHVISION_SETS"),
}

__all__ = [
    "SHAPES_CLASS_NAMES",
    "TORCHVISION_SETS",
    "BatchLoader",
    "DatasetError",
    "ImageDataset",
    "channel_stats",
    "clear_memory_cache",
    "default_cache_dir",
    "generate_shapes",
    "load_dataset",
    "normalize",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
