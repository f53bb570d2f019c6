"""The MLP head after the RNN: the standard one vadx trains, or an explicit (imported) one.

The standard head is ``head_hidden`` Linear → ReLU → Dropout blocks, then the class layer. An
explicit head (``CRNNConfig.head_layers``, what :mod:`vadx.keras` writes for a Keras head that
is not of that form) is a list of layers, each a mapping:

* ``{"type": "dense", "units": n, "activation": "relu"}`` — a Linear layer and its activation;
* ``{"type": "batchnorm", "epsilon": 1e-3}`` — batch-norm over the features;
* ``{"type": "dropout", "rate": 0.5}``;
* ``{"type": "activation", "activation": "tanh"}``.

It ends with the class layer: a ``dense`` layer with one unit per class and a ``linear``
activation (the logits; probabilities are their softmax).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from vadx.errors import ConfigError
from vadx.models.activations import activation, check_activation

HEAD_LAYER_TYPES = ("dense", "batchnorm", "dropout", "activation")


def check_head_layers(layers: Sequence[Mapping[str, Any]], num_classes: int) -> None:
    """Raise :class:`ConfigError` unless ``layers`` is a valid explicit head."""
    for position, layer in enumerate(layers):
        kind = layer.get("type") if isinstance(layer, Mapping) else None
        if kind not in HEAD_LAYER_TYPES:
            raise ConfigError(
                f"head layer {position} ({layer!r}) must have a type among "
                f"{', '.join(HEAD_LAYER_TYPES)}"
            )
        if kind == "dense" and not (isinstance(layer.get("units"), int) and layer["units"] > 0):
            raise ConfigError(f"head layer {position}: dense units must be a positive integer")
        if kind in ("dense", "activation"):
            check_activation(layer.get("activation", "linear"))
        if kind == "dropout" and not 0 <= layer.get("rate", -1) < 1:
            raise ConfigError(f"head layer {position}: dropout rate must be in [0, 1)")
        if kind == "batchnorm" and not layer.get("epsilon", 0) > 0:
            raise ConfigError(f"head layer {position}: batchnorm epsilon must be positive")
    last = layers[-1] if layers else {}
    if (
        last.get("type") != "dense"
        or last.get("units") != num_classes
        or last.get("activation", "linear") != "linear"
    ):
        raise ConfigError(
            f"an explicit head must end with the class layer: a linear dense layer of "
            f"{num_classes} units (one per class), got {last!r}"
        )


def hidden_widths(layers: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    """Widths of an explicit head's dense layers before the class layer."""
    return tuple(int(layer["units"]) for layer in layers if layer["type"] == "dense")[:-1]


def build_head(
    in_features: int,
    num_classes: int,
    hidden: Sequence[int],
    dropout: float,
    layers: Sequence[Mapping[str, Any]] = (),
) -> nn.Sequential:
    """The head: explicit ``layers`` when given, else the standard MLP of ``hidden`` widths."""
    if not layers:
        layers = [
            spec
            for width in hidden
            for spec in (
                {"type": "dense", "units": width, "activation": "relu"},
                {"type": "dropout", "rate": dropout},
            )
        ]
        layers.append({"type": "dense", "units": num_classes, "activation": "linear"})
    modules: list[nn.Module] = []
    width = in_features
    for layer in layers:
        kind = layer["type"]
        if kind == "dense":
            modules.append(nn.Linear(width, int(layer["units"])))
            width = int(layer["units"])
            if layer.get("activation", "linear") != "linear":
                modules.append(activation(layer["activation"]))
        elif kind == "batchnorm":
            modules.append(nn.BatchNorm1d(width, eps=float(layer["epsilon"])))
        elif kind == "dropout":
            modules.append(nn.Dropout(float(layer["rate"])))
        else:
            modules.append(activation(layer["activation"]))
    return nn.Sequential(*modules)
