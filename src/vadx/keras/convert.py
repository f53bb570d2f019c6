"""A Keras video classifier → vadx's CRNN, with the weights converted exactly.

The chain of layers (:mod:`vadx.keras.graph`) is read in three parts:

1. per frame (inside ``TimeDistributed``): Conv2D / MaxPooling2D / BatchNormalization /
   Activation / ReLU / Dropout layers, then GlobalAveragePooling2D, GlobalMaxPooling2D or
   Flatten. VGG19's exact layout becomes vadx's ``vgg19`` backbone; anything else a
   ``conv_stack`` (:mod:`vadx.models.backbones.stack`) that keeps the Keras layer names.
2. the recurrent layers: GRU (``reset_after`` True or False), LSTM, stacked (same width) and
   ``Bidirectional`` (concatenated), the last one returning its final state.
3. the head: Dense / Dropout / BatchNormalization / Activation layers; the output is a softmax
   or a sigmoid. A one-unit sigmoid ``p = σ(z)`` becomes two classes with logits ``(0, z)``,
   whose softmax is exactly ``(1 − p, p)``.

Weight layouts: conv kernels ``(kh, kw, in, out)`` → ``(out, in, kh, kw)``; dense kernels are
transposed; Keras' GRU gates (z, r, h) are reordered to PyTorch's (r, z, n), its two bias rows
(input, recurrent) become ``bias_ih`` and ``bias_hh``; LSTM gates (i, f, c, o) already match
PyTorch's (i, f, g, o), its single bias goes to ``bias_ih``; Flatten's channels-last order is
folded into the first recurrent kernel; the BGR order of Keras' "caffe" preprocessing is folded
into the first convolution, so vadx feeds RGB as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

import numpy as np
import torch
from torch import nn

from vadx.errors import ModelImportError
from vadx.keras.files import KerasWeights
from vadx.keras.graph import Chain, Layer
from vadx.models.activations import ACTIVATION_NAMES
from vadx.models.backbones.vgg import VGG19_LAYOUT
from vadx.models.config import CRNNConfig
from vadx.models.crnn import CRNN

CONV_LAYERS = (
    "Conv2D",
    "MaxPooling2D",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "Dropout",
    "SpatialDropout2D",
)
POOLINGS = {"GlobalAveragePooling2D": "avg", "GlobalMaxPooling2D": "max", "Flatten": "flatten"}
RNN_LAYERS = ("GRU", "LSTM", "Bidirectional")
HEAD_LAYERS = ("Dense", "Dropout", "BatchNormalization", "Activation", "ReLU", "Softmax")
SUPPORTED = (
    "per frame (TimeDistributed): "
    + ", ".join(CONV_LAYERS)
    + ", then "
    + " / ".join(POOLINGS)
    + "; then "
    + ", ".join(RNN_LAYERS)
    + " (GRU or LSTM); then "
    + ", ".join(HEAD_LAYERS)
    + "; output softmax or sigmoid"
)


class ConvSpec(TypedDict):
    """A convolution of a ``conv_stack`` (:mod:`vadx.models.backbones.stack`; as in
    ``config.json``)."""

    type: Literal["conv"]
    name: str
    filters: int
    kernel: list[int]
    strides: list[int]
    padding: str
    dilation: list[int]
    bias: bool
    activation: str


class MaxPoolSpec(TypedDict):
    """A max-pooling of a ``conv_stack``."""

    type: Literal["maxpool"]
    name: str
    pool: list[int]
    strides: list[int]
    padding: str


class BatchNormSpec(TypedDict):
    """A batch-norm of a ``conv_stack`` (named) or of a head (``head_layers``)."""

    type: Literal["batchnorm"]
    name: NotRequired[str]
    epsilon: float


class ActivationSpec(TypedDict):
    """An activation layer of a ``conv_stack`` (named) or of a head."""

    type: Literal["activation"]
    name: NotRequired[str]
    activation: str


class DropoutSpec(TypedDict):
    """A dropout of a ``conv_stack`` (named) or of a head."""

    type: Literal["dropout"]
    name: NotRequired[str]
    rate: float


class DenseSpec(TypedDict):
    """A dense layer of a head (``head_layers``)."""

    type: Literal["dense"]
    units: int
    activation: str


#: a per-frame layer of a ``conv_stack`` backbone, as its ``backbone_args["layers"]`` hold it
FrameLayerSpec = ConvSpec | MaxPoolSpec | BatchNormSpec | ActivationSpec | DropoutSpec
#: a layer of an explicit head, as ``head_layers`` hold it
HeadLayerSpec = DenseSpec | DropoutSpec | BatchNormSpec | ActivationSpec


@dataclass
class Plan:
    """The vadx architecture of a Keras model, before classes and preprocessing are known."""

    frame: list[Layer]
    rnn: list[Layer]
    head: list[Layer]
    architecture: dict[str, Any]
    output: str
    #: outputs of the Keras model (a one-unit sigmoid is one output, two vadx classes)
    outputs: int
    ignored: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return 2 if self.output == "sigmoid" else self.outputs


def unsupported(layer: Layer, why: str = "") -> ModelImportError:
    """The error for a layer vadx cannot import, naming it and listing what is supported."""
    where = "inside TimeDistributed " if layer.per_frame else ""
    reason = f" ({why})" if why else ""
    return ModelImportError(
        f"cannot import layer {layer.name!r} ({layer.kind}) {where}at this place{reason}. "
        f"Supported: {SUPPORTED}"
    )


def plan(chain: Chain) -> Plan:
    """Map every layer of ``chain`` to vadx's CRNN, or raise naming the first that does not."""
    frame, rnn, head = _split(chain.layers)
    conv_layers, pooling = frame[:-1], POOLINGS[frame[-1].kind]
    ignored = [layer.name for layer in rnn if layer.kind == "Dropout"]
    rnn = [layer for layer in rnn if layer.kind != "Dropout"]
    backbone, backbone_args = _backbone(conv_layers)
    rnn_kind, hidden, bidirectional = _rnn(rnn)
    widths, dropout, head_layers, output = _head(head)
    outputs = widths[-1]
    if output == "sigmoid" and outputs != 1:
        raise unsupported(
            head[-1],
            f"a sigmoid over {outputs} units is multi-label; vadx "
            "imports a softmax, or a sigmoid of one unit (binary)",
        )
    if _is_standard(head_layers):
        head_layers = []
    elif output == "sigmoid":
        head_layers[-1] = {**head_layers[-1], "units": 2}
    architecture = {
        "backbone": backbone,
        "backbone_args": backbone_args,
        "pooling": pooling,
        "rnn": rnn_kind,
        "rnn_hidden": hidden,
        "rnn_layers": len(rnn),
        "rnn_bidirectional": bidirectional,
        "head_hidden": tuple(widths[:-1]),
        "dropout": 0.0 if head_layers else dropout,
        "head_layers": tuple(head_layers),
    }
    return Plan(conv_layers, rnn, head, architecture, output, outputs, ignored)


def build(found: Plan, weights: KerasWeights, base: CRNNConfig, bgr: bool) -> CRNN:
    """The CRNN of ``found`` with the Keras weights; ``base`` gives the classes, clip length,
    frame size and normalisation; ``bgr`` folds a BGR channel order into the first conv."""
    model = CRNN(base.replace(**found.architecture)).eval()
    with torch.no_grad():
        _load_backbone(model, found.frame, weights, bgr)
        _load_rnn(model, found.rnn, weights, found.architecture["pooling"])
        _load_head(model, found.head, weights, sigmoid=found.output == "sigmoid")
    return model


# ------------------------------------------------------------------------ structure
def _split(layers: list[Layer]) -> tuple[list[Layer], list[Layer], list[Layer]]:
    """Per-frame layers (ending with the pooling), recurrent layers, head layers."""
    first_rnn = next((i for i, layer in enumerate(layers) if layer.kind in RNN_LAYERS), None)
    if first_rnn is None:
        raise ModelImportError(f"the model has no recurrent layer. Supported: {SUPPORTED}")
    frame, rest = layers[:first_rnn], layers[first_rnn:]
    while frame and frame[-1].kind == "Dropout":
        rest.insert(0, frame.pop())  # dropout on the feature sequence: before the RNN
    pools = [i for i, layer in enumerate(frame) if layer.kind in POOLINGS]
    for layer in frame[: pools[0] + 1 if pools else len(frame)]:
        if layer.kind not in (*CONV_LAYERS, *POOLINGS) or not layer.per_frame:
            raise unsupported(layer, "" if layer.per_frame else "not inside TimeDistributed")
        _check_channels_last(layer)
    if not pools or pools[0] != len(frame) - 1:
        where = frame[pools[0] + 1] if pools and pools[0] + 1 < len(frame) else rest[0]
        raise unsupported(where, "the per-frame CNN must end with one " + " / ".join(POOLINGS))
    end = next(
        (i for i, layer in enumerate(rest) if layer.kind not in (*RNN_LAYERS, "Dropout")), len(rest)
    )
    rnn, head = rest[:end], rest[end:]
    for layer in head:
        if layer.kind not in HEAD_LAYERS or layer.per_frame:
            raise unsupported(layer)
    if not any(layer.kind == "Dense" for layer in head):
        raise ModelImportError(
            f"the model has no Dense layer after its RNN. Supported: {SUPPORTED}"
        )
    return frame, rnn, head


def _check_channels_last(layer: Layer) -> None:
    """Refuse channels-first layers and batch-norms over another axis than the last."""
    if layer.config.get("data_format", "channels_last") != "channels_last":
        raise unsupported(layer, "channels_first; save the model channels_last")
    axis = layer.config.get("axis", -1)
    last = 3 if layer.per_frame else 1  # (h, w, c) per frame; (features,) in the head
    if layer.kind == "BatchNormalization" and axis not in (-1, last, [-1], [last]):
        raise unsupported(layer, f"batch-norm over axis {axis}, not the last")


def _backbone(layers: list[Layer]) -> tuple[str, dict[str, list[FrameLayerSpec]]]:
    specs = [_conv_spec(layer) for layer in layers]
    if not any(spec["type"] == "conv" for spec in specs):
        raise ModelImportError(f"the per-frame CNN has no Conv2D. Supported: {SUPPORTED}")
    if _is_vgg19(specs):
        return "vgg19", {}
    return "conv_stack", {"layers": specs}


def _conv_spec(layer: Layer) -> FrameLayerSpec:
    c, name = layer.config, layer.name
    if layer.kind == "Conv2D":
        if c.get("groups", 1) != 1:
            raise unsupported(layer, "grouped convolution")
        return {
            "type": "conv",
            "name": name,
            "filters": int(c["filters"]),
            "kernel": list(c["kernel_size"]),
            "strides": list(c.get("strides", (1, 1))),
            "padding": c.get("padding", "valid"),
            "dilation": list(c.get("dilation_rate", (1, 1))),
            "bias": bool(c.get("use_bias", True)),
            "activation": _activation(layer),
        }
    if layer.kind == "MaxPooling2D":
        pool = list(c.get("pool_size", (2, 2)))
        return {
            "type": "maxpool",
            "name": name,
            "pool": pool,
            "strides": list(c.get("strides") or pool),
            "padding": c.get("padding", "valid"),
        }
    if layer.kind == "BatchNormalization":
        return {"type": "batchnorm", "name": name, "epsilon": float(c.get("epsilon", 1e-3))}
    if layer.kind in ("Activation", "ReLU"):
        return {"type": "activation", "name": name, "activation": _activation(layer)}
    return {"type": "dropout", "name": name, "rate": float(c.get("rate", 0.0))}


def _activation(layer: Layer) -> str:
    """The activation of a layer with an ``activation`` (or a plain ``ReLU`` layer)."""
    c = layer.config
    if layer.kind == "ReLU":
        cap = c.get("max_value")
        if c.get("negative_slope", 0) or c.get("threshold", 0) or cap not in (None, 6):
            raise unsupported(layer, "a leaky, thresholded or capped ReLU other than relu6")
        return "relu" if cap is None else "relu6"
    name = c.get("activation", "linear")
    if isinstance(name, dict):  # a serialised function: {"class_name": "function", "config": …}
        name = name.get("config", name.get("class_name"))
    if name not in ACTIVATION_NAMES:
        raise unsupported(layer, f"activation {name!r}; supported: {', '.join(ACTIVATION_NAMES)}")
    return str(name)


def _is_vgg19(specs: list[FrameLayerSpec]) -> bool:
    expected: list[dict[str, Any]] = []
    for spec in VGG19_LAYOUT:
        if spec == "M":
            expected.append(
                {"type": "maxpool", "pool": [2, 2], "strides": [2, 2], "padding": "valid"}
            )
        else:
            expected.append(
                {
                    "type": "conv",
                    "filters": spec,
                    "kernel": [3, 3],
                    "strides": [1, 1],
                    "padding": "same",
                    "dilation": [1, 1],
                    "bias": True,
                    "activation": "relu",
                }
            )
    return [{k: v for k, v in s.items() if k != "name"} for s in specs] == expected


def _rnn(layers: list[Layer]) -> tuple[str, int, bool]:
    kinds = set()
    for position, layer in enumerate(layers):
        inner = layer
        if layer.kind == "Bidirectional":
            if layer.config.get("merge_mode", "concat") != "concat":
                raise unsupported(layer, "merge_mode other than concat")
            wrapped = layer.config["layer"]
            inner = Layer(wrapped["class_name"], wrapped["config"], layer.top, False)
            if inner.kind not in ("GRU", "LSTM"):
                raise unsupported(layer, f"Bidirectional around {inner.kind}")
        c = inner.config
        last = position == len(layers) - 1
        if bool(c.get("return_sequences")) == last:
            raise unsupported(
                layer,
                "the last recurrent layer must return its final state only "
                "(return_sequences=False), the others every step",
            )
        for key, default in (
            ("go_backwards", False),
            ("stateful", False),
            ("activation", "tanh"),
            ("recurrent_activation", "sigmoid"),
        ):
            if c.get(key, default) != default:
                raise unsupported(layer, f"{key}={c.get(key)!r}")
        if c.get("return_state"):
            raise unsupported(layer, "return_state=True")
        kind = inner.kind.lower()
        if kind == "gru" and not c.get("reset_after", True):
            kind = "gru_reset_before"
        kinds.add((kind, int(c["units"]), layer.kind == "Bidirectional"))
    if len(kinds) != 1:
        raise unsupported(
            layers[-1],
            "stacked recurrent layers must be of one kind, width and "
            f"direction; found {sorted(kinds)}",
        )
    return kinds.pop()


def _head(layers: list[Layer]) -> tuple[list[int], float, list[HeadLayerSpec], str]:
    """``(dense widths, dropout, explicit layers, output activation)``."""
    specs: list[HeadLayerSpec] = []
    output = None
    for position, layer in enumerate(layers):
        c = layer.config
        if output is not None:
            raise unsupported(layer, "after the output activation")
        if layer.kind in ("Dense", "Softmax", "Activation", "ReLU"):
            if layer.kind == "Dense":
                specs.append({"type": "dense", "units": int(c["units"]), "activation": "linear"})
            softmax = layer.kind == "Softmax" or c.get("activation") == "softmax"
            activation = "softmax" if softmax else _activation(layer)
        elif layer.kind == "Dropout":
            specs.append({"type": "dropout", "rate": float(c.get("rate", 0.0))})
            continue
        else:  # BatchNormalization
            _check_channels_last(layer)
            specs.append({"type": "batchnorm", "epsilon": float(c.get("epsilon", 1e-3))})
            continue
        is_last_dense = not any(later.kind == "Dense" for later in layers[position + 1 :])
        if activation in ("softmax", "sigmoid") and is_last_dense:
            output = activation
        elif activation == "softmax":
            raise unsupported(layer, "softmax before the class layer")
        elif activation != "linear":
            if specs and specs[-1]["type"] == "dense" and specs[-1]["activation"] == "linear":
                specs[-1]["activation"] = activation
            else:
                specs.append({"type": "activation", "activation": activation})
    if specs[-1]["type"] != "dense" or specs[-1]["activation"] != "linear":
        raise unsupported(
            layers[-1], "the model must end with its class layer (Dense) and a softmax or sigmoid"
        )
    widths = [spec["units"] for spec in specs if spec["type"] == "dense"]
    rates = {spec["rate"] for spec in specs if spec["type"] == "dropout"}
    return widths, (rates.pop() if len(rates) == 1 else 0.0), specs, output or "softmax"


def _is_standard(specs: list[HeadLayerSpec]) -> bool:
    """Whether ``specs`` is vadx's standard head: (Dense relu → Dropout r)* → Dense."""
    hidden = specs[:-1]
    rates = [spec.get("rate") for spec in hidden if spec["type"] == "dropout"]
    pattern = [("dense", "relu"), ("dropout", None)] if rates else [("dense", "relu")]
    if len(set(rates)) > 1 or len(hidden) % len(pattern):
        return False
    return all(
        (spec["type"], spec.get("activation")) == pattern[i % len(pattern)]
        for i, spec in enumerate(hidden)
    )


# ------------------------------------------------------------------------ weights
def _assign(target: torch.Tensor, value: np.ndarray, what: str) -> None:
    value_t = torch.as_tensor(np.ascontiguousarray(value), dtype=target.dtype)
    if tuple(value_t.shape) != tuple(target.shape):
        raise ModelImportError(
            f"weights of {what} have shape {tuple(value_t.shape)}, the model needs "
            f"{tuple(target.shape)}: the config and the weights do not belong together"
        )
    target.copy_(value_t)


def _bn_arrays(layer: Layer, weights: KerasWeights, width: int) -> list[np.ndarray]:
    """gamma, beta, moving mean, moving variance (ones/zeros where Keras has none)."""
    scale, center = layer.config.get("scale", True), layer.config.get("center", True)
    names = ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]
    found = dict(zip(names, weights.arrays(layer.top, layer.name, names), strict=True))
    return [
        found.get("gamma", np.ones(width)),
        found.get("beta", np.zeros(width)),
        found["moving_mean"],
        found["moving_variance"],
    ]


def _load_batchnorm(module: nn.Module, arrays: list[np.ndarray], name: str) -> None:
    for target, value in zip(
        (module.weight, module.bias, module.running_mean, module.running_var), arrays, strict=True
    ):
        _assign(target, value, name)


def _load_backbone(model: CRNN, layers: list[Layer], weights: KerasWeights, bgr: bool) -> None:
    modules = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    weighted = [layer for layer in layers if layer.kind in ("Conv2D", "BatchNormalization")]
    flip = bgr  # until the first conv has taken the channel order
    for module, layer in zip(modules, weighted, strict=True):
        if layer.kind == "Conv2D":
            names = ["kernel", "bias"] if layer.config.get("use_bias", True) else ["kernel"]
            kernel, *bias = weights.arrays(layer.top, layer.name, names)
            if flip:
                kernel, flip = kernel[:, :, ::-1, :], False
            _assign(module.weight, kernel.transpose(3, 2, 0, 1), layer.name)
            if bias:
                _assign(module.bias, bias[0], layer.name)
        else:
            arrays = _bn_arrays(layer, weights, module.num_features)
            _load_batchnorm(module, [a[::-1] for a in arrays] if flip else arrays, layer.name)


def _gates(matrix: np.ndarray, kind: str) -> np.ndarray:
    """Keras gate blocks (last axis) → PyTorch's order, as rows: ``(gates·H, …)``."""
    if kind == "lstm":  # i, f, c, o == i, f, g, o
        return matrix.T
    z, r, h = np.split(matrix, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1).T


def _load_rnn(model: CRNN, layers: list[Layer], weights: KerasWeights, pooling: str) -> None:
    kind, hidden = model.config.rnn, model.config.rnn_hidden
    for index, layer in enumerate(layers):
        directions = [(layer.name, "")]
        config = layer.config
        if layer.kind == "Bidirectional":
            config = layer.config["layer"]["config"]
            directions = [
                (_direction_name(layer, "forward"), ""),
                (_direction_name(layer, "backward"), "_reverse"),
            ]
        use_bias = config.get("use_bias", True)
        for leaf, suffix in directions:
            names = ["kernel", "recurrent_kernel", "bias"][: 3 if use_bias else 2]
            kernel, recurrent, *bias = weights.arrays(layer.top, leaf, names)
            if index == 0 and pooling == "flatten":
                kernel = kernel[_flatten_order(model)]
            gate_kind = "lstm" if kind == "lstm" else "gru"
            rnn_name = f"l{index}{suffix}"
            _assign(getattr(model.rnn, f"weight_ih_{rnn_name}"), _gates(kernel, gate_kind), leaf)
            _assign(getattr(model.rnn, f"weight_hh_{rnn_name}"), _gates(recurrent, gate_kind), leaf)
            _load_rnn_bias(model.rnn, rnn_name, kind, bias[0] if bias else None, hidden)


def _direction_name(layer: Layer, direction: str) -> str:
    """The name of one direction of a Bidirectional layer: ``forward_gru``, ``backward_gru``
    (Keras 3 stores the prefixed names in the config, tf.keras 2 only the wrapped layer's)."""
    given = (layer.config.get(f"{direction}_layer") or {}).get("config", {}).get("name")
    base = layer.config["layer"]["config"]["name"].removeprefix("forward_")
    return given or f"{direction}_{base}"


def _load_rnn_bias(
    rnn: nn.Module, name: str, kind: str, bias: np.ndarray | None, hidden: int
) -> None:
    gates = 4 if kind == "lstm" else 3
    if kind == "gru_reset_before":
        value = np.zeros(gates * hidden) if bias is None else _gates(bias, "gru")
        _assign(getattr(rnn, f"bias_{name}"), value, name)
        return
    rows = (
        np.zeros((2, gates * hidden))
        if bias is None
        else np.asarray(bias).reshape(-1, gates * hidden)
    )
    if kind == "lstm":  # one bias in Keras: all of it on the input side
        rows = np.stack([rows[0], np.zeros(gates * hidden)])
    _assign(getattr(rnn, f"bias_ih_{name}"), _gates(rows[0], kind), name)
    _assign(getattr(rnn, f"bias_hh_{name}"), _gates(rows[1], kind), name)


def _flatten_order(model: CRNN) -> np.ndarray:
    """Rows of a Keras kernel after Flatten (h, w, c order) in vadx's order (c, h, w)."""
    height, width = model.map_size
    channels = model.backbone.out_channels
    return (
        np.arange(height * width * channels)
        .reshape(height, width, channels)
        .transpose(2, 0, 1)
        .ravel()
    )


def _load_head(model: CRNN, layers: list[Layer], weights: KerasWeights, sigmoid: bool) -> None:
    modules = [m for m in model.head if isinstance(m, nn.Linear | nn.BatchNorm1d)]
    weighted = [layer for layer in layers if layer.kind in ("Dense", "BatchNormalization")]
    for position, (module, layer) in enumerate(zip(modules, weighted, strict=True)):
        if layer.kind == "BatchNormalization":
            _load_batchnorm(module, _bn_arrays(layer, weights, module.num_features), layer.name)
            continue
        names = ["kernel", "bias"] if layer.config.get("use_bias", True) else ["kernel"]
        kernel, *bias = weights.arrays(layer.top, layer.name, names)
        bias_value = bias[0] if bias else np.zeros(kernel.shape[1])
        if sigmoid and position == len(modules) - 1:  # logits (0, z): softmax = (1 − σ(z), σ(z))
            kernel = np.concatenate([np.zeros_like(kernel), kernel], axis=1)
            bias_value = np.concatenate([np.zeros(1), bias_value])
        _assign(module.weight, kernel.T, layer.name)
        _assign(module.bias, bias_value, layer.name)
