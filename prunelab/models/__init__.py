"""CIFAR-style CNNs with explicit per-layer widths: VGG-11/16/19 and ResNet-20/32/56/110."""

from prunelab.models.registry import MODELS, ModelSpec, build_model, list_models, model_spec, spec_of
from prunelab.models.resnet import BasicBlock, ResNet
from prunelab.models.units import NoGate
from prunelab.models.vgg import VGG, ConvUnit

__all__ = [
    "MODELS",
    "VGG",
    "BasicBlock",
    "ConvUnit",
    "ModelSpec",
    "NoGate",
    "ResNet",
    "build_model",
    "list_models",
    "model_spec",
    "spec_of",
]
