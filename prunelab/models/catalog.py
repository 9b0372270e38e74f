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

# torchvision's classification models (`torchvision.models.list_models(module=torchvision.models)` for the pinned
# torchvision 0.29.1; a test keeps the two equal), built as `torchvision:NAME` (prunelab.models.torchvision_models)
TORCHVISION_PREFIX = "torchvision:"
TORCHVISION_NAMES: tuple[str, ...] = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "densenet121", "densenet161",
    "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
    "efficientnet_v2_m", "efficientnet_v2_s", "googlenet", "inception_v3", "maxvit_t", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "regnet_x_16gf",
    "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_8gf",
    "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf", "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf",
    "regnet_y_800mf", "regnet_y_8gf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s", "swin_t",
    "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2", "wide_resnet50_2",
)


def is_torchvision(name: str) -> bool:
    """True for a `torchvision:NAME` model name (known or not)."""
    return name.startswith(TORCHVISION_PREFIX)


def check_model_name(name: str) -> str:
    """`name` when it is a PruneLab model or `torchvision:` + a torchvision classification model, else ValueError
    listing the allowed names."""
    if name in MODEL_NAMES:
        return name
    if is_torchvision(name):
        arch = name[len(TORCHVISION_PREFIX):]
        if arch in TORCHVISION_NAMES:
            return name
        raise ValueError(f"unknown torchvision model {arch!r}; allowed after {TORCHVISION_PREFIX}: "
                         f"{', '.join(TORCHVISION_NAMES)}")
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODEL_NAMES)}, or {TORCHVISION_PREFIX}NAME "
                     "for a torchvision classification model (`python -m prunelab models` lists them)")
