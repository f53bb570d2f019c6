"""Temporal importance: which frames made the model decide, by several named estimators.

* ``frame_shapley`` (the default) — TimeSHAP-style Shapley values of contiguous segments of
  frames (exact, over all ``2^segments`` coalitions in feature space; or estimated from random
  orders, ``permutations``, which affords one segment per frame), each frame given its
  segment's value divided by the segment's length. A missing segment is shown as ``black``
  frames by default (the camera recorded nothing). The values add up to
  ``y(clip) − y(all baselines)``.
* ``frame_occlusion`` — the drop of the explained logit when frame ``t`` alone is replaced by a
  baseline (``mean`` frame of the clip, ``previous`` frame, ``blur``, ``zeros``, ``black``) or
  removed from the sequence (``drop``).
* ``gradient_norm`` — ``‖∂y/∂f_t‖`` at each RNN input step, from the shared pass.
* ``gradcam_mass`` — the un-normalised Grad-CAM mass ``Σ_ij cam[t, i, j]`` of each frame.

Replacing a frame changes only its features, so the perturbation estimators run the CNN once
per frame (plus once per baseline frame) and only the RNN + head per perturbed sequence: the
same numbers as re-running the full model on the perturbed clip, at a small fraction of its
cost.

Why Shapley values of segments are the default:

* gradients through an RNN fade with the distance to the last step (Ismail et al., NeurIPS
  2019, "Input-Cell Attention Reduces Vanishing Saliency of Recurrent Neural Networks"), so
  gradient-based curves favour the last frames whatever the content;
* occluding one frame measures what the output loses without *that frame alone*: when an
  anomaly is visible in many frames, any one of them can go at little cost and each gets
  almost nothing (measured on the demo model: frame occlusion's temporal ROC-AUC against the
  anomalous frames is 0.74, Shapley's 0.91 — ``docs/quality.md``). Shapley values average
  over every coalition of the other segments, so redundant evidence is shared, not lost;
* the baseline is ``black`` rather than the clip's ``mean`` frame because an anomaly that
  stays in place (a fire, a fight on one spot) for most of the clip leaves a ghost in the mean
  frame: "removing" a segment would keep the anomaly (ROC-AUC 0.86 with ``mean`` frames).
"""

from __future__ import annotations

import math

import torch

from vadx.errors import ConfigError
from vadx.explain.base import Method, Output, SettingValue, check_choice, check_positive
from vadx.explain.baselines import BASELINES, baseline_clip
from vadx.explain.cam import grad_cam
from vadx.explain.passes import Need, Pass
from vadx.explain.protocol import ExplainableModel, features_of

#: most feature sequences per RNN batch
BATCH_SEQUENCES = 512
FRAME_BASELINES = (*BASELINES, "drop")


def baseline_features(model: ExplainableModel, shared: Pass, kind: str) -> torch.Tensor:
    """Per-frame features ``(B, T, F)`` of the baseline ``kind``, running the CNN only on
    frames that differ from the clip's (one frame per video for a constant baseline)."""
    features = shared.features
    if kind == "previous":
        if features.shape[1] < 2:
            return features.clone()
        return torch.cat([features[:, 1:2], features[:, :-1]], dim=1)
    base = baseline_clip(model, shared.clip, kind)
    with torch.no_grad():
        if kind == "blur":
            return features_of(model, base)
        return features_of(model, base[:, :1]).expand_as(features)


class _Temporal(Method):
    kind = "temporal"
    signed = True

    def run_sequences(self, sequences: torch.Tensor, shared: Pass) -> torch.Tensor:
        """Explained logits of feature sequences ``(n, B, T', F)`` → ``(n, B)``, batched."""
        count, batch = sequences.shape[:2]
        scores = []
        with torch.no_grad():
            for part in self.chunks(count, max(1, BATCH_SEQUENCES // batch)):
                logits = self.model.forward_features(sequences[part].flatten(0, 1))
                scores.append(shared.target.scores(logits).view(-1, batch))
        return torch.cat(scores)


class FrameOcclusion(_Temporal):
    """The drop of the explained logit when each frame is replaced or removed, in feature
    space (see module doc)."""

    name = "frame_occlusion"
    display_name = "Frame occlusion"
    description = "How much the decision drops when each frame is left out on its own."

    def __init__(self, model: ExplainableModel, baseline: str = "mean") -> None:
        super().__init__(model)
        check_choice("baseline", baseline, FRAME_BASELINES)
        self.baseline = baseline

    def settings(self) -> dict[str, SettingValue]:
        return {"baseline": self.baseline}

    def compute(self, shared: Pass) -> Output:
        features = shared.features
        steps = features.shape[1]
        if self.baseline == "drop":
            if steps < 2:
                raise ConfigError("frame_occlusion with baseline 'drop' needs clips of ≥ 2 frames")
            sequences = torch.stack(
                [torch.cat([features[:, :t], features[:, t + 1 :]], dim=1) for t in range(steps)]
            )
        else:
            base = baseline_features(self.model, shared, self.baseline)
            sequences = features.unsqueeze(0).repeat(steps, 1, 1, 1)
            index = torch.arange(steps)
            sequences[index, :, index] = base.transpose(0, 1)
        occluded = self.run_sequences(sequences, shared)
        return Output((shared.scores.unsqueeze(0) - occluded).T.contiguous())


class FrameShapley(_Temporal):
    """Shapley values of ``segments`` contiguous groups of frames (see module doc); extras
    ``segment_values`` ``(B, n)`` and ``segments`` ``(n, 2)`` (first, last frame).

    ``segments``: groups of frames (default: one per frame). ``permutations``: exact over all
    ``2^n`` coalitions when that costs no more than sampling would (``n ≤ 7``), else estimated
    from :data:`PERMUTATIONS` random orders of the segments, each also taken in reverse
    (antithetic pairs, Mitchell et al. 2022): ``2·permutations·(n + 1)`` sequences, so a value
    per frame costs about twice what 8 exact segments do. An int forces sampling with that many
    orders, ``0`` forces the exact values (at most :data:`MAX_SEGMENTS` segments). Either way
    the values add up to ``y(clip) − y(all baselines)``; ``seed`` fixes the orders.
    """

    name = "frame_shapley"
    display_name = "Frame Shapley"
    description = (
        "Each frame's fair share of the decision, counting evidence spread over several frames."
    )
    MAX_SEGMENTS = 12
    PERMUTATIONS = 12

    def __init__(
        self,
        model: ExplainableModel,
        segments: int | None = None,
        baseline: str = "black",
        permutations: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        if segments is not None:
            check_positive("segments", segments)
        if permutations is not None and permutations < 0:
            raise ConfigError(f"permutations must be ≥ 0 (0: exact), got {permutations}")
        if permutations == 0 and segments is not None:
            self._check_exact(segments)
        check_choice("baseline", baseline, BASELINES)
        self.segments, self.baseline = segments, baseline
        self.permutations, self.seed = permutations, seed

    def _check_exact(self, n: int) -> None:
        if n > self.MAX_SEGMENTS:
            raise ConfigError(
                f"exact frame_shapley enumerates 2^segments coalitions; use at most "
                f"{self.MAX_SEGMENTS} segments, or sample orders (permutations ≥ 1), got {n}"
            )

    def orders(self, n: int) -> int:
        """Random orders sampled for ``n`` segments (0: exact values)."""
        if self.permutations is not None:
            return self.permutations
        return 0 if 2**n <= 2 * self.PERMUTATIONS * (n + 1) else self.PERMUTATIONS

    def settings(self) -> dict[str, SettingValue]:
        return {
            "segments": self.segments or "one per frame",
            "baseline": self.baseline,
            "permutations": "auto" if self.permutations is None else self.permutations,
            "seed": self.seed,
        }

    def compute(self, shared: Pass) -> Output:
        features = shared.features
        steps = features.shape[1]
        groups = torch.tensor_split(torch.arange(steps), min(self.segments or steps, steps))
        n = len(groups)
        owner = torch.empty(steps, dtype=torch.long)
        for i, group in enumerate(groups):
            owner[group] = i
        base = baseline_features(self.model, shared, self.baseline)
        orders = self.orders(n)
        if orders == 0:
            self._check_exact(n)
            phi = self._exact(features, base, owner, n, shared)
        else:
            phi = self._sampled(features, base, owner, n, shared, orders)
        lengths = torch.tensor([len(g) for g in groups], dtype=phi.dtype, device=phi.device)
        per_frame = (phi / lengths)[:, owner.to(phi.device)]
        bounds = torch.tensor([[int(g[0]), int(g[-1])] for g in groups])
        return Output(per_frame, {"segment_values": phi, "segments": bounds})

    def _values(self, present, features, base, owner, shared) -> torch.Tensor:
        """The explained logit ``(C, B)`` of each coalition ``present`` ``(C, n)``."""
        keep = present[:, owner].bool().to(features.device)  # (C, T)
        sequences = torch.where(keep[:, None, :, None], features.unsqueeze(0), base.unsqueeze(0))
        return self.run_sequences(sequences, shared)

    def _exact(self, features, base, owner, n, shared) -> torch.Tensor:
        coalitions = torch.arange(2**n)
        present = (coalitions[:, None] >> torch.arange(n)) & 1  # (2^n, n)
        values = self._values(present, features, base, owner, shared)  # (2^n, B)
        sizes = present.sum(1)
        weight = torch.tensor(
            [
                math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) if s < n else 0.0
                for s in sizes.tolist()
            ],
            dtype=values.dtype,
            device=values.device,
        )
        phi = torch.zeros(features.shape[0], n, dtype=values.dtype, device=values.device)
        for i in range(n):
            without = present[:, i] == 0
            gain = values[coalitions[without] | (1 << i)] - values[coalitions[without]]
            phi[:, i] = (weight[without, None] * gain).sum(0)
        return phi

    def _sampled(self, features, base, owner, n, shared, count) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        orders = [torch.randperm(n, generator=generator) for _ in range(count)]
        orders += [order.flip(0) for order in orders]  # antithetic: each order reversed
        prefixes = []
        for order in orders:  # the coalitions of the first k players of the order, k = 0…n
            present = torch.zeros(n + 1, n, dtype=torch.long)
            for k in range(n):
                present[k + 1 :, order[k]] = 1
            prefixes.append(present)
        values = self._values(torch.cat(prefixes), features, base, owner, shared)
        values = values.view(len(orders), n + 1, -1)  # (orders, n + 1, B)
        gains = values[:, 1:] - values[:, :-1]  # gain of the order's k-th player
        phi = torch.zeros(features.shape[0], n, dtype=values.dtype, device=values.device)
        for o, order in enumerate(orders):
            phi[:, order.to(phi.device)] += gains[o].T
        return phi / len(orders)


class GradientNorm(_Temporal):
    """``‖∂y/∂f_t‖₂`` at each RNN input step (recency-biased; see module doc)."""

    name = "gradient_norm"
    display_name = "Gradient norm at the RNN input"
    description = (
        "How sensitive the decision is to each frame at the recurrent layer's input (favours "
        "recent frames)."
    )
    signed = False

    def need(self) -> Need:
        return Need(feature_grad=True)

    def compute(self, shared: Pass) -> Output:
        assert shared.feature_grad is not None
        return Output(shared.feature_grad.norm(dim=-1))


class GradCAMMass(_Temporal):
    """Each frame's un-normalised Grad-CAM mass (frame weighting) at ``layer``."""

    name = "gradcam_mass"
    display_name = "Grad-CAM mass"
    description = "How much Grad-CAM evidence each frame holds before normalisation."
    signed = False

    def __init__(self, model: ExplainableModel, layer: str | None = None) -> None:
        super().__init__(model)
        self.layer = self.resolve_layer(layer)

    def need(self) -> Need:
        return Need(layers=frozenset({self.layer}), layer_grads=True)

    def settings(self) -> dict[str, SettingValue]:
        return {"layer": self.layer, "weighting": "frame"}

    def compute(self, shared: Pass) -> Output:
        cam = grad_cam(shared.activations[self.layer], shared.gradients[self.layer], "frame")
        return Output(cam.sum((-2, -1)))
