"""Computing a model's domain statistics and checking clips with them (see
:mod:`vadx.domain`): features of training clips and of the windows detection cuts, the
calibration, and saving the statistics into the checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.borrowed import eval_mode
from vadx.domain.stats import DOMAIN_FILE, PERCENTILE, DomainStats, fit_domain, missing_note
from vadx.errors import InputError


def clip_features(
    model: Any,
    dataset: Any,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled per-frame features ``(N, T, F)`` and labels ``(N,)`` of every clip of a
    :class:`~vadx.data.VideoDataset`, as the model computes them in eval mode."""
    from vadx.data.dataset import make_loader

    device = next(model.parameters()).device
    rows, labels, done = [], [], 0
    with eval_mode(model), torch.no_grad():
        for batch in make_loader(dataset, batch_size=batch_size):
            rows.append(model.frame_features(batch["clip"].to(device)).cpu().numpy())
            labels.append(np.asarray(batch["label"]))
            done += len(labels[-1])
            if progress is not None:
                progress(done, len(dataset))
    return np.concatenate(rows), np.concatenate(labels)


def check_clip(model: Any, clip: torch.Tensor) -> dict[str, Any]:
    """The domain check of one clip ``(1, T, 3, H, W)``: its domain score (> 1: outside the
    model's training domain), or why it was not checked. Costs one CNN forward of the clip."""
    stats: DomainStats | None = model.domain
    if stats is None:
        return {"checked": False, "verdict": "unchecked", "note": missing_note(model)}
    with eval_mode(model), torch.no_grad():
        features = model.frame_features(clip)[0].cpu()
    score = float(stats.scores(stats.frame_distances(features).mean()))
    return {"checked": True, "verdict": "outside" if score > 1 else "inside", "score": score,
            "threshold": stats.threshold}  # fmt: skip


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
    from vadx.detect import DetectConfig, frame_features, window_spacing
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
                    windows = [sample.start + w.indices for w in sliding_windows(
                        stop - sample.start, length, stride, step)]  # fmt: skip
                needed = np.unique(np.concatenate(windows))
                features = frame_features(model, video, needed, batch_size * length)
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
    tensors = {"means": torch.from_numpy(stats.means.copy()),
               "whitening": torch.from_numpy(stats.whitening.copy())}  # fmt: skip
    target = write_safetensors(info.path / DOMAIN_FILE, tensors,
                               {"weights_sha256": info.weights_sha256})  # fmt: skip
    document = json.loads((info.path / CONFIG_FILE).read_text(encoding="utf-8"))
    document["domain"] = {**stats.describe(), "file": DOMAIN_FILE, "sha256": file_sha256(target),
                          "weights_sha256": info.weights_sha256}  # fmt: skip
    write_json(info.path / CONFIG_FILE, document, indent=2)
    return target


