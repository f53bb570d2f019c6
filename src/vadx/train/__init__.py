"""Training: settings and presets, the loop (checkpoints, resume, feature cache, DDP)."""

from vadx.train.config import PRESETS, Preset, TrainConfig, preset
from vadx.train.loop import EpochResult, TrainResult, class_weights, train

__all__ = [
    "PRESETS",
    "EpochResult",
    "Preset",
    "TrainConfig",
    "TrainResult",
    "class_weights",
    "preset",
    "train",
]
