"""Models: per-frame backbones, the CRNN, pretrained weights and checkpoints."""

from vadx.models.backbones import (
    VGG19,
    Backbone,
    EfficientNetLite0,
    available_backbones,
    build_backbone,
    register_backbone,
)
from vadx.models.checkpoint import CheckpointInfo, load_model, read_checkpoint, save_model
from vadx.models.config import REFERENCE_CLASSES, CRNNConfig
from vadx.models.crnn import CRNN, fold_time, unfold_time
from vadx.models.weights import fetch_weights, load_backbone_weights, read_state_dict

__all__ = [
    "CRNN",
    "REFERENCE_CLASSES",
    "VGG19",
    "Backbone",
    "CRNNConfig",
    "CheckpointInfo",
    "EfficientNetLite0",
    "available_backbones",
    "build_backbone",
    "fetch_weights",
    "fold_time",
    "load_backbone_weights",
    "load_model",
    "read_checkpoint",
    "read_state_dict",
    "register_backbone",
    "save_model",
    "unfold_time",
]
