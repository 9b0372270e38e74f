"""Datasets as uint8 tensors (``ImageDataset``), ``load_dataset(cfg)`` and the ``BatchLoader``.

Sources: the embedded procedural ``shapes`` set (default), torchvision sets and ``folder:PATH``.
"""

from prunelab.data.base import DatasetError, ImageDataset, channel_stats, default_cache_dir
from prunelab.data.dataset import clear_memory_cache, load_dataset
from prunelab.data.loader import BatchLoader, normalize
from prunelab.data.shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from prunelab.data.shapes import generate_shapes
from prunelab.data.torchvision_sets import TORCHVISION_SETS

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
