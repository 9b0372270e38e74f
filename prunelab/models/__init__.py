"""CIFAR-style CNNs with explicit per-layer widths: VGG-11/16/19 and ResNet-20/32/56/110."""

from prunelab.models.registry import MODELS, ModelSpec, build_model, list_models, model_spec, spec_of
from prunelab.models.resnet import BasicBlock, ResNet
from prunelab.models.units import (
    ChannelUnit,
    Head,
    NoGate,
    Pool,
    ResidualBlock,
    StaticConv,
    Step,
    channel_units,
    walk,
)
from prunelab.models.vgg import VGG, ConvUnit

__all__ = [
    "MODELS",
    "VGG",
    "BasicBlock",
    "ChannelUnit",
    "ConvUnit",
    "Head",
    "ModelSpec",
    "NoGate",
    "Pool",
    "ResNet",
    "ResidualBlock",
    "StaticConv",
    "Step",
    "build_model",
    "channel_units",
    "list_models",
    "model_spec",
    "spec_of",
    "walk",
]
