"""Spatial occlusion: how much the explained logit drops when a patch of one frame is hidden.

A ``patch × patch`` square slides over every frame (``stride`` apart, the last row and column
flush with the border) and is replaced by the baseline (see :mod:`vadx.explain.baselines`).
Hiding a patch of frame ``t`` changes only frame ``t``'s features, so only that frame goes
through the CNN again and the RNN + head run on the features of the other frames, unchanged:
``T·P`` frame forwards instead of ``T·P`` whole-clip forwards, and exactly the same numbers as
occluding the clip and running the full model. Each pixel's value is the mean drop over the
patches that cover it (signed: negative where hiding a patch *raised* the logit).
"""

from __future__ import annotations

import torch

from vadx.explain.base import Method, Output, SettingValue, check_positive
from vadx.explain.baselines import baseline_clip
from vadx.explain.gradients import BATCH_FRAMES
from vadx.explain.passes import Pass
from vadx.explain.protocol import ExplainableModel, features_of


def patch_starts(side: int, patch: int, stride: int) -> list[int]:
    """Start offsets of patches covering ``side`` pixels, the last one flush with the end."""
    starts = list(range(0, max(1, side - patch + 1), stride))
    if starts[-1] + patch < side:
        starts.append(side - patch)
    return starts


class Occlusion(Method):
    """Spatial occlusion of every frame, batched, with the RNN run in feature space."""

    name = "occlusion"
    display_name = "Occlusion"
    description = (
        "How much the decision drops when each patch of the frame is hidden (slow, model-agnostic)."
    )
    signed = True

    def __init__(
        self,
        model: ExplainableModel,
        *,
        patch: int | None = None,
        stride: int | None = None,
        baseline: str = "zeros",
        batch_frames: int = BATCH_FRAMES,
    ) -> None:
        super().__init__(model)
        for name, value in (("patch", patch), ("stride", stride)):
            if value is not None:
                check_positive(name, value)
        check_positive("batch_frames", batch_frames)
        baseline_clip(model, torch.zeros(1, 1, 3, 1, 1), baseline)  # validates the name
        self.patch, self.stride, self.baseline, self.batch_frames = (
            patch,
            stride,
            baseline,
            batch_frames,
        )

    def geometry(self, height: int, width: int) -> tuple[int, int]:
        """(patch, stride) for frames of this size: defaults 1/8 of the side, half overlap."""
        patch = self.patch or max(1, min(height, width) // 8)
        return min(patch, height, width), self.stride or max(1, patch // 2)

    def settings(self) -> dict[str, SettingValue]:
        return {"patch": self.patch, "stride": self.stride, "baseline": self.baseline}

    def compute(self, shared: Pass) -> Output:
        clip, features = shared.clip, shared.features
        batch, steps, _, height, width = clip.shape
        patch, stride = self.geometry(height, width)
        boxes = [
            (y, x)
            for y in patch_starts(height, patch, stride)
            for x in patch_starts(width, patch, stride)
        ]
        base = baseline_clip(self.model, clip, self.baseline)
        total = torch.zeros(batch, steps, height, width, device=clip.device)
        count = torch.zeros(height, width, device=clip.device)
        for y, x in boxes:
            count[y : y + patch, x : x + patch] += 1
        items = batch * steps * len(boxes)
        with torch.no_grad():
            for part in self.chunks(items, self.batch_frames):
                index = torch.arange(part.start, part.stop)
                videos = index // (steps * len(boxes))
                frames = (index // len(boxes)) % steps
                where = [boxes[i] for i in (index % len(boxes)).tolist()]
                hidden = clip[videos, frames].clone()
                for row, (y, x) in enumerate(where):
                    cut = (slice(None), slice(y, y + patch), slice(x, x + patch))
                    hidden[row][cut] = base[videos[row], frames[row]][cut]
                sequences = features[videos].clone()
                new = features_of(self.model, hidden.unsqueeze(1))[:, 0]
                sequences[torch.arange(len(index)), frames] = new
                logits = self.model.forward_features(sequences)
                drop = shared.scores[videos] - shared.target.scores(logits, videos)
                for row, (y, x) in enumerate(where):
                    total[videos[row], frames[row], y : y + patch, x : x + patch] += drop[row]
        return Output(total / count)
