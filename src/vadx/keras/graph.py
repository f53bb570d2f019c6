"""A Keras model config as one chain of layers, nested models and wrappers unfolded.

``TimeDistributed(vgg19)`` becomes the 22 layers of the VGG19 (marked per-frame), a
``Sequential`` inside a ``Sequential`` becomes its layers: what remains is the order in which
a clip flows through the model, each layer with where its weights are stored. Functional
models must be a single chain (each layer fed by the one before); both the Keras 3 and the
tf.keras 2 config dialects are read (``batch_shape``/``batch_input_shape``, inbound nodes as
``__keras_tensor__`` or nested lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vadx.errors import ModelImportError
from vadx.keras.files import KerasObject

MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass(frozen=True)
class Layer:
    """One layer of the chain.

    Attributes:
        kind: the Keras class name (``Conv2D``, ``GRU`` …).
        config: the layer's config.
        top: the top-level layer holding its weights (``time_distributed``).
        per_frame: inside a ``TimeDistributed`` wrapper.
    """

    kind: str
    config: dict[str, Any]
    top: str
    per_frame: bool

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.kind))


@dataclass(frozen=True)
class Chain:
    """The model's layers in order and its input shape ``(T, H, W, C)`` (None: not fixed)."""

    layers: list[Layer]
    input_shape: tuple[int | None, ...]


def read_chain(model_config: KerasObject) -> Chain:
    """Unfold ``model_config`` (``{"class_name", "config"}`` of the whole model)."""
    if model_config.get("class_name") not in MODEL_CLASSES:
        raise ModelImportError(
            f"the file holds a {model_config.get('class_name')!r}, not a Keras model "
            f"({', '.join(MODEL_CLASSES)})"
        )
    shape = _input_shape(model_config)
    layers = list(_unfold(model_config, top=None, per_frame=False))
    if shape is None:
        raise ModelImportError("the model config does not say its input shape")
    if len(shape) != 4:
        raise ModelImportError(
            f"the model's input is {shape} per sample; vadx imports video models whose input "
            "is (frames, height, width, 3), i.e. (None, T, H, W, 3) with the batch"
        )
    return Chain(layers, shape)


def _unfold(model_config: KerasObject, top: str | None, per_frame: bool) -> Iterator[Layer]:
    for entry in _chain_order(model_config):
        kind, config = entry["class_name"], entry.get("config", {})
        name = config.get("name", kind)
        if kind == "InputLayer":
            continue
        if kind in MODEL_CLASSES:
            yield from _unfold(entry, top or name, per_frame)
        elif kind == "TimeDistributed":
            inner = config.get("layer", {})
            if inner.get("class_name") in MODEL_CLASSES:
                yield from _unfold(inner, top or name, True)
            else:
                yield Layer(
                    inner.get("class_name", "?"), inner.get("config", {}), top or name, True
                )
        else:
            yield Layer(kind, config, top or name, per_frame)


def _chain_order(model_config: KerasObject) -> list[KerasObject]:
    """The layers of a Sequential, or of a Functional model that is one chain."""
    layers = model_config.get("config", {}).get("layers", [])
    if model_config["class_name"] == "Sequential":
        return layers
    previous = None
    for entry in layers:
        inputs = _inbound_names(entry)
        name = entry.get("config", {}).get("name", entry.get("name"))
        if entry["class_name"] != "InputLayer" and inputs != [previous]:
            raise ModelImportError(
                f"layer {name!r} takes its input from {inputs or 'nothing'}, not from the layer "
                f"before it ({previous!r}): vadx imports models that are one chain of layers "
                "(no branches, skips or several inputs)"
            )
        previous = name
    return layers


def _inbound_names(entry: KerasObject) -> list[str]:
    """Names of the layers feeding ``entry`` (Keras 3 and tf.keras 2 dialects)."""
    names = []
    for node in entry.get("inbound_nodes", []):
        if isinstance(node, dict):  # Keras 3: {"args": [tensor…], "kwargs": {}}
            for arg in node.get("args", []):
                for tensor in arg if isinstance(arg, list) else [arg]:
                    if isinstance(tensor, dict) and "keras_history" in tensor.get("config", {}):
                        names.append(tensor["config"]["keras_history"][0])
        else:  # tf.keras 2: [[name, node_index, tensor_index, kwargs], …]
            names += [inbound[0] for inbound in node]
    return names


def _input_shape(model_config: KerasObject) -> tuple[int | None, ...] | None:
    """The model's input shape without the batch axis."""
    config = model_config.get("config", {})
    candidates = [config.get("build_input_shape")]
    for entry in config.get("layers", []):
        layer_config = entry.get("config", {})
        candidates += [layer_config.get("batch_shape"), layer_config.get("batch_input_shape")]
        break  # only the first layer says the model's input
    for shape in candidates:
        if isinstance(shape, list | tuple) and len(shape) >= 2:
            return tuple(shape[1:])
    return None
