"""``explain()``: every requested method on clips ``(B, T, 3, H, W)`` in as few passes as possible.

One forward records what the methods need (the layers, the per-frame features) and one
``torch.autograd.grad`` serves every gradient method; perturbation methods then run their
own batched passes, reusing the per-frame features so the CNN never runs twice on a frame it
has already seen.

>>> import torch
>>> from vadx.models import CRNN
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = CRNN(backbone_args={"width": 0.0625}, rnn_hidden=8, head_hidden=(4,))
>>> clip = torch.randn(2, 6, 3, 32, 32)
>>> explanation = explain(model, clip, target="anomaly")
>>> explanation["gradcam"].display.shape, explanation["frame_shapley"].scores.shape
((2, 6, 32, 32), (2, 6))
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.catalogue import (
    DEFAULT_METHODS,
    DEFAULT_TEMPORAL,
    MethodKind,
    Normalisation,
    Weighting,
)
from vadx.errors import ConfigError
from vadx.explain.base import Method, OptionValue, Output, ProgressFn, check_choice
from vadx.explain.cam import (
    ActivationMap,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    LayerCAM,
)
from vadx.explain.gradients import (
    GradientXInput,
    GuidedBackprop,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from vadx.explain.normalise import NORMALISATIONS, display, frame_scores, off_picture_share
from vadx.explain.occlusion import Occlusion
from vadx.explain.passes import Need, run_pass
from vadx.explain.protocol import ExplainableModel, check_explainable
from vadx.explain.result import (
    Attribution,
    Explanation,
    FrameImportance,
    frozen_array,
    frozen_mapping,
    on_host,
)
from vadx.explain.targets import TargetSpec
from vadx.explain.temporal import FrameOcclusion, FrameShapley, GradCAMMass, GradientNorm

#: every method, in the registries' order; its ``kind`` says which registry it joins
REGISTERED: tuple[type[Method], ...] = (
    Saliency, GradCAM, ActivationMap, GradCAMPlusPlus, LayerCAM, GradientXInput, SmoothGrad,
    IntegratedGradients, GuidedBackprop, GuidedGradCAM, Occlusion,
    FrameOcclusion, GradientNorm, GradCAMMass, FrameShapley,
)  # fmt: skip
#: spatial methods (maps in each frame) by name
METHODS: dict[str, type[Method]] = {cls.name: cls for cls in REGISTERED if cls.kind == "spatial"}
#: temporal-importance estimators (frame scores) by name
TEMPORAL: dict[str, type[Method]] = {cls.name: cls for cls in REGISTERED if cls.kind == "temporal"}
_REGISTRIES: dict[MethodKind, dict[str, type[Method]]] = {"spatial": METHODS, "temporal": TEMPORAL}
_KIND_NAMES: dict[MethodKind, str] = {"spatial": "method", "temporal": "temporal estimator"}
#: per-method settings: the keyword arguments of each method's constructor, by method name
MethodOptions = Mapping[str, Mapping[str, OptionValue]]


class EngineSettings(Protocol):
    """The settings :func:`explain` reads from a settings object, by attribute: any object
    that has them will do, e.g. :class:`vadx.explanations.clip.ExplainSettings` (which has more)."""

    @property
    def methods(self) -> Sequence[str]:
        """Spatial methods, names from :data:`METHODS`."""
        ...

    @property
    def temporal(self) -> Sequence[str]:
        """Temporal-importance estimators, names from :data:`TEMPORAL`."""
        ...

    @property
    def layer(self) -> str | None:
        """Backbone layer of the CAM methods and activation maps (None: each one's default)."""
        ...

    @property
    def weighting(self) -> Weighting:
        """Grad-CAM's channel weights."""
        ...

    @property
    def normalisation(self) -> Normalisation:
        """How the display maps are scaled."""
        ...

    @property
    def options(self) -> MethodOptions:
        """Per-method settings."""
        ...


@dataclass(frozen=True, slots=True)
class MethodChoices:
    """:class:`EngineSettings` as a record of their own: what :func:`explain` makes of its
    keyword arguments (the defaults are :func:`explain`'s)."""

    methods: Sequence[str] = DEFAULT_METHODS
    temporal: Sequence[str] = DEFAULT_TEMPORAL
    layer: str | None = None
    weighting: Weighting = "frame"
    normalisation: Normalisation = "clip"
    options: MethodOptions = field(default_factory=dict)


def explain(
    model: ExplainableModel,
    clip: torch.Tensor,
    target: TargetSpec = None,
    *,
    settings: EngineSettings | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    temporal: Sequence[str] = DEFAULT_TEMPORAL,
    layer: str | None = None,
    weighting: Weighting = "frame",
    normalisation: Normalisation = "clip",
    options: MethodOptions | None = None,
    progress: ProgressFn | None = None,
    picture: torch.Tensor | None = None,
) -> Explanation:
    """Explain ``model``'s decision on ``clip`` ``(B, T, 3, H, W)`` with several methods.

    Args:
        model: a :class:`~vadx.models.CRNN`, or any model with the stages of
            :class:`~vadx.explain.protocol.ExplainableModel`; explained in eval mode, its
            state left untouched.
        clip: clips normalised like the model's training data.
        target: the explained logit (see :mod:`vadx.explain.targets`; default: predicted).
        methods: spatial methods, names from :data:`METHODS`.
        temporal: temporal-importance estimators, names from :data:`TEMPORAL`.
        layer: backbone layer of the CAM methods and activation maps (default: the model's
            last conv block); ``weighting`` of Grad-CAM: ``frame`` or ``clip``.
        normalisation: of the display maps: ``clip`` (default), ``frame`` or ``none``.
        options: per-method settings, e.g. ``{"integrated_gradients": {"steps": 64}}``.
        settings: the six settings above as one object (:class:`EngineSettings`, e.g. a
            :class:`vadx.explanations.clip.ExplainSettings`), instead of as keywords; not both.
        progress: called as ``progress(method, done, total)`` by long methods.
        picture: ``(B, H, W)`` or ``(H, W)``, 1 where the clip's frames show the video and 0
            on the padding preprocessing added (:meth:`vadx.video.Geometry.picture`): display
            maps are 0 there, and each map records the share of its raw magnitude that fell
            there (``Attribution.off_picture``).
    """
    check_explainable(model)
    given = MethodChoices(methods, temporal, layer, weighting, normalisation, options or {})
    if settings is None:
        settings = given
    elif given != MethodChoices():
        raise ConfigError("give explain() its settings as keywords or as one settings object")
    normalisation = settings.normalisation
    check_choice("normalisation", normalisation, NORMALISATIONS)
    options = settings.options
    instances = _build(model, settings.methods, "spatial", settings)
    instances.update(_build(model, settings.temporal, "temporal", settings))
    unused = set(options) - set(instances)
    if unused:
        raise ConfigError(f"options given for methods not requested: {', '.join(sorted(unused))}")
    need = Need()
    for method in instances.values():
        method.progress = progress
        need = need | method.need()
    seconds: dict[str, float] = {}
    outputs: dict[str, Output] = {}
    with eval_mode(model):
        started = time.perf_counter()
        shared = run_pass(model, clip, target, need)
        seconds["shared_pass"] = time.perf_counter() - started
        for name, method in instances.items():
            started = time.perf_counter()
            outputs[name] = method.compute(shared)
            seconds[name] = time.perf_counter() - started
    size = clip.shape[-2:]
    shown = {
        name: _Shown.of(outputs[name].raw, normalisation, size, method.signed, picture)
        for name, method in instances.items()
        if method.kind == "spatial"
    }
    indices = shared.target.indices
    prediction = _Prediction(
        logits=shared.logits,
        probabilities=shared.logits.softmax(1),
        targets=indices if indices is not None else torch.full((clip.shape[0],), -1),
        clip=clip,
    )
    prediction, outputs, shown = on_host((prediction, outputs, shown))
    maps = {
        name: _attribution(name, instances[name], outputs[name], view)
        for name, view in shown.items()
    }
    frames = {
        name: _frame_importance(name, method, outputs[name])
        for name, method in instances.items()
        if method.kind == "temporal"
    }
    checkpoint = getattr(model, "checkpoint", None)  # a loaded model's (vadx.load_model)
    return Explanation(
        class_names=tuple(model.class_names),
        logits=frozen_array(prediction.logits),
        probabilities=frozen_array(prediction.probabilities),
        targets=frozen_array(prediction.targets),
        target_names=shared.target.names,
        target=shared.target.spec,
        maps=frozen_mapping(maps),
        temporal=frozen_mapping(frames),
        normalisation=normalisation,
        clip=frozen_array(prediction.clip),
        seconds=frozen_mapping(seconds),
        model=frozen_mapping(
            {
                "id": getattr(checkpoint, "model_id", None),
                "config": model.config.to_dict(),
            }
        ),
    )


@dataclass(frozen=True)
class _Prediction:
    """What the shared pass predicted, and the clips it explained (tensors)."""

    logits: torch.Tensor
    probabilities: torch.Tensor
    targets: torch.Tensor
    clip: torch.Tensor


@dataclass(frozen=True)
class _Shown:
    """A spatial method's raw maps made readable: display maps, each frame's mass, and the
    share that fell off the picture (tensors)."""

    display: torch.Tensor
    frame_scores: torch.Tensor
    off_picture: torch.Tensor | None

    @classmethod
    def of(
        cls,
        raw: torch.Tensor,
        normalisation: Normalisation,
        size: Sequence[int],
        signed: bool,
        picture: torch.Tensor | None,
    ) -> _Shown:
        return cls(
            display=display(raw, normalisation, size=size, signed=signed, picture=picture),
            frame_scores=frame_scores(raw),
            off_picture=None if picture is None else off_picture_share(raw, picture, size, signed),
        )


def _attribution(name: str, method: Method, output: Output, shown: _Shown) -> Attribution:
    return Attribution(
        method=name,
        display_name=method.display_name,
        raw=frozen_array(output.raw),
        display=frozen_array(shown.display),
        frame_scores=frozen_array(shown.frame_scores),
        signed=method.signed,
        settings=frozen_mapping(method.settings()),
        extras=_frozen_arrays(output.extras),
        off_picture=None if shown.off_picture is None else frozen_array(shown.off_picture),
    )


def _frame_importance(name: str, method: Method, output: Output) -> FrameImportance:
    return FrameImportance(
        estimator=name,
        display_name=method.display_name,
        scores=frozen_array(output.raw),
        signed=method.signed,
        settings=frozen_mapping(method.settings()),
        extras=_frozen_arrays(output.extras),
    )


def _frozen_arrays(tensors: Mapping[str, torch.Tensor]) -> Mapping[str, np.ndarray]:
    return frozen_mapping({key: frozen_array(tensor) for key, tensor in tensors.items()})


def _build(
    model: ExplainableModel,
    names: Sequence[str],
    kind: MethodKind,
    settings: EngineSettings,
) -> dict[str, Method]:
    """The requested methods of ``kind`` (``spatial`` or ``temporal``), with their settings."""
    if isinstance(names, str):
        names = [names]
    registry = _REGISTRIES[kind]
    built: dict[str, Method] = {}
    for name in names:
        if name not in registry:
            raise ConfigError(
                f"unknown {_KIND_NAMES[kind]} {name!r}; choose from {', '.join(registry)}"
            )
        cls = registry[name]
        accepted = inspect.signature(cls).parameters
        kwargs = {
            key: value
            for key, value in (("layer", settings.layer), ("weighting", settings.weighting))
            if key in accepted
        }
        given = dict(settings.options.get(name, {}))
        unknown = set(given) - set(accepted) - {"model"}
        if unknown:
            settable = ", ".join(p for p in accepted if p != "model") or "none"
            raise ConfigError(
                f"{name} has no setting {', '.join(sorted(unknown))}; its settings: {settable}"
            )
        built[name] = cls(model, **{**kwargs, **given})
    return built
