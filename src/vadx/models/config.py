"""The configuration of a CRNN: architecture, classes and preprocessing, validated.

Defaults are the reference system (Poirier, arXiv 2411.04707): VGG19 on every 112×112 frame of a
20-frame clip, global pooling, one GRU of 1024 units, an MLP head of three hidden layers
1024 → 512 → 128 (ReLU, dropout 0.5 after each) then the class layer — the thesis diagram's
GRU → (Dense → Dropout) ×3 → Dense → softmax, 26,389,700 parameters for the four classes fight /
shooting / fire / normal. (The reference's L2 0.01 is the optimiser's weight decay, not part of
the model.)

The JSON form (:meth:`CRNNConfig.to_dict`) has three sections — ``architecture``, ``classes``
and ``preprocessing`` — and is what a checkpoint's ``config.json`` stores under ``model``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from vadx import limits
from vadx.errors import ConfigError
from vadx.models.head import check_head_layers, hidden_widths
from vadx.models.rnn import RNN_KINDS

REFERENCE_CLASSES = ("fight", "shooting", "fire", "normal")
Freeze = Literal["none", "all"] | int


#: the smallest per-channel standard deviation the normalisation accepts
MIN_STD = 1e-3


@dataclass(frozen=True)
class CRNNConfig:
    """Everything needed to rebuild a :class:`~vadx.models.CRNN` and feed it clips.

    Attributes:
        class_names: output classes, in logit order.
        normal_class: the class meaning "no anomaly" (``None`` if every class is an anomaly).
        backbone: registered per-frame CNN (see :func:`vadx.models.available_backbones`).
        backbone_args: keyword arguments of the backbone, e.g. ``{"width": 0.25}`` for VGG19.
        pooling: per-frame pooling of the feature map: global ``"avg"`` or ``"max"``, or
            ``"flatten"`` (every cell, ``C·h·w`` features: the frames must be ``frame_size``).
        rnn: ``"gru"`` (reference), ``"lstm"``, or ``"gru_reset_before"`` (Keras'
            ``reset_after=False`` GRU, see :mod:`vadx.models.rnn`).
        rnn_hidden: units of the recurrent layer(s).
        rnn_layers: stacked recurrent layers.
        rnn_bidirectional: run the RNN both ways and concatenate (Keras ``Bidirectional``).
        head_hidden: hidden widths of the MLP head, after the RNN and before the logits.
        dropout: dropout after each hidden layer of the head.
        head_layers: an explicit head instead (imported models, see :mod:`vadx.models.head`);
            ``head_hidden`` then lists its hidden widths and ``dropout`` is 0 (its dropout
            layers carry their rates).
        freeze: backbone freezing: ``"none"``, ``"all"``, or an int N = all but the last N
            units (conv layers for VGG19; stem/blocks/head for EfficientNet-Lite0).
        num_frames: clip length T the model is trained on.
        frame_size: ``(height, width)`` of the frames fed to the model.
        fit: how a source frame is brought to ``frame_size`` — ``"stretch"`` (aspect ignored,
            what the reference's Keras generator did; the default: as accurate as the others on
            4:3 footage, no padding, nothing cut — benchmarks/results/fit-demo.json),
            ``"pad"`` (letter-box, aspect kept) or ``"crop"`` (centre crop). Part of the model:
            training, detection, live detection and explanations all read it from here.
        mean, std: per-channel normalisation of RGB values in [0, 1]; ``None`` takes the
            backbone's (ImageNet statistics for VGG19).
    """

    class_names: tuple[str, ...] = REFERENCE_CLASSES
    normal_class: str | None = "normal"
    backbone: str = "vgg19"
    backbone_args: Mapping[str, Any] = field(default_factory=dict)
    pooling: Literal["avg", "max", "flatten"] = "avg"
    rnn: Literal["gru", "lstm", "gru_reset_before"] = "gru"
    rnn_hidden: int = 1024
    rnn_layers: int = 1
    rnn_bidirectional: bool = False
    head_hidden: tuple[int, ...] = (1024, 512, 128)
    dropout: float = 0.5
    head_layers: tuple[Mapping[str, Any], ...] = ()
    freeze: Freeze = "none"
    num_frames: int = 20
    frame_size: tuple[int, int] = (112, 112)
    fit: Literal["pad", "crop", "stretch"] = "stretch"
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise sequences to tuples in place
        set_(self, "class_names", tuple(self.class_names))
        set_(self, "head_hidden", tuple(self.head_hidden))
        set_(self, "head_layers", tuple(dict(layer) for layer in self.head_layers))
        set_(self, "frame_size", tuple(self.frame_size))
        set_(self, "backbone_args", dict(self.backbone_args))
        for name in ("mean", "std"):
            if getattr(self, name) is not None:
                set_(self, name, tuple(float(v) for v in getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        names = self.class_names
        if len(names) < 2 or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"class_names needs at least two non-empty names, got {names!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"class_names has duplicates: {names!r}")
        if self.normal_class is not None and self.normal_class not in names:
            raise ConfigError(
                f"normal_class {self.normal_class!r} is not one of the classes {names!r}; "
                "use one of them or None"
            )
        _check_choice("pooling", self.pooling, ("avg", "max", "flatten"))
        _check_choice("rnn", self.rnn, RNN_KINDS)
        if not isinstance(self.rnn_bidirectional, bool):
            raise ConfigError(
                f"rnn_bidirectional must be true or false, got {self.rnn_bidirectional!r}"
            )
        _check_choice("fit", self.fit, ("pad", "crop", "stretch"))
        _check_int("rnn_hidden", self.rnn_hidden, limits.UNITS)
        _check_int("rnn_layers", self.rnn_layers, limits.RNN_LAYERS)
        _check_int("num_frames", self.num_frames, limits.CLIP_FRAMES)
        for width in self.head_hidden:
            _check_int("head_hidden entries", width, limits.UNITS)
        if not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.head_layers:
            check_head_layers(self.head_layers, self.num_classes)
            if self.head_hidden != hidden_widths(self.head_layers) or self.dropout != 0:
                raise ConfigError(
                    "with explicit head_layers, head_hidden must list their hidden widths "
                    f"{hidden_widths(self.head_layers)} and dropout be 0"
                )
        if len(self.frame_size) != 2:
            raise ConfigError(f"frame_size must be (height, width), got {self.frame_size!r}")
        for side in self.frame_size:
            _check_int("frame_size", side, limits.FRAME_SIDE)
        freeze = self.freeze
        if not (freeze in ("none", "all") or (_is_int(freeze) and freeze >= 0)):
            raise ConfigError(
                f"freeze must be 'none', 'all' or a number N of last units to keep trainable, "
                f"got {freeze!r}"
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (len(value) != 3 or not all(math.isfinite(v) for v in value)):
                raise ConfigError(f"{name} must be three finite numbers (R, G, B), got {value!r}")
        if self.std is not None and min(self.std) < MIN_STD:
            raise ConfigError(
                f"std must be at least {MIN_STD:g} (values in [0, 1]: a smaller one only blows "
                f"up noise), got {self.std!r}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form in three sections: architecture, classes, preprocessing."""
        return {
            "architecture": {
                "backbone": self.backbone,
                "backbone_args": dict(self.backbone_args),
                "pooling": self.pooling,
                "rnn": self.rnn,
                "rnn_hidden": self.rnn_hidden,
                "rnn_layers": self.rnn_layers,
                "rnn_bidirectional": self.rnn_bidirectional,
                "head_hidden": list(self.head_hidden),
                "dropout": self.dropout,
                "head_layers": [dict(layer) for layer in self.head_layers],
                "freeze": self.freeze,
            },
            "classes": {"names": list(self.class_names), "normal": self.normal_class},
            "preprocessing": {
                "num_frames": self.num_frames,
                "frame_size": list(self.frame_size),
                "fit": self.fit,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std),
                "color": "RGB",
                "value_range": [0.0, 1.0],
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CRNNConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"model config must be a JSON object, got {type(data).__name__}")
        sections = {"architecture", "classes", "preprocessing"}
        _check_keys("model config", data, required=sections, allowed=sections)
        arch, classes, prep = (data[s] for s in ("architecture", "classes", "preprocessing"))
        arch_keys = {
            "backbone",
            "backbone_args",
            "pooling",
            "rnn",
            "rnn_hidden",
            "rnn_layers",
            "head_hidden",
            "dropout",
            "freeze",
        }
        # added later: checkpoints written before them take the defaults
        later_keys = {"rnn_bidirectional", "head_layers"}
        _check_keys("architecture", arch, required=arch_keys, allowed=arch_keys | later_keys)
        _check_keys("classes", classes, required={"names", "normal"}, allowed={"names", "normal"})
        _check_keys(
            "preprocessing",
            prep,
            required={"num_frames", "frame_size", "mean", "std"},
            allowed={"num_frames", "frame_size", "fit", "mean", "std", "color", "value_range"},
        )
        if prep.get("color", "RGB") != "RGB" or list(prep.get("value_range", [0, 1])) != [0, 1]:
            raise ConfigError("preprocessing must take RGB frames with values in [0, 1]")
        try:
            return cls(
                class_names=tuple(classes["names"]),
                normal_class=classes["normal"],
                frame_size=tuple(prep["frame_size"]),
                num_frames=prep["num_frames"],
                # checkpoints written before the fit was recorded were all letter-boxed
                fit=prep.get("fit", "pad"),
                mean=prep["mean"],
                std=prep["std"],
                **{k: v for k, v in arch.items() if k not in ("head_hidden", "head_layers")},
                head_hidden=tuple(arch["head_hidden"]),
                head_layers=tuple(arch.get("head_layers", ())),
            )
        except TypeError as err:
            raise ConfigError(f"model config has a value of the wrong type: {err}") from err

    def replace(self, **changes: Any) -> CRNNConfig:
        """A copy with ``changes`` applied (and validated)."""
        return checked_replace(self, "CRNN", changes)


def checked_replace(config: Any, what: str, changes: dict[str, Any]) -> Any:
    """``dataclasses.replace`` that names unknown options instead of a bare TypeError."""
    known = {f.name for f in fields(config)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; known: {sorted(known)}")
    return replace(config, **changes)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: object, span: limits.Span) -> None:
    limits.check_range(name, value, span, integer=True)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_keys(where: str, data: object, required: set[str], allowed: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a JSON object, got {type(data).__name__}")
    missing = sorted(required - set(data))
    unknown = sorted(set(data) - allowed)
    if missing:
        raise ConfigError(f"{where} is missing {', '.join(missing)}")
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}")
