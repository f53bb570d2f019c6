"""Explanations of the CRNN: where in each frame, and which frames, made the model decide.

:func:`explain` runs several methods on clips ``(B, T, 3, H, W)`` in as few passes as possible
and returns an immutable :class:`Explanation`; each method is also a class with one contract,
``Method(model, **settings).attribute(clip, target)`` (captum's, adapted to clips). The model is
a :class:`~vadx.models.CRNN` or any other with the stages of :class:`ExplainableModel`.
"""

from vadx.explain.base import Method, MethodSettings, Output, SettingValue
from vadx.explain.cam import (
    ActivationMap,
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    LayerCAM,
    grad_cam,
)
from vadx.explain.engine import (
    DEFAULT_METHODS,
    DEFAULT_TEMPORAL,
    METHODS,
    TEMPORAL,
    EngineSettings,
    MethodChoices,
    explain,
)
from vadx.explain.gradients import (
    GradientXInput,
    GuidedBackprop,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from vadx.explain.normalise import NORMALISATIONS, display, upsample
from vadx.explain.occlusion import Occlusion
from vadx.explain.protocol import ExplainableModel
from vadx.explain.result import Attribution, Explanation, FrameImportance
from vadx.explain.targets import ResolvedTarget, resolve_target
from vadx.explain.temporal import FrameOcclusion, FrameShapley, GradCAMMass, GradientNorm

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_TEMPORAL",
    "METHODS",
    "NORMALISATIONS",
    "TEMPORAL",
    "ActivationMap",
    "Attribution",
    "EngineSettings",
    "ExplainableModel",
    "Explanation",
    "FrameImportance",
    "FrameOcclusion",
    "FrameShapley",
    "GradCAM",
    "GradCAMMass",
    "GradCAMPlusPlus",
    "GradientNorm",
    "GradientXInput",
    "GuidedBackprop",
    "GuidedGradCAM",
    "IntegratedGradients",
    "LayerCAM",
    "Method",
    "MethodChoices",
    "MethodSettings",
    "Occlusion",
    "Output",
    "ResolvedTarget",
    "Saliency",
    "SettingValue",
    "SmoothGrad",
    "display",
    "explain",
    "grad_cam",
    "resolve_target",
    "upsample",
]
