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
from typing import Any

import torch

from vadx.borrowed import eval_mode
from vadx.catalogue import DEFAULT_METHODS, DEFAULT_TEMPORAL
from vadx.errors import ConfigError
from vadx.explain.base import Method, Output, ProgressFn, check_choice
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
from vadx.explain.result import (
    Attribution,
    Explanation,
    FrameImportance,
    frozen_mapping,
    to_host,
)
from vadx.explain.targets import TargetSpec
from vadx.explain.temporal import FrameOcclusion, FrameShapley, GradCAMMass, GradientNorm
from vadx.models.crnn import CRNN

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (Saliency, GradCAM, ActivationMap, GradCAMPlusPlus, LayerCAM, GradientXInput,
                SmoothGrad, IntegratedGradients, GuidedBackprop, GuidedGradCAM, Occlusion)
}  # fmt: skip
TEMPORAL: dict[str, type[Method]] = {
    cls.name: cls for cls in (FrameOcclusion, GradientNorm, GradCAMMass, FrameShapley)
}


def explain(
    model: CRNN,
    clip: torch.Tensor,
    target: TargetSpec = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    temporal: Sequence[str] = DEFAULT_TEMPORAL,
    layer: str | None = None,
    weighting: str = "frame",
    normalisation: str = "clip",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: ProgressFn | None = None,
    picture: torch.Tensor | None = None,
) -> Explanation:
    """Explain ``model``'s decision on ``clip`` ``(B, T, 3, H, W)`` with several methods.

    Args:
        model: a :class:`~vadx.models.CRNN`; explained in eval mode, its state left untouched.
        clip: clips normalised like the model's training data.
        target: the explained logit (see :mod:`vadx.explain.targets`; default: predicted).
        methods: spatial methods, names from :data:`METHODS`.
        temporal: temporal-importance estimators, names from :data:`TEMPORAL`.
        layer: backbone layer of the CAM methods and activation maps (default: the model's
            last conv block); ``weighting`` of Grad-CAM: ``frame`` or ``clip``.
        normalisation: of the display maps: ``clip`` (default), ``frame`` or ``none``.
        options: per-method settings, e.g. ``{"integrated_gradients": {"steps": 64}}``.
        progress: called as ``progress(method, done, total)`` by long methods.
        picture: ``(B, H, W)`` or ``(H, W)``, 1 where the clip's frames show the video and 0
            on the padding preprocessing added (:meth:`vadx.video.Geometry.picture`): display
            maps are 0 there, and each map records the share of its raw magnitude that fell
            there (``Attribution.off_picture``).
    """
    check_choice("normalisation", normalisation, NORMALISATIONS)
    instances = _build(model, methods, METHODS, layer, weighting, options or {})
    instances.update(_build(model, temporal, TEMPORAL, layer, weighting, options or {}))
    unused = set(options or {}) - set(instances)
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
    indices = shared.target.indices
    tensors: dict[str, torch.Tensor] = {
        "logits": shared.logits,
        "probabilities": shared.logits.softmax(1),
        "targets": indices if indices is not None else torch.full((clip.shape[0],), -1),
        "clip": clip,
    }
    for name, out in outputs.items():
        tensors[f"{name}/raw"] = out.raw
        if name in METHODS:
            signed = instances[name].signed
            tensors[f"{name}/display"] = display(out.raw, normalisation, size, signed, picture)
            tensors[f"{name}/frame_scores"] = frame_scores(out.raw)
            if picture is not None:
                tensors[f"{name}/off_picture"] = off_picture_share(out.raw, picture, size, signed)
        tensors.update({f"{name}/extra/{key}": value for key, value in out.extras.items()})
    arrays = to_host(tensors)

    def extras(name: str) -> Mapping[str, Any]:
        prefix = f"{name}/extra/"
        return frozen_mapping({k.removeprefix(prefix): v for k, v in arrays.items()
                               if k.startswith(prefix)})  # fmt: skip

    maps = {
        name: Attribution(
            method=name, display_name=instances[name].display_name, raw=arrays[f"{name}/raw"],
            display=arrays[f"{name}/display"], frame_scores=arrays[f"{name}/frame_scores"],
            signed=instances[name].signed, settings=frozen_mapping(instances[name].settings()),
            extras=extras(name), off_picture=arrays.get(f"{name}/off_picture"),
        )
        for name in outputs
        if name in METHODS
    }  # fmt: skip
    frames = {
        name: FrameImportance(
            estimator=name, display_name=instances[name].display_name,
            scores=arrays[f"{name}/raw"], signed=instances[name].signed,
            settings=frozen_mapping(instances[name].settings()), extras=extras(name),
        )
        for name in outputs
        if name in TEMPORAL
    }  # fmt: skip
    checkpoint = model.checkpoint
    return Explanation(
        class_names=model.class_names,
        logits=arrays["logits"],
        probabilities=arrays["probabilities"],
        targets=arrays["targets"],
        target_names=shared.target.names,
        target=shared.target.spec,
        maps=frozen_mapping(maps),
        temporal=frozen_mapping(frames),
        normalisation=normalisation,
        clip=arrays["clip"],
        seconds=frozen_mapping(seconds),
        model=frozen_mapping({
            "id": getattr(checkpoint, "model_id", None),
            "config": model.config.to_dict(),
        }),
    )  # fmt: skip


def _build(
    model: CRNN,
    names: Sequence[str],
    registry: Mapping[str, type[Method]],
    layer: str | None,
    weighting: str,
    options: Mapping[str, Mapping[str, Any]],
) -> dict[str, Method]:
    if isinstance(names, str):
        names = [names]
    built: dict[str, Method] = {}
    for name in names:
        if name not in registry:
            kind = "method" if registry is METHODS else "temporal estimator"
            raise ConfigError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}")
        cls = registry[name]
        accepted = inspect.signature(cls).parameters
        kwargs = {key: value for key, value in (("layer", layer), ("weighting", weighting))
                  if key in accepted}  # fmt: skip
        given = dict(options.get(name, {}))
        unknown = set(given) - set(accepted) - {"model"}
        if unknown:
            settable = ", ".join(p for p in accepted if p != "model") or "none"
            raise ConfigError(
                f"{name} has no setting {', '.join(sorted(unknown))}; its settings: {settable}"
            )
        built[name] = cls(model, **{**kwargs, **given})
    return built
