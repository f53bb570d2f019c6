"""Per-frame CNNs: the registry and the built-in backbones (VGG19, EfficientNet-Lite0, and
the layer-by-layer ``conv_stack`` imported Keras CNNs become)."""

from vadx.models.backbones.base import (
    Backbone,
    available_backbones,
    build_backbone,
    register_backbone,
)
from vadx.models.backbones.efficientnet_lite import EfficientNetLite0
from vadx.models.backbones.stack import ConvStack
from vadx.models.backbones.vgg import VGG19

__all__ = [
    "VGG19",
    "Backbone",
    "ConvStack",
    "EfficientNetLite0",
    "available_backbones",
    "build_backbone",
    "register_backbone",
]
