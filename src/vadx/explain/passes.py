"""One forward and at most one backward that serve every gradient method at once.

Saliency, gradient × input, Grad-CAM (both weightings), Grad-CAM++, LayerCAM, activation maps
and the GRU-step gradient norm all read from the same :class:`Pass`: the forward records the
requested backbone layers and the per-frame features, and a single ``torch.autograd.grad``
differentiates the sum of the explained logits (videos are independent in eval mode, so each
video's gradient is its own) with respect to exactly the tensors needed — the input, the
layers, the features — never the parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from vadx.explain.hooks import LayerRecorder, rnn_context, stack_calls
from vadx.explain.protocol import ExplainableModel
from vadx.explain.targets import ResolvedTarget, TargetSpec, resolve_target

#: what a method may need from a pass
INPUT_GRAD, FEATURE_GRAD = "input_grad", "feature_grad"


@dataclass(frozen=True)
class Need:
    """What one method reads from a shared pass."""

    input_grad: bool = False
    feature_grad: bool = False
    layers: frozenset[str] = frozenset()
    layer_grads: bool = False

    def __or__(self, other: Need) -> Need:
        return Need(
            self.input_grad or other.input_grad,
            self.feature_grad or other.feature_grad,
            self.layers | other.layers,
            self.layer_grads or other.layer_grads,
        )

    @property
    def any_grad(self) -> bool:
        return self.input_grad or self.feature_grad or (self.layer_grads and bool(self.layers))


@dataclass(frozen=True)
class Pass:
    """Everything one forward/backward produced, for clips ``(B, T, 3, H, W)`` (read-only:
    every method of a call reads the same pass).

    Attributes:
        clip: the (detached) input clip.
        logits: ``(B, K)``.
        target: the resolved target; ``scores`` its value per video ``(B,)``.
        features: per-frame features ``(B, T, F)``.
        activations, gradients: per layer name, ``(B, T, C, h, w)``.
        input_grad: ``(B, T, 3, H, W)`` or None; feature_grad ``(B, T, F)`` or None.
    """

    clip: torch.Tensor
    logits: torch.Tensor
    target: ResolvedTarget
    scores: torch.Tensor
    features: torch.Tensor
    activations: Mapping[str, torch.Tensor] = field(default_factory=dict)
    gradients: Mapping[str, torch.Tensor] = field(default_factory=dict)
    input_grad: torch.Tensor | None = None
    feature_grad: torch.Tensor | None = None


def run_pass(
    model: ExplainableModel,
    clip: torch.Tensor,
    target: TargetSpec | ResolvedTarget,
    need: Need,
) -> Pass:
    """Forward ``clip`` once recording what ``need`` asks for, then one ``autograd.grad``.

    The model must already be in eval mode (see :func:`vadx.borrowed.eval_mode`).
    """
    model.check_clip(clip)
    batch, steps = clip.shape[:2]
    inputs = clip.detach().requires_grad_(need.input_grad)
    layers = sorted(need.layers)
    with torch.set_grad_enabled(need.any_grad):
        with LayerRecorder(model, layers, make_leaf=need.layer_grads) as recorder:
            maps = model.frame_maps(inputs)
        features = model.pool_maps(maps)
        if need.feature_grad and not features.requires_grad:
            features = features.detach().requires_grad_(True)
        with rnn_context(clip.device):
            logits = model.forward_features(features)
        resolved = (
            target
            if isinstance(target, ResolvedTarget)
            else resolve_target(model, logits.detach(), target)
        )
        scores = resolved.scores(logits)
        activations = {name: recorder.stacked(name, batch, steps) for name in layers}
        wrt = _wanted(need, inputs, features, {n: recorder.outputs[n] for n in layers})
        grads = (
            torch.autograd.grad(scores.sum(), [t for _, t in wrt], allow_unused=True) if wrt else ()
        )
    found = _regroup(wrt, grads)
    input_grad = found.pop(INPUT_GRAD, [None])[0]
    feature_grad = found.pop(FEATURE_GRAD, [None])[0]
    return Pass(
        clip=inputs.detach(),
        logits=logits.detach(),
        target=resolved,
        scores=scores.detach(),
        features=features.detach(),
        activations=MappingProxyType({name: a.detach() for name, a in activations.items()}),
        gradients=MappingProxyType(
            {name: stack_calls(calls, name, batch, steps) for name, calls in found.items()}
        ),
        input_grad=input_grad,
        feature_grad=feature_grad,
    )


def _wanted(
    need: Need,
    inputs: torch.Tensor,
    features: torch.Tensor,
    layer_calls: dict[str, list[torch.Tensor]],
) -> list[tuple[str, torch.Tensor]]:
    wrt: list[tuple[str, torch.Tensor]] = []
    if need.input_grad:
        wrt.append((INPUT_GRAD, inputs))
    if need.feature_grad:
        wrt.append((FEATURE_GRAD, features))
    if need.layer_grads:
        wrt += [(name, call) for name, calls in layer_calls.items() for call in calls]
    return wrt


def _regroup(
    wrt: list[tuple[str, torch.Tensor]], grads: Iterable[torch.Tensor | None]
) -> dict[str, list[torch.Tensor]]:
    found: dict[str, list[torch.Tensor]] = {}
    for (name, tensor), grad in zip(wrt, grads, strict=True):
        found.setdefault(name, []).append(torch.zeros_like(tensor) if grad is None else grad)
    return found
