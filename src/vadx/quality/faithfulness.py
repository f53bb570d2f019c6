"""Are the maps true to the model? Deletion and insertion curves, spatial and temporal.

**Spatial**: the clip's pixels are ranked by the map over the whole clip (``T·H·W`` pixels, so
the frames that matter give up their pixels first, as the per-clip normalisation says); in
``steps`` equal steps the top-ranked pixels are replaced by the baseline (deletion: the target's
probability should fall fast, a low area under the curve) or revealed on a baseline clip
(insertion: it should rise fast, a high area). **Temporal**: whole frames, ranked by frame
importance, replaced by the baseline frame's features (or revealed), in feature space — the
CNN runs once per frame. Every curve is computed with a random ordering in the same run, so each
score comes with its own baseline (a faithful map beats it: lower deletion, higher insertion).

>>> import numpy as np
>>> auc(np.array([1.0, 0.5, 0.0]))
0.5
"""

from __future__ import annotations

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.errors import InputError
from vadx.explain.baselines import baseline_clip
from vadx.models.crnn import CRNN


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps of ``[0, 1]`` (trapezoids)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def _probabilities(model: CRNN, clips: torch.Tensor, target: int, batch_frames: int) -> np.ndarray:
    per_pass = max(1, batch_frames // clips.shape[1])
    with torch.no_grad():
        logits = torch.cat([model(part) for part in clips.split(per_pass)])
    return logits.softmax(1)[:, target].cpu().numpy()


def _pixel_order(maps: np.ndarray, rng: np.random.Generator, random: bool) -> np.ndarray:
    """Pixel indices of the clip, most important first (random ties broken at random)."""
    flat = np.asarray(maps, dtype=np.float64).ravel()
    jitter = rng.random(flat.size)
    return rng.permutation(flat.size) if random else np.lexsort((jitter, -flat))


def spatial_curves(
    model: CRNN,
    clip: torch.Tensor,
    maps: np.ndarray,
    target: int,
    *,
    baseline: str = "blur",
    steps: int = 10,
    seed: int = 0,
    batch_frames: int = 64,
    picture: np.ndarray | None = None,
    kinds: tuple[str, ...] = ("deletion", "insertion"),
    random: bool = True,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves (``steps + 1`` target probabilities) of one clip
    ``(1, T, 3, H, W)`` for its maps ``(T, H, W)``, with the random-order curves. Only the
    pixels of the ``picture`` ``(H, W)`` are removed or revealed (letter-box padding is not
    evidence to remove); default: every pixel. ``kinds`` and ``random=False`` leave out curves
    (their forward passes) that a caller does not read."""
    if clip.dim() != 5 or clip.shape[0] != 1:
        raise InputError(f"expected one clip (1, T, 3, H, W), got {tuple(clip.shape)}")
    steps_shape = (clip.shape[1], *clip.shape[3:])
    if tuple(maps.shape) != steps_shape:
        raise InputError(f"maps {tuple(maps.shape)} do not match the clip's frames {steps_shape}")
    rng = np.random.default_rng(seed)
    base = baseline_clip(model, clip, baseline)
    count = int(np.prod(steps_shape))
    inside = (
        np.ones(steps_shape, bool)
        if picture is None
        else np.broadcast_to(np.asarray(picture, dtype=bool), steps_shape)
    )
    inside = inside.reshape(-1)
    curves = {}
    with eval_mode(model):
        for shuffled in (False, True)[: 1 + random]:
            order = _pixel_order(maps, rng, shuffled)
            order = torch.from_numpy(order[inside[order]]).to(clip.device)
            rank = torch.full((count,), count, dtype=torch.long, device=clip.device)
            rank[order] = torch.arange(len(order), device=clip.device)
            rank = rank.view(1, steps_shape[0], 1, *steps_shape[1:])
            cut = [round(k * len(order) / steps) for k in range(steps + 1)]
            chosen = torch.stack([(rank < c) for c in cut]).squeeze(1)  # (steps+1, T, 1, H, W)
            deleted = torch.where(chosen, base, clip)
            inserted = torch.where(chosen, clip, base)
            suffix = "_random" if shuffled else ""
            if "deletion" in kinds:
                curves["deletion" + suffix] = _probabilities(model, deleted, target, batch_frames)
            if "insertion" in kinds:
                curves["insertion" + suffix] = _probabilities(model, inserted, target, batch_frames)
    return curves


def temporal_curves(
    model: CRNN,
    clip: torch.Tensor,
    importance: np.ndarray,
    target: int,
    baseline: str = "mean",
    repeats: int = 16,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Temporal deletion and insertion curves (``T + 1`` probabilities), in feature space, and
    their means over ``repeats`` random frame orders."""
    steps = clip.shape[1]
    importance = np.asarray(importance, dtype=np.float64).ravel()
    if importance.shape != (steps,):
        raise InputError(f"{importance.shape[0]} importance scores for a clip of {steps} frames")
    rng = np.random.default_rng(seed)
    with eval_mode(model), torch.no_grad():
        features = model.frame_features(clip)[0]
        base = model.frame_features(baseline_clip(model, clip, baseline))[0]

        def curves(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            gone = torch.zeros(steps + 1, steps, 1, dtype=torch.bool, device=clip.device)
            for k in range(1, steps + 1):
                gone[k:, order[k - 1]] = True
            deleted = torch.where(gone, base, features)
            inserted = torch.where(gone, features, base)
            both = model.forward_features(torch.cat([deleted, inserted])).softmax(1)[:, target]
            both = both.cpu().numpy()
            return both[: steps + 1], both[steps + 1 :]

        jitter = rng.random(steps)
        deletion, insertion = curves(np.lexsort((jitter, -importance)))
        randoms = [curves(rng.permutation(steps)) for _ in range(repeats)]
    return {
        "deletion": deletion,
        "insertion": insertion,
        "deletion_random": np.mean([r[0] for r in randoms], axis=0),
        "insertion_random": np.mean([r[1] for r in randoms], axis=0),
    }
