"""How good a model is on labelled clips: ``vadx evaluate MODEL DATA --out DIR``.

Metrics come from scikit-learn: accuracy; precision, recall and F1 per class; macro and
weighted F1; ROC-AUC one-vs-rest per class (and their macro mean when every class is present)
and anomaly-vs-normal (score ``1 − p(normal)``); the confusion matrix. Written to
``metrics.json``, ``predictions.csv`` and ``confusion.png`` (:func:`evaluate_clips`). Over
annotated long videos (``--annotations``): the frame-level ROC-AUC of the anomaly score,
written to ``frame_metrics.json`` (:func:`evaluate_frames`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from vadx import distributed
from vadx.borrowed import eval_mode
from vadx.data.dataset import VideoDataset, make_loader
from vadx.errors import InputError
from vadx.files import footprint, staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.render.plots import png_bytes


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """One class's scores: precision, recall, F1, its clips (``support``) and its one-vs-rest
    ROC-AUC (None when only one kind of clip is present)."""

    precision: float
    recall: float
    f1: float
    support: int
    roc_auc: float | None


@dataclass(frozen=True, slots=True)
class ClipMetrics:
    """Every metric of the module docstring over labelled clips (``metrics.json``).

    ``anomaly_vs_normal_roc_auc`` is ``absent`` when the model has no normal class (the file
    then has no such key), None when the clips hold one kind only."""

    clips: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    roc_auc_ovr_macro: float | None
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    has_normal_class: bool = False
    anomaly_vs_normal_roc_auc: float | None = None

    def to_json(self) -> dict[str, Any]:
        """``metrics.json``'s document."""
        document = asdict(self)
        del document["has_normal_class"]
        if not self.has_normal_class:
            del document["anomaly_vs_normal_roc_auc"]
        return document


@dataclass(frozen=True, slots=True)
class FrameMetrics:
    """The frame-level ROC-AUC of the anomaly score over annotated long videos
    (``frame_metrics.json``, its fields in order): over all frames, and per video (None where
    a video holds one kind of frame only)."""

    frame_roc_auc: float | None
    frames: int
    anomalous_frames: int
    per_video: dict[str, float | None]


def evaluate_clips(
    model: CRNN,
    data: str | Path,
    out: str | Path,
    split: str | None = None,
    *,
    batch_size: int = 8,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ClipMetrics:
    """The metrics of ``model`` on the labelled clips of ``data`` — a list file, or a folder's
    ``split`` (by default its test split where it has one, else all of it) — written to
    ``out`` (:func:`write_evaluation`).

    Under torchrun each rank predicts its share of the clips and returns the metrics of all;
    rank 0 writes them.
    """
    from vadx.data.splits import load_samples, split_names

    data = Path(data)
    if split is None and data.is_dir():
        split = split_names(data).get("test")
    samples, classes = load_samples(data, model.class_names, split)
    dataset = VideoDataset.for_model(model.config, samples, classes)
    probabilities, labels = predict(model, dataset, batch_size, workers, progress)
    metrics = classification_metrics(probabilities, labels, classes, model.config.normal_class)
    if distributed.rank() == 0:
        sources = [str(sample.source) for sample in dataset.samples]
        write_evaluation(out, metrics, probabilities, labels, sources)
    return metrics


def evaluate_frames(
    model: CRNN,
    annotations: str | Path,
    videos_root: str | Path,
    out: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> FrameMetrics:
    """:func:`frame_level_auc` of ``model`` over the annotated long videos, written to
    ``out/frame_metrics.json`` (under torchrun: by rank 0)."""
    result = frame_level_auc(model, annotations, videos_root, progress=progress)
    if distributed.rank() == 0:
        write_json(Path(out) / "frame_metrics.json", asdict(result))
    return result


def predict(
    model: CRNN,
    dataset: VideoDataset,
    batch_size: int = 8,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``(N, K)`` and labels ``(N,)`` of every clip of ``dataset``.

    Under torchrun each rank predicts its share of the clips and every rank gets them all,
    in dataset order.
    """
    device = model.device
    mine = distributed.share([1.0] * len(dataset))
    part = dataset if len(mine) == len(dataset) else Subset(dataset, mine)
    probabilities, labels, done = [], [], 0
    with eval_mode(model), torch.no_grad():
        for batch in make_loader(part, batch_size=batch_size, workers=workers):
            probabilities += list(model(batch.clip.to(device)).softmax(-1).cpu().numpy())
            labels += list(batch.label.numpy())
            done += len(batch.label)
            if progress is not None:
                progress(done, len(part))
    probabilities = distributed.in_order(mine, probabilities)
    labels = distributed.in_order(mine, labels)
    classes = len(model.class_names)
    return np.array(probabilities).reshape(-1, classes), np.array(labels, dtype=np.int64)


def classification_metrics(
    probabilities: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    normal_class: str | None,
) -> ClipMetrics:
    """Every metric of the module docstring."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    if len(labels) == 0:
        raise InputError("no clips to evaluate")
    classes = list(range(len(class_names)))
    predictions = probabilities.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    per_class = {
        name: ClassMetrics(
            precision=float(precision[k]),
            recall=float(recall[k]),
            f1=float(f1[k]),
            support=int(support[k]),
            roc_auc=_auc(labels == k, probabilities[:, k]),
        )
        for k, name in enumerate(class_names)
    }
    aucs = [v.roc_auc for v in per_class.values()]
    anomaly_auc = None
    if normal_class in class_names:
        normal = class_names.index(normal_class)
        anomaly_auc = _auc(labels != normal, 1 - probabilities[:, normal])
    return ClipMetrics(
        clips=len(labels),
        accuracy=float(accuracy_score(labels, predictions)),
        macro_f1=_f1(labels, predictions, classes, "macro"),
        weighted_f1=_f1(labels, predictions, classes, "weighted"),
        roc_auc_ovr_macro=None if None in aucs else float(np.mean(aucs)),
        per_class=per_class,
        confusion_matrix=confusion_matrix(labels, predictions, labels=classes).tolist(),
        class_names=list(class_names),
        has_normal_class=normal_class in class_names,
        anomaly_vs_normal_roc_auc=anomaly_auc,
    )


def _f1(labels: np.ndarray, predictions: np.ndarray, classes: list[int], average: str) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, labels=classes, average=average, zero_division=0))


def _auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    """ROC-AUC, or None when only one kind of example is present."""
    from sklearn.metrics import roc_auc_score

    if truth.all() or not truth.any():
        return None
    return float(roc_auc_score(truth, score))


def confusion_png(matrix: np.ndarray, class_names: list[str]) -> bytes:
    """The confusion matrix as a PNG (counts, rows = true class)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.2 * len(class_names) + 2, 1.1 * len(class_names) + 1.5))
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    peak = matrix.max() if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > peak / 2 else "black"
        axes.text(j, i, str(value), ha="center", va="center", color=colour)
    figure.tight_layout()
    return png_bytes(figure, dpi=110)


def write_evaluation(
    out: str | Path,
    metrics: ClipMetrics,
    probabilities: np.ndarray,
    labels: np.ndarray,
    sources: list[str],
) -> Path:
    """Write ``metrics.json``, ``predictions.csv`` and ``confusion.png`` into ``out``: all
    of them or none (``metrics.json`` last)."""
    names = metrics.class_names
    with staged_folder(out, last="metrics.json") as staging:
        with open(staging / "predictions.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["video", "label", "predicted", *[f"p_{n}" for n in names]])
            for source, label, row in zip(sources, labels, probabilities, strict=True):
                writer.writerow(
                    [source, names[label], names[int(row.argmax())], *[f"{p:.6f}" for p in row]]
                )
        (staging / "confusion.png").write_bytes(
            confusion_png(np.array(metrics.confusion_matrix), names)
        )
        write_json(staging / "metrics.json", metrics.to_json())
    return Path(out) / "metrics.json"


def _size(path: str | Path) -> float:
    """What sharding balances for a video: its file's size (a frame folder's, its files')."""
    return float(footprint(path)[0]) or 1.0


def frame_level_auc(
    model: CRNN,
    annotations: str | Path,
    videos_root: str | Path,
    class_map: dict[str, str] | None = None,
    config: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> FrameMetrics:
    """ROC-AUC of the per-frame anomaly score (``vadx detect``'s) against annotated frames.

    Over all frames of all annotated long videos, and per video where both kinds of frame
    occur. Under torchrun each rank detects its share of the videos.
    """
    from vadx.data.layouts import read_temporal_annotations
    from vadx.detect import detect

    normal = model.config.normal_class
    if normal is None:
        raise InputError("frame-level AUC needs a model with a normal class")
    videos = read_temporal_annotations(
        annotations, videos_root, model.class_names, normal, class_map
    )
    mine = distributed.share([_size(video.source) for video in videos])
    smoothed = []
    for done, index in enumerate(mine, 1):
        smoothed.append(detect(model, videos[index].source, config).smoothed_score)
        if progress is not None:
            progress(done, len(mine))
    scores = distributed.in_order(mine, smoothed)
    truths = [video.anomalous for video in videos]
    per_video = {str(v.source): _auc(v.anomalous, s) for v, s in zip(videos, scores, strict=True)}
    return FrameMetrics(
        frame_roc_auc=_auc(np.concatenate(truths), np.concatenate(scores)),
        frames=int(sum(len(t) for t in truths)),
        anomalous_frames=int(sum(t.sum() for t in truths)),
        per_video=per_video,
    )
