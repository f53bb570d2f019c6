"""How well a normality model finds what was planted in footage it never learnt from: the
metrics of the anomaly-detection benchmarks (MVTec AD, anomalib), on frames and on maps.

- :func:`frame_roc_auc`: frames with something planted against frames without, ranked by their
  scores (higher is better, 0.5 is chance);
- :func:`pixel_roc_auc`: the same for every pixel of the maps brought to the frames' size
  (:func:`frame_size_maps`) against the planted masks (higher is better);
- :func:`pro_auc`: the per-region overlap (Bergmann et al. 2020, MVTec AD): at each threshold,
  the mean share of every connected planted region (per frame) that the map covers, against
  the false-positive rate of the pixels outside them; the area under that curve up to a
  false-positive rate of ``max_fpr`` (0.3, as MVTec AD and anomalib), divided by ``max_fpr``
  (higher is better, 1 is perfect). Unlike pixel ROC-AUC, a small region counts as much as a
  large one;
- :func:`false_alarm_rate`: alarms counted on normal footage, as a rate per hour with its exact
  Poisson upper confidence bound: minutes of footage without an alarm do not show a rate of
  one per hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from vadx.errors import InputError


def frame_roc_auc(scores: np.ndarray, anomalous: np.ndarray) -> float:
    """ROC-AUC of per-frame ``scores`` for the frames marked ``anomalous`` (booleans)."""
    labels = np.asarray(anomalous, bool).ravel()
    _both_kinds(labels, "frames")
    return float(roc_auc_score(labels, np.asarray(scores, np.float64).ravel()))


def pixel_roc_auc(maps: np.ndarray, masks: np.ndarray) -> float:
    """ROC-AUC of every pixel of ``maps`` ``(N, H, W)`` for the pixels set in ``masks``."""
    labels = np.asarray(masks, bool)
    _same_shape(maps, labels)
    _both_kinds(labels, "pixels")
    return float(roc_auc_score(labels.ravel(), np.asarray(maps, np.float64).ravel()))


def pro_auc(maps: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve up to ``max_fpr`` (module doc).

    Regions are the 8-connected components of each frame's mask. The curve is exact: one point
    per distinct map value (every pixel at or above it counted as flagged), from (0, 0); the
    point at ``max_fpr`` is interpolated linearly, and the area is the trapezoidal rule's."""
    if not 0 < max_fpr <= 1:
        raise InputError(f"max_fpr must be in (0, 1], got {max_fpr}")
    labels = np.asarray(masks, bool)
    _same_shape(maps, labels)
    _both_kinds(labels, "pixels")
    regions = np.zeros(labels.shape, np.int64)
    count = 0
    for t, mask in enumerate(labels):
        found, labelled = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions[t] = np.where(labelled > 0, labelled + count, 0)
        count += found - 1
    regions = regions.ravel()
    sizes = np.bincount(regions)
    normal = regions == 0
    # each pixel's step along the curve once the threshold passes it
    fpr_step = normal / normal.sum()
    overlap_step = np.where(normal, 0.0, 1.0 / (count * sizes[regions]))
    scores = np.asarray(maps, np.float64).ravel()
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    distinct = np.r_[ranked[1:] != ranked[:-1], True]  # the last pixel of each tie
    fpr = np.r_[0.0, np.cumsum(fpr_step[order])[distinct]]
    overlap = np.r_[0.0, np.cumsum(overlap_step[order])[distinct]]
    before = int(np.sum(fpr < max_fpr))  # points before the cut; (0, 0) is one
    x, y = fpr[:before], overlap[:before]
    if before < len(fpr):  # the segment crossing the cut, up to it (not a step at it)
        share = (max_fpr - x[-1]) / (fpr[before] - x[-1])
        x, y = np.r_[x, max_fpr], np.r_[y, y[-1] + share * (overlap[before] - y[-1])]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / max_fpr)


def frame_size_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps ``(N, h, w)`` brought to ``size`` = ``(height, width)`` by bilinear interpolation
    (a model that stretches frames to its grid: each cell is a rectangle of the frame)."""
    height, width = size
    return np.stack(
        [
            cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
            for m in maps
        ]
    )


@dataclass(frozen=True, slots=True)
class FalseAlarmRate:
    """Alarms on ``hours`` of normal footage: their rate per hour and the rate's exact Poisson
    upper bound at ``confidence`` (one-sided; with no alarm, ``-ln(1 - confidence) / hours``)."""

    alarms: int
    hours: float
    per_hour: float
    upper_per_hour: float
    confidence: float


def false_alarm_rate(alarms: int, seconds: float, confidence: float = 0.95) -> FalseAlarmRate:
    """The rate of ``alarms`` raised on ``seconds`` of normal footage, with its upper bound."""
    from scipy.stats import chi2

    if not seconds > 0 or alarms < 0 or not 0 < confidence < 1:
        raise InputError(
            f"need a positive duration, a count ≥ 0 and a confidence in (0, 1), got "
            f"{seconds} s, {alarms} alarms, {confidence}"
        )
    hours = seconds / 3600
    upper = float(chi2.ppf(confidence, 2 * (alarms + 1)) / 2) / hours
    return FalseAlarmRate(alarms, hours, alarms / hours, upper, confidence)


def _same_shape(maps: np.ndarray, masks: np.ndarray) -> None:
    if np.shape(maps) != masks.shape or masks.ndim != 3:
        raise InputError(
            f"maps and masks must both be (N, H, W) of one shape, got {np.shape(maps)} and "
            f"{masks.shape}: bring the maps to the frames' size first (frame_size_maps)"
        )


def _both_kinds(labels: np.ndarray, what: str) -> None:
    if labels.all() or not labels.any():
        raise InputError(f"ROC needs both anomalous and normal {what}, got only one kind")
