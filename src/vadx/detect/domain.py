"""Is this footage like what the model was trained on? A familiarity check in feature space.

Softmax confidence does not say: a model trained on synthetic scenes gives 0.95 "shooting" on a
real plaza. Distance in the CNN's feature space does. The training set's pooled per-frame
features (what the feature cache stores, ``(T, F)`` per clip) are fitted with a Gaussian per
class sharing one covariance, shrunk by Ledoit-Wolf (Lee et al., NeurIPS 2018). A frame's
distance is its Mahalanobis distance to the nearest class mean,

    d(x) = min_k ‖W (x − μ_k)‖,   W = L⁻¹,  Σ = L Lᵀ,

and a window's distance is the mean over its frames. The threshold is the 99.5th percentile of
the distances of the validation videos' windows (held in, never fitted), cut as detection cuts
them (sliding windows of the model's clip length and frame spacing). A window's **domain score** is
its distance over the threshold: ≤ 1 is familiar, > 1 is outside the model's domain.

The statistics live in the checkpoint (``domain.safetensors``, described in ``config.json``,
tied to the weights' sha256), written at the end of training or by ``vadx calibrate``.

>>> stats = fit_domain(train_features, train_labels, val_windows)        # doctest: +SKIP
>>> stats.scores(stats.frame_distances(window_features).mean(-1))        # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.errors import InputError
from vadx.models.domain_stats import (
    DOMAIN_FILE,
    PERCENTILE,
    DomainStats,
    domain_summary,
    load_domain,
    missing_note,
    verdict_line,
)
from vadx.settings import DOMAIN_MODES, DomainMode

__all__ = [
    "DOMAIN_FILE",
    "DOMAIN_MODES",
    "PERCENTILE",
    "DomainMode",
    "DomainStats",
    "calibrate",
    "check_clip",
    "clip_features",
    "domain_summary",
    "fit_domain",
    "load_domain",
    "missing_note",
    "save_domain",
    "verdict_line",
    "window_features",
]


def fit_domain(
    features: np.ndarray,
    labels: Sequence[int] | None,
    calibration: Sequence[np.ndarray],
    percentile: float = PERCENTILE,
) -> DomainStats:
    """Fit the statistics on training clips' features ``(N, T, F)`` (``labels`` ``(N,)``
    give one mean per class; ``None``: one mean) and set the threshold on calibration windows'
    features (``(M, T, F)``, or M arrays ``(T_i, F)``), whose mean frame distance is each one's
    window distance."""
    from sklearn.covariance import LedoitWolf

    features = np.asarray(features, np.float64)
    if features.ndim != 3 or len(features) < 2:
        raise InputError(
            f"domain statistics need the features of at least two clips (N, T, F), got "
            f"{features.shape}"
        )
    if not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile}")
    clip_labels = np.zeros(len(features), int) if labels is None else np.asarray(labels)
    frames = features.reshape(-1, features.shape[-1])
    frame_labels = np.repeat(clip_labels, features.shape[1])
    classes = np.unique(frame_labels)
    means = np.stack([frames[frame_labels == k].mean(0) for k in classes])
    centred = frames - means[np.searchsorted(classes, frame_labels)]
    covariance = LedoitWolf(assume_centered=True).fit(centred).covariance_
    # constant features (a dead channel) leave it singular: a tiny ridge keeps it invertible
    ridge = 1e-6 * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    lower = np.linalg.cholesky(covariance + ridge * np.eye(len(covariance)))
    whitening = np.linalg.solve(lower, np.eye(len(lower)))
    stats = DomainStats(
        means.astype(np.float32),
        whitening.astype(np.float32),
        threshold=1.0,
        percentile=percentile,
        frames=len(frames),
    )
    if len(calibration) == 0 or any(np.ndim(window) != 2 for window in calibration):
        raise InputError("domain calibration needs the features of at least one window (T, F)")
    distances = np.array([stats.frame_distances(window).mean() for window in calibration])
    quantiles = {f"p{q:g}": float(np.percentile(distances, q)) for q in (50, 90, 99, 100)}
    return replace(
        stats,
        threshold=float(np.percentile(distances, percentile)),
        windows=len(distances),
        calibration=quantiles,
    )


def clip_features(
    model: Any,
    dataset: Any,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled per-frame features ``(N, T, F)`` and labels ``(N,)`` of every clip of a
    :class:`~vadx.data.VideoDataset`, as the model computes them in eval mode."""
    from vadx.data.dataset import make_loader

    device = model.device
    rows, labels, done = [], [], 0
    with eval_mode(model), torch.no_grad():
        for batch in make_loader(dataset, batch_size=batch_size):
            rows.append(model.frame_features(batch.clip.to(device)).cpu().numpy())
            labels.append(np.asarray(batch.label))
            done += len(labels[-1])
            if progress is not None:
                progress(done, len(dataset))
    return np.concatenate(rows), np.concatenate(labels)


class UncheckedClip(TypedDict):
    """The domain check of a clip whose model has no domain statistics, and what to do."""

    checked: Literal[False]
    verdict: Literal["unchecked"]
    note: str


class ClipDomain(TypedDict):
    """The domain check of one clip: ``inside`` or ``outside`` the training domain, its
    domain score (> 1: outside) and the threshold of the window distances."""

    checked: Literal[True]
    verdict: str
    score: float
    threshold: float


#: :func:`check_clip`'s result, as the explanation's files and the report hold it
#: (TypedDicts, not dataclasses: those files and the API carry it as this JSON)
ClipDomainCheck = UncheckedClip | ClipDomain


def check_clip(model: Any, clip: torch.Tensor) -> ClipDomainCheck:
    """The domain check of one clip ``(1, T, 3, H, W)``: its domain score (> 1: outside the
    model's training domain), or why it was not checked. Costs one CNN forward of the clip."""
    stats: DomainStats | None = model.domain
    if stats is None:
        return {"checked": False, "verdict": "unchecked", "note": missing_note(model)}
    with eval_mode(model), torch.no_grad():
        features = model.frame_features(clip)[0].cpu()
    score = float(stats.scores(stats.frame_distances(features).mean()))
    return {
        "checked": True,
        "verdict": "outside" if score > 1 else "inside",
        "score": score,
        "threshold": stats.threshold,
    }


def calibrate(
    model: Any,
    train_set: Any,
    val_set: Any,
    percentile: float = PERCENTILE,
    progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 8,
) -> DomainStats:
    """Domain statistics of ``model``: fitted on the clips of an un-augmented training dataset,
    calibrated on the windows detection cuts from the validation dataset's videos."""
    if len(val_set) == 0:
        raise InputError("domain calibration needs validation clips (none were found)")

    def report(what: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(what, done, total))

    train_features, train_labels = clip_features(model, train_set, batch_size, report("fitting"))
    val_features = window_features(model, val_set.samples, batch_size, report("calibrating"))
    return fit_domain(train_features, train_labels, val_features, percentile)


def window_features(
    model: Any,
    samples: Sequence[Any],
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Features ``(T, F)`` of each window :func:`vadx.detect.detect` would cut from each
    sample's frame range (its explicit frames, when it has them), each frame computed once."""
    from vadx.detect import DetectConfig, video_features, window_spacing
    from vadx.video.decode import VideoReader
    from vadx.video.sampling import even_indices, sliding_windows

    length = model.config.num_frames
    step, span, stride = window_spacing(model, DetectConfig())
    rows = []
    with eval_mode(model):
        for done, sample in enumerate(samples, 1):
            with VideoReader(sample.source, fps=sample.fps) as video:
                stop = sample.stop or video.info.num_frames
                if sample.indices is not None:
                    windows = [np.asarray(sample.indices)]
                elif stop - sample.start < span:  # shorter than a window: the clip, evenly
                    windows = [even_indices(video.info.num_frames, length, sample.start, stop)]
                else:
                    windows = [
                        sample.start + w.indices
                        for w in sliding_windows(stop - sample.start, length, stride, step)
                    ]
                needed = np.unique(np.concatenate(windows))
                features = video_features(model, video, needed, batch_size * length)
            rows += [features[np.searchsorted(needed, window)] for window in windows]
            if progress is not None:
                progress(done, len(samples))
    return rows


# ----------------------------------------------------------------------------- checkpoint
def save_domain(checkpoint: str | Path, stats: DomainStats) -> Path:
    """Add ``stats`` to the checkpoint directory (atomically, file by file: the statistics
    first, then ``config.json`` naming them); the weights and the model id do not change."""
    from vadx.files import write_json, write_safetensors
    from vadx.models.checkpoint import CONFIG_FILE, read_checkpoint
    from vadx.models.weights import file_sha256

    info = read_checkpoint(checkpoint)
    tensors = {
        "means": torch.from_numpy(stats.means.copy()),
        "whitening": torch.from_numpy(stats.whitening.copy()),
    }
    target = write_safetensors(
        info.path / DOMAIN_FILE, tensors, {"weights_sha256": info.weights_sha256}
    )
    document = json.loads((info.path / CONFIG_FILE).read_text(encoding="utf-8"))
    document["domain"] = {
        **asdict(stats.describe()),
        "file": DOMAIN_FILE,
        "sha256": file_sha256(target),
        "weights_sha256": info.weights_sha256,
    }
    write_json(info.path / CONFIG_FILE, document, indent=2)
    return target
