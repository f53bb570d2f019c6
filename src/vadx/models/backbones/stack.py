"""A plain per-frame CNN described layer by layer — what an imported Keras CNN becomes.

``ConvStack(layers=[...])`` builds a :class:`~torch.nn.Sequential` ``features`` from a list of
layer specifications (mappings, JSON-ready, stored in the checkpoint's ``backbone_args``):

* ``{"type": "conv", "filters": 64, "kernel": [3, 3], "strides": [1, 1],
  "padding": "same" | "valid", "dilation": [1, 1], "bias": true, "activation": "relu"}``
* ``{"type": "batchnorm", "epsilon": 0.001}``
* ``{"type": "maxpool", "pool": [2, 2], "strides": [2, 2], "padding": "valid" | "same"}``
* ``{"type": "activation", "activation": "relu"}``
* ``{"type": "dropout", "rate": 0.25}``

``"same"`` pads like TensorFlow/Keras (output ``ceil(input / stride)``, the extra pixel at the
bottom and right). Every layer may carry a ``"name"`` (its Keras name), which becomes an alias:
a conv's name points at its activation's output, as Keras' ``model.get_layer(name).output``.
Grad-CAM's default layer is the last conv; LayerCAM's the last conv at stride 8.

>>> import torch
>>> net = ConvStack(layers=[
...     {"type": "conv", "filters": 4, "padding": "same", "activation": "relu", "name": "c1"},
...     {"type": "maxpool", "pool": [2, 2], "name": "p1"}])
>>> net(torch.zeros(1, 3, 8, 10)).shape, net.aliases["c1"]
(torch.Size([1, 4, 4, 5]), 'features.1')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vadx.errors import ConfigError
from vadx.models.activations import activation, check_activation
from vadx.models.backbones.base import Backbone, load_matching_state_dict, register_backbone
from vadx.models.backbones.efficientnet_lite import SameConv2d
from vadx.models.backbones.padding import same_pads

STACK_LAYER_TYPES = ("conv", "batchnorm", "maxpool", "activation", "dropout")


class SameMaxPool2d(nn.MaxPool2d):
    """MaxPool2d with TensorFlow "same" padding (padded cells never win)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(x.shape[-2:], self.kernel_size, self.stride)
        return F.max_pool2d(F.pad(x, pads, value=-math.inf), self.kernel_size, self.stride)


@register_backbone("conv_stack")
class ConvStack(Backbone):
    """A sequence of conv / batch-norm / max-pool / activation / dropout layers.

    Args:
        layers: the layer specifications (see the module docstring).
    """

    def __init__(self, layers: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        if not any(_kind(spec) == "conv" for spec in layers):
            raise ConfigError("a conv_stack backbone needs at least one conv layer")
        modules: list[nn.Module] = []
        self.aliases = {}
        self._conv_indices: list[int] = []
        self._strides: list[int] = []  # cumulative stride after each module
        conv_outputs: list[int] = []  # a conv's output after its activation
        channels, stride = 3, 1
        for position, spec in enumerate(layers):
            kind = _kind(spec)
            first = len(modules)
            if kind == "conv":
                module, stride = _conv(spec, channels), stride * _pair(spec, "strides", 1)[0]
                channels = module.out_channels
                self._conv_indices.append(first)
                modules.append(module)
                if spec.get("activation", "linear") != "linear":
                    modules.append(activation(spec["activation"]))
                conv_outputs.append(len(modules) - 1)
            elif kind == "batchnorm":
                modules.append(nn.BatchNorm2d(channels, eps=float(spec.get("epsilon", 1e-3))))
            elif kind == "maxpool":
                pool = _pair(spec, "pool", 2)
                strides = _pair(spec, "strides", 1) if spec.get("strides") else pool
                same = _padding(spec) == "same"
                modules.append((SameMaxPool2d if same else nn.MaxPool2d)(pool, strides))
                stride *= strides[0]
            elif kind == "activation":
                modules.append(activation(spec.get("activation", "linear")))
            else:
                modules.append(nn.Dropout(float(spec.get("rate", 0.0))))
            self._strides += [stride] * (len(modules) - first)
            name = spec.get("name") or f"{kind}{position}"
            self.aliases[str(name)] = f"features.{len(modules) - 1}"
        self.features = nn.Sequential(*modules)
        self.layer_specs = [dict(spec) for spec in layers]
        self.out_channels = channels
        self.default_layer = f"features.{conv_outputs[-1]}"
        fine = [i for i in conv_outputs if self._strides[i] == 8]
        self.fine_layer = f"features.{fine[-1]}" if fine else None
        self.min_input_size = self._smallest_input()

    def _smallest_input(self) -> int:
        for size in range(1, 4097):
            if _output_side(size, self.layer_specs) >= 1:
                return size
        raise ConfigError("the conv_stack shrinks every input below one pixel")

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames)

    def layer_names(self) -> list[str]:
        return [f"features.{i}" for i in range(len(self.features))]

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        units = []
        for k, start in enumerate(self._conv_indices):
            end = self._conv_indices[k + 1] if k + 1 < len(self._conv_indices) else None
            modules = list(self.features[start:end])
            units.append((f"features.{start}", modules))
        return units

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        hint = "Expected this conv_stack's own state dict (features.N.weight …)"
        load_matching_state_dict(self, state_dict, "features.", source, hint)


def _kind(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in STACK_LAYER_TYPES:
        raise ConfigError(
            f"conv_stack layer {spec!r} must have a type among {', '.join(STACK_LAYER_TYPES)}"
        )
    return str(kind)


def _pair(spec: Mapping[str, Any], key: str, default: int) -> tuple[int, int]:
    value = spec.get(key, default)
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ConfigError(f"conv_stack layer {spec!r}: {key} must be one or two positive ints")
    return pair  # type: ignore[return-value]


def _padding(spec: Mapping[str, Any]) -> str:
    padding = spec.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise ConfigError(f"conv_stack layer {spec!r}: padding must be valid or same")
    return padding


def _conv(spec: Mapping[str, Any], in_channels: int) -> nn.Conv2d:
    filters = spec.get("filters")
    if not (isinstance(filters, int) and filters > 0):
        raise ConfigError(f"conv_stack layer {spec!r}: filters must be a positive integer")
    check_activation(spec.get("activation", "linear"))
    kernel, strides = _pair(spec, "kernel", 3), _pair(spec, "strides", 1)
    dilation = _pair(spec, "dilation", 1)
    bias = bool(spec.get("bias", True))
    if _padding(spec) == "same" and dilation != (1, 1) and strides != (1, 1):
        raise ConfigError(f"conv_stack layer {spec!r}: 'same' with both strides and dilation")
    if _padding(spec) == "valid":
        return nn.Conv2d(in_channels, filters, kernel, strides, 0, dilation, bias=bias)
    if strides == (1, 1) and all(
        (d * (k - 1)) % 2 == 0 for k, d in zip(kernel, dilation, strict=True)
    ):
        pad = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
        return nn.Conv2d(in_channels, filters, kernel, 1, pad, dilation, bias=bias)
    if dilation != (1, 1):
        raise ConfigError(f"conv_stack layer {spec!r}: 'same' with an even dilated kernel")
    return SameConv2d(in_channels, filters, kernel, strides, bias=bias)


def _output_side(size: int, layers: Sequence[Mapping[str, Any]]) -> int:
    """Output side of a square input of ``size`` (0 or less: too small)."""
    for spec in layers:
        kind = spec["type"]
        if kind not in ("conv", "maxpool"):
            continue
        key = "kernel" if kind == "conv" else "pool"
        k = _pair(spec, key, 3 if kind == "conv" else 2)[0]
        s = _pair(spec, "strides", 1 if kind == "conv" else k)[0]
        d = _pair(spec, "dilation", 1)[0] if kind == "conv" else 1
        if spec.get("padding", "valid") == "same":
            size = math.ceil(size / s)
        else:
            size = (size - d * (k - 1) - 1) // s + 1
        if size < 1:
            return 0
    return size
