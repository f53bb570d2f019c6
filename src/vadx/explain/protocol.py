"""What explanation methods need from a model: the stages of a per-frame CNN + sequence model.

A model is explainable when it is an ``nn.Module`` that splits its forward pass into three
stages the methods run apart — the CNN on every frame, per-frame pooling, and the sequence
model with its head — and names its backbone's layers::

    clip (B, T, 3, H, W)
      --frame_maps-->      (B, T, C, h, w)     the per-frame CNN (``backbone``)
      --pool_maps-->       (B, T, F)           per-frame features
      --forward_features-> (B, K) logits       sequence model over time → head

The three stages compose to the model's function. :class:`~vadx.models.CRNN` is one such
model; any other providing the members of :class:`ExplainableModel` is explained the same way
(no subclassing needed). :func:`check_explainable` names what a model lacks.

>>> from vadx.models import CRNN
>>> isinstance(CRNN(backbone_args={"width": 0.0625}, rnn_hidden=8), ExplainableModel)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from vadx.errors import ConfigError

#: a value as JSON holds it: what a model's configuration is made of in the manifest
JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]


@runtime_checkable
class LayeredBackbone(Protocol):
    """The per-frame CNN, with named layers for the CAM methods' hooks."""

    def get_layer(self, name: str) -> nn.Module:
        """The layer called ``name``; :class:`ConfigError` naming some when there is none."""
        ...

    def cam_layer(self, fine: bool = False) -> str:
        """The CAM methods' default layer: the last conv block, or with ``fine`` a layer of
        finer resolution (LayerCAM's default)."""
        ...

    def modules(self) -> Iterator[nn.Module]:
        """Every module (guided backpropagation guides each ReLU among them)."""
        ...


@runtime_checkable
class ModelConfig(Protocol):
    """What the explanations read of a model's configuration."""

    #: per-channel mean and standard deviation the clips were normalised with (RGB in [0, 1])
    mean: Sequence[float]
    std: Sequence[float]

    def to_dict(self) -> Mapping[str, JsonValue]:
        """The configuration as JSON-ready data, for the manifest (where it is written as it
        is: its fields are the model's own)."""
        ...


@runtime_checkable
class ExplainableModel(Protocol):
    """An ``nn.Module`` made of a per-frame CNN and a sequence model (see the module doc).

    An explained model may also carry ``checkpoint`` (an object with a ``model_id``, as a
    model from :func:`vadx.load_model` does); the manifest records that id when present.
    """

    backbone: LayeredBackbone
    config: ModelConfig
    #: the classes of the logits, in order
    class_names: tuple[str, ...]
    #: the classes an ``"anomaly"`` target chooses from (every class but the normal one)
    anomaly_indices: Sequence[int]

    def class_index(self, name_or_index: str | int) -> int:
        """A class's index from its name or index; :class:`ConfigError` if there is none."""
        ...

    def check_clip(self, clip: torch.Tensor) -> None:
        """Raise :class:`~vadx.errors.InputError` unless the model can run on ``clip``."""
        ...

    def frame_maps(self, clip: torch.Tensor) -> torch.Tensor:
        """The backbone's maps of every frame: ``(B, T, 3, H, W) → (B, T, C, h, w)``."""
        ...

    def pool_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """Per-frame features: ``(..., C, h, w) → (..., F)``."""
        ...

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of per-frame features ``(B, T, F)``."""
        ...


#: the members of ExplainableModel that have members of their own
PARTS: dict[str, type] = {"backbone": LayeredBackbone, "config": ModelConfig}


def features_of(model: ExplainableModel, clip: torch.Tensor) -> torch.Tensor:
    """Per-frame features ``(B, T, F)`` of clips ``(B, T, 3, H, W)``: the first two stages."""
    return model.pool_maps(model.frame_maps(clip))


def logits_of(model: ExplainableModel, clip: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, K)`` of clips ``(B, T, 3, H, W)``: the three stages in turn."""
    return model.forward_features(features_of(model, clip))


def check_explainable(model: object) -> None:
    """Raise :class:`ConfigError` naming every member of :class:`ExplainableModel` — and of
    its ``backbone`` and ``config`` — that ``model`` lacks."""
    missing = [name for name in members(ExplainableModel) if not hasattr(model, name)]
    for part, protocol in PARTS.items():
        if hasattr(model, part):
            missing += [
                f"{part}.{name}"
                for name in members(protocol)
                if not hasattr(getattr(model, part), name)
            ]
    if not isinstance(model, nn.Module):
        missing.insert(0, "nn.Module (a torch module)")
    if missing:
        raise ConfigError(
            f"vadx explains per-frame CNN + sequence models (vadx.explain.protocol."
            f"ExplainableModel, e.g. vadx.models.CRNN); {type(model).__name__} lacks "
            f"{', '.join(missing)}"
        )


def members(protocol: type) -> list[str]:
    """The attributes and methods a protocol class declares, in order."""
    declared = [*getattr(protocol, "__annotations__", {})]
    declared += [
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    ]
    return declared
