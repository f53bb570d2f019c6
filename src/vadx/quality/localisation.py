"""Do the maps point at the anomaly? Scores against ground-truth masks and frame labels.

All functions take maps ``(T, H, W)`` (non-negative display maps on the model's frames) and
boolean masks ``(T, H, W)`` of the same size, and score each frame whose mask is not empty;
frames without anomaly pixels give NaN, so means are taken over anomalous frames only.

>>> import numpy as np
>>> masks = np.zeros((1, 4, 4), bool); masks[0, :2, :2] = True
>>> maps = masks.astype(np.float32)
>>> pointing_game(maps, masks).tolist(), energy_pointing_game(maps, masks).tolist()
([1.0], [1.0])
>>> float(mask_area(masks)[0])
0.25
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt
from sklearn.metrics import roc_auc_score

from vadx.errors import InputError

#: the pointing game's tolerance in pixels on 224-pixel images (Zhang et al. 2016)
TOLERANCE_AT_224 = 15.0


def _checked(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise InputError(f"maps {maps.shape} and masks {masks.shape} must both be (T, H, W)")
    return maps, masks, masks.reshape(len(masks), -1).any(1)


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """1 where the frame's map maximum lies inside the mask, or within ``tolerance`` pixels of
    it, 0 otherwise (a flat map misses)."""
    maps, masks, anomalous = _checked(maps, masks)
    if tolerance < 0:
        raise InputError(f"the pointing game's tolerance must be ≥ 0 pixels, got {tolerance}")
    flat = maps.reshape(len(maps), -1)
    peaks = flat.argmax(1)
    if tolerance > 0:
        near = np.stack([distance_transform_edt(~m) <= tolerance if m.any() else m for m in masks])
    else:
        near = masks
    hits = near.reshape(len(near), -1)[np.arange(len(flat)), peaks]
    flat_map = flat.max(1) <= flat.min(1)
    return np.where(anomalous, (hits & ~flat_map).astype(np.float64), np.nan)


def cell_pointing_game(
    raw: np.ndarray, masks: np.ndarray, picture: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pointing game on the cells the map really has: ``raw`` ``(T, h, w)`` at its own
    resolution (a CAM's layer, 4×4 or 7×7; a gradient map's pixels), not the upsampled display
    map, whose bilinear plateaus make ties that raster order breaks toward the top left.

    A cell holds the anomaly when the mask ``(T, H, W)`` covers any pixel of its footprint in
    the frame. **Ties:** when several cells share the frame's maximum magnitude, the frame
    scores the share of them that hold the anomaly — the expected hit of a random tie-break; a
    flat map misses. Cells wholly outside the ``picture`` (letter-box padding) are left out.

    Returns the per-frame scores and, as their baseline, the share of the picture's cells that
    hold the anomaly (what a randomly placed peak scores); NaN on frames without anomaly.

    >>> raw = np.array([[[0.0, 2.0], [2.0, 1.0]]])  # a tie between two cells
    >>> masks = np.zeros((1, 4, 4), bool); masks[0, 0, 3] = True  # in the top-right cell
    >>> scores, chance = cell_pointing_game(raw, masks)
    >>> scores.tolist(), chance.tolist()
    ([0.5], [0.25])
    """
    raw = np.abs(np.asarray(raw, dtype=np.float64))
    masks = np.asarray(masks, dtype=bool)
    if raw.ndim != 3 or masks.ndim != 3 or len(raw) != len(masks):
        raise InputError(
            f"raw maps {raw.shape} and masks {masks.shape} must be (T, h, w), (T, H, W)"
        )
    (h, w), (height, width) = raw.shape[1:], masks.shape[1:]
    inside = _picture(picture, (height, width))
    rows = [slice(i * height // h, -(-(i + 1) * height // h)) for i in range(h)]
    cols = [slice(j * width // w, -(-(j + 1) * width // w)) for j in range(w)]
    holds = np.array([[[m[r, c].any() for c in cols] for r in rows] for m in masks])
    real = np.array([[inside[r, c].any() for c in cols] for r in rows])
    anomalous = masks.reshape(len(masks), -1).any(1)
    scores = np.full(len(raw), np.nan)
    for t in np.flatnonzero(anomalous):
        values = np.where(real, raw[t], -np.inf)
        peak = values.max()
        top = (values == peak) & real
        if peak <= values[real].min():  # flat
            scores[t] = 0.0
        else:
            scores[t] = holds[t][top].mean()
    chance = np.where(anomalous, holds[:, real].mean(1), np.nan)
    return scores, chance


def pointing_tolerance(size: tuple[int, ...] | list[int]) -> float:
    """The pointing game's customary tolerance for frames of ``size`` ``(H, W)``: 15 pixels on
    224-pixel images (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop";
    TorchRay's default), scaled with the frame's longer side — 7.5 pixels at 112."""
    return TOLERANCE_AT_224 * max(size) / 224


def energy_pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each frame's map mass inside the mask (0 for an empty map)."""
    maps, masks, anomalous = _checked(maps, masks)
    total = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * masks).reshape(len(maps), -1).sum(1)
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return np.where(anomalous, share, np.nan)


def mask_area(masks: np.ndarray, picture: np.ndarray | None = None) -> np.ndarray:
    """Share of each frame's picture (``picture`` ``(H, W)``: not the letter-box padding; the
    whole frame by default) the mask covers: what a uniform map scores on the energy game."""
    masks = np.asarray(masks, dtype=bool)
    inside = _picture(picture, masks.shape[-2:])
    area = masks[:, inside].mean(1)
    return np.where(area > 0, area, np.nan)


def mask_iou(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """IoU of ``map ≥ threshold × the frame's maximum`` with the mask."""
    maps, masks, anomalous = _checked(maps, masks)
    peak = maps.reshape(len(maps), -1).max(1)[:, None, None]
    region = (maps >= threshold * peak) & (peak > 0)
    union = (region | masks).reshape(len(maps), -1).sum(1)
    inter = (region & masks).reshape(len(maps), -1).sum(1)
    iou = np.divide(inter, union, out=np.zeros(len(maps)), where=union > 0)
    return np.where(anomalous, iou, np.nan)


def mask_auroc(
    maps: np.ndarray, masks: np.ndarray, picture: np.ndarray | None = None
) -> np.ndarray:
    """ROC-AUC of each frame's map values against its mask (scikit-learn) over the picture's
    pixels (padding, which no map should score, is left out); 0.5 is chance."""
    maps, masks, anomalous = _checked(maps, masks)
    inside = _picture(picture, masks.shape[-2:])
    scores = np.full(len(maps), np.nan)
    for t in np.flatnonzero(anomalous):
        truth = masks[t][inside]
        if not truth.all():
            scores[t] = roc_auc_score(truth, maps[t][inside])
    return scores


def _picture(picture: np.ndarray | None, size: tuple[int, ...]) -> np.ndarray:
    """The picture mask ``(H, W)`` (all True when None), checked against the frames' size."""
    if picture is None:
        return np.ones(size, bool)
    picture = np.asarray(picture, dtype=bool)
    if picture.shape != tuple(size):
        raise InputError(f"the picture mask is {picture.shape}, the frames {tuple(size)}")
    return picture


def temporal_auroc(importance: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of frame importance ``(T,)`` against per-frame labels ``(T,)`` (1 = anomaly);
    NaN when the clip has only one kind of frame."""
    labels = np.asarray(labels).astype(int).ravel()
    importance = np.asarray(importance, dtype=np.float64).ravel()
    if labels.shape != importance.shape:
        raise InputError(f"{importance.shape} importance scores for {labels.shape} labels")
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, importance))
