"""The model catalogue: every architecture's name and shape, as plain data (no torch).

`prunelab.models.registry` registers a factory for each name; `prunelab.config` validates model names
against `MODEL_NAMES` without importing torch-heavy modules.
"""

from __future__ import annotations

VGG_LAYERS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512],
}

RESNET_DEPTHS = {"resnet20": 20, "resnet32": 32, "resnet56": 56, "resnet110": 110}
MODEL_NAMES: tuple[str, ...] = (*VGG_LAYERS, *RESNET_DEPTHS)
