"""Training settings and presets.

Defaults follow the reference: SGD at learning rate 0.01, L2 0.01 on the dense layers (as
weight decay on the head's weights — Keras' ``kernel_regularizer``), brightness/flip/zoom
augmentation, class weights for imbalanced data. Presets bundle a model size with training
settings:

* ``paper`` — the reference model (VGG19, 20 × 112², GRU 1024, MLP 1024-512-128), SGD 0.01 without
  momentum, up to 200 epochs, early stopping after 20: meant for a GPU.
* ``cpu`` — the same shape made practical on 2 CPU cores by transfer learning: ImageNet
  EfficientNet-Lite0 (shipped, offline) on 20 × 112² frames, all of it frozen but its last
  unit (the 1×1 head conv + batch-norm); the frozen prefix's maps are computed once and cached,
  and the head conv, a GRU of 256 and a smaller MLP (one hidden layer of 64, not the reference's
  1024-512-128) train on them with AdamW.
* ``cpu-scratch`` — everything trained end to end on 2 cores: a VGG19 of 1/8 width with
  batch-norm (without it a narrow VGG19 did not leave chance level in 20 epochs here) on 64²
  frames, 10 frames a clip, GRU 128, a smaller MLP (64-32), AdamW 1e-3 with a cosine schedule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from vadx.errors import ConfigError
from vadx.models.config import CRNNConfig, checked_replace

#: the terms of the explanation loss (:mod:`vadx.train.explanation_loss`)
TERMS = ("cam", "input_gradient")


@dataclass(frozen=True)
class ExplanationLoss:
    """The weights of the explanation terms (:mod:`vadx.train.explanation_loss`); 0 leaves a
    term out."""

    cam: float = 0.0
    input_gradient: float = 0.0

    def __post_init__(self) -> None:
        for name in TERMS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"explanation loss weight {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"explanation loss weight {name} must be finite and ≥ 0, got {value}"
                )
        if not any(getattr(self, name) for name in TERMS):
            raise ConfigError(
                "give the explanation loss a positive weight: cam=W, input_gradient=W"
            )

    @classmethod
    def parse(cls, text: str) -> ExplanationLoss:
        """``"cam=1,input_gradient=0.001"``; a bare name weighs 1 (``"cam"``)."""
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in TERMS:
                raise ConfigError(
                    f"unknown explanation loss term {name!r}; choose from {', '.join(TERMS)}"
                )
            try:
                weights[name] = float(value) if value.strip() else 1.0
            except ValueError:
                raise ConfigError(f"the weight of {name} must be a number, got {value!r}") from None
        return cls(**weights)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExplanationLoss:
        unknown = set(data) - set(TERMS)
        if unknown:
            raise ConfigError(f"unknown explanation loss term(s) {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """How a CRNN is trained.

    Attributes:
        epochs: most epochs to run.
        batch_size: clips per step (per process under DDP).
        optimizer: ``"sgd"`` (reference) or ``"adamw"``.
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 on the head's weights (the reference's dense-layer L2 0.01).
        schedule: ``"constant"`` or ``"cosine"`` (annealed to 0 over ``epochs``).
        augment: brightness/flip/zoom augmentation of training clips.
        class_weights: weight the loss by inverse class frequency.
        patience: stop after this many epochs without a better validation score (0: never).
        seed: seeds initialisation, shuffling, augmentation and dropout.
        workers: decoding processes (None: CPU count, at most 8).
        cache_features: compute what the frozen part of the backbone gives once and train on
            it: per-frame features for ``freeze="all"`` (RNN + head train), the frozen prefix's
            maps for ``freeze=N`` (the last N units, RNN and head train). Needs no
            augmentation.
        val_fraction: share of the training data held out for validation when the dataset has
            no validation split.
        explanation_loss: weights of the terms that penalise attribution outside the clips'
            masks, ``{"cam": 1.0, "input_gradient": 0.001}`` (:class:`ExplanationLoss`); None
            (default): none.
    """

    epochs: int = 200
    batch_size: int = 8
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.01
    schedule: Literal["constant", "cosine"] = "constant"
    augment: bool = True
    class_weights: bool = True
    patience: int = 20
    seed: int = 0
    workers: int | None = None
    cache_features: bool = False
    val_fraction: float = 0.2
    explanation_loss: dict[str, float] | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.optimizer in ("sgd", "adamw"), "optimizer must be sgd or adamw"),
            (self.lr > 0 and math.isfinite(self.lr), "lr must be a positive finite number"),
            (
                math.isfinite(self.momentum) and math.isfinite(self.weight_decay),
                "momentum and weight_decay must be finite",
            ),
            (self.momentum >= 0 and self.weight_decay >= 0, "momentum and weight_decay ≥ 0"),
            (self.schedule in ("constant", "cosine"), "schedule must be constant or cosine"),
            (self.patience >= 0, "patience must be ≥ 0"),
            (0 < self.val_fraction < 1, "val_fraction must be in (0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message} (training settings {self})")
        if self.explanation_loss is not None:
            ExplanationLoss.from_dict(dict(self.explanation_loss))  # raises on bad weights

    @property
    def explanation(self) -> ExplanationLoss | None:
        """The explanation loss's weights, or None without one."""
        if self.explanation_loss is None:
            return None
        return ExplanationLoss.from_dict(dict(self.explanation_loss))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and validated)."""
        return checked_replace(self, "training", changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """A model size, its training settings, and the backbone weights to start from."""

    model: dict[str, Any]
    training: TrainConfig
    weights: str | None = None
    summary: str = ""


PRESETS: dict[str, Preset] = {
    "paper": Preset({}, TrainConfig(), None, "the reference model and SGD recipe (for a GPU)"),
    "cpu": Preset(
        {
            "backbone": "efficientnet_lite0",
            "freeze": 1,
            "num_frames": 20,
            "frame_size": (112, 112),
            "rnn_hidden": 256,
            "head_hidden": (64,),
            "dropout": 0.5,
        },
        TrainConfig(
            epochs=40,
            batch_size=8,
            optimizer="adamw",
            lr=1e-3,
            weight_decay=1e-3,
            patience=12,
            augment=False,
            cache_features=True,
        ),
        "imagenet",
        "ImageNet EfficientNet-Lite0, last unit fine-tuned on cached maps; GRU + MLP",
    ),
    "cpu-scratch": Preset(
        {
            "backbone_args": {"width": 0.125, "batch_norm": True},
            "num_frames": 10,
            "frame_size": (64, 64),
            "rnn_hidden": 128,
            "head_hidden": (64, 32),
            "dropout": 0.3,
        },
        TrainConfig(
            epochs=25,
            batch_size=8,
            optimizer="adamw",
            lr=1e-3,
            schedule="cosine",
            patience=0,
            weight_decay=1e-3,
        ),
        None,
        "VGG19 (1/8 width, batch-norm) trained end to end from scratch",
    ),
}


def preset(
    name: str, class_names: tuple[str, ...], normal_class: str | None
) -> tuple[CRNNConfig, TrainConfig, str | None]:
    """The model configuration, training settings and backbone weights of preset ``name``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    chosen = PRESETS[name]
    config = CRNNConfig(class_names=class_names, normal_class=normal_class, **chosen.model)
    return config, chosen.training, chosen.weights
