"""Gradient methods at the input pixels of every frame.

With ``y`` the explained logit of a video and ``x`` its clip ``(T, 3, H, W)``:

* saliency (Simonyan et al. 2014): ``max_c |∂y/∂x[t, c, i, j]|``;
* gradient × input: ``Σ_c x·∂y/∂x`` (signed);
* SmoothGrad (Smilkov et al. 2017): the mean saliency of ``n`` copies of the clip with
  Gaussian noise of σ = ``noise`` × (max − min of the clip);
* Integrated Gradients (Sundararajan et al. 2017): ``Σ_c (x − x')·∫₀¹ ∂y/∂x(x' + α(x − x')) dα``
  with Gauss–Legendre nodes; completeness ``Σ attributions = y(x) − y(x')`` holds up to the
  quadrature error, reported per video as the ``delta`` extra;
* guided backpropagation (Springenberg et al. 2015): saliency with only positive gradients
  passed back through every ReLU of the per-frame CNN. The RNN and the head backpropagate
  normally: guiding the head's few ReLUs as well would often zero the whole map, and the
  rule exists to sharpen *pixel-space* detail.

Saliency and gradient × input read the shared pass; the others batch their copies of the clip
in passes of at most ``batch_frames`` frames, so memory is bounded whatever ``samples`` or
``steps`` are.
"""

from __future__ import annotations

import numpy as np
import torch

from vadx.errors import ConfigError
from vadx.explain.base import Method, Output, SettingValue, check_choice, check_positive
from vadx.explain.baselines import BASELINES, baseline_clip
from vadx.explain.hooks import guided_relus
from vadx.explain.passes import Need, Pass, run_pass
from vadx.explain.protocol import ExplainableModel, logits_of

INPUT = Need(input_grad=True)
#: most frames in one internal forward/backward of a batched method
BATCH_FRAMES = 64


def saliency_of(input_grad: torch.Tensor) -> torch.Tensor:
    """``(B, T, 3, H, W)`` gradients → ``(B, T, H, W)``: largest magnitude over colours."""
    return input_grad.abs().amax(2)


class Saliency(Method):
    """Vanilla gradient saliency of every frame, from the shared pass."""

    name = "saliency"
    display_name = "Saliency"
    description = "How much each pixel's change would change the decision (the raw gradient)."

    def need(self) -> Need:
        return Need(input_grad=True)

    def compute(self, shared: Pass) -> Output:
        assert shared.input_grad is not None
        return Output(saliency_of(shared.input_grad))


class GradientXInput(Method):
    """Gradient × input summed over colours (signed), from the shared pass."""

    name = "gradient_x_input"
    display_name = "Gradient × input"
    description = "Gradient times the pixel itself: evidence for (+) and against (−) the class."
    signed = True

    def need(self) -> Need:
        return Need(input_grad=True)

    def compute(self, shared: Pass) -> Output:
        assert shared.input_grad is not None
        return Output((shared.input_grad * shared.clip).sum(2))


class _Batched(Method):
    """A method that runs many perturbed copies of the clip in bounded batches."""

    def __init__(self, model: ExplainableModel, batch_frames: int = BATCH_FRAMES) -> None:
        super().__init__(model)
        check_positive("batch_frames", batch_frames)
        self.batch_frames = batch_frames

    def copies_per_pass(self, clip: torch.Tensor) -> int:
        return max(1, self.batch_frames // (clip.shape[0] * clip.shape[1]))


class SmoothGrad(_Batched):
    """Mean saliency over noisy copies of the clip (seeded: the same call gives the same map)."""

    name = "smoothgrad"
    display_name = "SmoothGrad"
    description = "Saliency averaged over noisy copies of the clip: less speckle."

    def __init__(
        self,
        model: ExplainableModel,
        *,
        samples: int = 16,
        noise: float = 0.15,
        seed: int = 0,
        batch_frames: int = BATCH_FRAMES,
    ) -> None:
        super().__init__(model, batch_frames)
        check_positive("samples", samples)
        check_positive("noise", noise, integer=False)
        self.samples, self.noise, self.seed = samples, noise, seed

    def settings(self) -> dict[str, SettingValue]:
        return {"samples": self.samples, "noise": self.noise, "seed": self.seed}

    def compute(self, shared: Pass) -> Output:
        clip = shared.clip
        spread = clip.flatten(1).amax(1) - clip.flatten(1).amin(1)
        sigma = (self.noise * spread).view(1, -1, 1, 1, 1, 1)
        generator = torch.Generator(device=clip.device).manual_seed(self.seed)
        total = torch.zeros(clip.shape[0], *clip.shape[1:2], *clip.shape[3:], device=clip.device)
        for part in self.chunks(self.samples, self.copies_per_pass(clip)):
            count = part.stop - part.start
            noise = torch.randn((count, *clip.shape), generator=generator, device=clip.device)
            copies = clip.unsqueeze(0) + sigma * noise
            flat = copies.flatten(0, 1)
            grads = run_pass(self.model, flat, shared.target, INPUT).input_grad
            total += saliency_of(grads).unflatten(0, (count, clip.shape[0])).sum(0)
        return Output(total / self.samples)


class IntegratedGradients(_Batched):
    """Integrated Gradients from a baseline (see :mod:`vadx.explain.baselines`) or a tensor."""

    name = "integrated_gradients"
    display_name = "Integrated Gradients"
    description = (
        "Each pixel's share of the decision against a black clip (sums to the score change)."
    )
    signed = True

    def __init__(
        self,
        model: ExplainableModel,
        steps: int = 32,
        baseline: str | torch.Tensor = "zeros",
        batch_frames: int = BATCH_FRAMES,
    ) -> None:
        super().__init__(model, batch_frames)
        check_positive("steps", steps)
        if not isinstance(baseline, torch.Tensor):
            check_choice("baseline", baseline, BASELINES)
        self.steps, self.baseline = steps, baseline

    def settings(self) -> dict[str, SettingValue]:
        baseline = "tensor" if isinstance(self.baseline, torch.Tensor) else self.baseline
        return {"steps": self.steps, "baseline": baseline, "quadrature": "gauss-legendre"}

    def baseline_for(self, clip: torch.Tensor) -> torch.Tensor:
        if isinstance(self.baseline, torch.Tensor):
            baseline = self.baseline.to(clip.device, clip.dtype)
            try:
                return baseline.expand_as(clip)
            except RuntimeError:
                raise ConfigError(
                    f"an Integrated Gradients baseline of shape {tuple(baseline.shape)} does not "
                    f"broadcast to the clip's {tuple(clip.shape)}"
                ) from None
        return baseline_clip(self.model, clip, self.baseline)

    def compute(self, shared: Pass) -> Output:
        clip = shared.clip
        baseline = self.baseline_for(clip)
        nodes, weights = np.polynomial.legendre.leggauss(self.steps)
        alphas = torch.tensor((nodes + 1) / 2, dtype=clip.dtype, device=clip.device)
        weights = torch.tensor(weights / 2, dtype=clip.dtype, device=clip.device)
        shape = (-1,) + (1,) * clip.dim()
        difference = clip - baseline
        integral = torch.zeros_like(clip)
        # the path is built chunk by chunk: memory is bounded by batch_frames, not by steps
        for part in self.chunks(self.steps, self.copies_per_pass(clip)):
            path = baseline.unsqueeze(0) + alphas[part].view(shape) * difference.unsqueeze(0)
            grads = run_pass(self.model, path.flatten(0, 1), shared.target, INPUT).input_grad
            integral += (weights[part].view(shape) * grads.unflatten(0, path.shape[:2])).sum(0)
        attributions = (difference * integral).sum(2)
        with torch.no_grad():
            start = shared.target.scores(logits_of(self.model, baseline))
        delta = shared.scores - start - attributions.flatten(1).sum(1)
        return Output(attributions, {"delta": delta})


class GuidedBackprop(Method):
    """Guided backpropagation saliency (its own pass with the backbone's ReLUs guided)."""

    name = "guided_backprop"
    display_name = "Guided Backprop"
    description = "Fine-grained edges the decision is sensitive to (not class-specific)."

    def compute(self, shared: Pass) -> Output:
        return Output(saliency_of(guided_input_gradient(self.model, shared)))


def guided_input_gradient(model: ExplainableModel, shared: Pass) -> torch.Tensor:
    """Input gradients ``(B, T, 3, H, W)`` of the shared target with guided ReLUs."""
    with guided_relus(model.backbone):
        grad = run_pass(model, shared.clip, shared.target, INPUT).input_grad
    assert grad is not None
    return grad
