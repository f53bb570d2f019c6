"""A model's domain statistics, part of its checkpoint (``domain.safetensors``): what they
are (:class:`DomainStats`), how they are read, and what they say about footage — the verdicts
detection, the reports and the servers give. Fitting and calibrating them is
:mod:`vadx.detect.domain`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import torch

from vadx.errors import CheckpointError, InputError

DOMAIN_FILE = "domain.safetensors"
#: percentile of the validation windows' distances taken as the threshold
PERCENTILE = 99.5


@dataclass(frozen=True, slots=True)
class DomainDescription:
    """:class:`DomainStats` described (``dataclasses.asdict`` is the checkpoint's
    ``config.json`` ``domain`` section, beside the file's name and checksums)."""

    method: str
    classes: int
    feature_size: int
    threshold: float
    percentile: float
    frames: int
    windows: int
    calibration: dict[str, float]


@dataclass(frozen=True)
class DomainStats:
    """A class-conditional Gaussian of the training frames' features and its threshold.

    Attributes:
        means: ``(K, F)`` class means (one row when fitted without classes).
        whitening: ``(F, F)`` ``W`` with ``‖W (x − μ)‖`` the Mahalanobis distance.
        threshold: window distance above which footage is outside the domain.
        percentile: percentile of the calibration windows' distances the threshold is.
        frames: training frames fitted; windows: calibration windows.
        calibration: quantiles of the calibration windows' distances (for the record).
    """

    means: np.ndarray
    whitening: np.ndarray
    threshold: float
    percentile: float = PERCENTILE
    frames: int = 0
    windows: int = 0
    calibration: dict[str, float] = field(default_factory=dict)

    @property
    def feature_size(self) -> int:
        return self.whitening.shape[0]

    def frame_distances(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Mahalanobis distance of each frame ``(..., F)`` to the nearest class mean."""
        x = torch.as_tensor(np.asarray(features, np.float32))
        if x.shape[-1] != self.feature_size:
            raise InputError(
                f"features have {x.shape[-1]} values per frame; the domain statistics were "
                f"fitted on {self.feature_size}: they belong to another model"
            )
        w = torch.from_numpy(self.whitening)
        projected = x.reshape(-1, x.shape[-1]) @ w.T  # (N, F)
        centres = torch.from_numpy(self.means) @ w.T  # (K, F)
        distances = torch.cdist(projected[None], centres[None])[0].amin(-1)
        return distances.reshape(x.shape[:-1]).numpy().astype(np.float64)

    def scores(self, window_distances: np.ndarray) -> np.ndarray:
        """Domain scores: window distances over the threshold (> 1: outside the domain)."""
        return np.asarray(window_distances, np.float64) / self.threshold

    def describe(self) -> DomainDescription:
        """What the statistics are (the checkpoint's ``config.json`` ``domain`` section)."""
        return DomainDescription(
            method="class-conditional Gaussian, tied Ledoit-Wolf covariance, Mahalanobis",
            classes=len(self.means),
            feature_size=self.feature_size,
            threshold=self.threshold,
            percentile=self.percentile,
            frames=self.frames,
            windows=self.windows,
            calibration=dict(self.calibration),
        )


# ----------------------------------------------------------------------------- checkpoint
def load_domain(directory: Path, section: dict[str, Any] | None, weights_sha256: str):
    """The checkpoint's :class:`DomainStats`, or None when it has none; checked against the
    sha256 recorded for the file and for the weights it was computed with."""
    from safetensors.torch import load_file

    from vadx.models.weights import file_sha256

    if not section:
        return None
    path = directory / DOMAIN_FILE
    try:
        if section.get("weights_sha256") != weights_sha256:
            raise CheckpointError(
                f"the domain statistics of {directory} were computed for other weights; "
                f"recompute them: vadx calibrate {directory} DATA"
            )
        if not path.is_file() or file_sha256(path) != section["sha256"]:
            raise CheckpointError(
                f"{path} is missing or was changed; recompute it: vadx calibrate {directory} DATA"
            )
        tensors = load_file(str(path))
        return DomainStats(
            means=tensors["means"].numpy(),
            whitening=tensors["whitening"].numpy(),
            threshold=float(section["threshold"]),
            percentile=float(section["percentile"]),
            frames=int(section["frames"]),
            windows=int(section["windows"]),
            calibration=dict(section.get("calibration") or {}),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"invalid domain statistics in {directory}: {err}") from err


def missing_note(model: Any, show_path: bool = True) -> str:
    """What to tell a user whose model has no domain statistics (``show_path=False``: without
    the checkpoint's path, for clients of a server)."""
    where = (getattr(model.checkpoint, "path", None) if show_path else None) or "MODEL"
    return (
        f"the model has no domain statistics, so nothing tells whether this footage is like its "
        f"training data; add them with: vadx calibrate {where} DATA"
    )


# ----------------------------------------------------------------------------- windows
class UncheckedWindows(TypedDict):
    """The domain check of footage that was not checked (the model has no statistics, or the
    check is off)."""

    checked: Literal[False]
    verdict: Literal["unchecked"]


class WindowsDomain(TypedDict):
    """The domain check of a set of windows: the threshold, how many windows lie outside and
    their share, the median and largest domain score (None without windows) and a verdict
    (``inside``, ``partly outside`` or ``outside``)."""

    checked: Literal[True]
    verdict: str
    threshold: float
    windows: int
    windows_outside: int
    share_outside: float
    median_score: float | None
    max_score: float | None


#: :func:`domain_summary`'s verdict, as ``events.json`` and the API hold it (TypedDicts, not
#: dataclasses: detection's files, reports and servers read it as that JSON)
DomainSummary = UncheckedWindows | WindowsDomain


def domain_summary(scores: np.ndarray | None, threshold: float | None) -> DomainSummary:
    """What the domain check says about a set of windows (``scores``: domain scores, None when
    unchecked): how many lie outside, and a plain verdict."""
    if scores is None or threshold is None:
        return {"checked": False, "verdict": "unchecked"}
    scores = np.asarray(scores, np.float64)
    outside = int((scores > 1).sum())
    share = outside / len(scores) if len(scores) else 0.0
    verdict = "outside" if share > 0.5 else "partly outside" if outside else "inside"
    return {
        "checked": True,
        "verdict": verdict,
        "threshold": float(threshold),
        "windows": len(scores),
        "windows_outside": outside,
        "share_outside": share,
        "median_score": float(np.median(scores)) if len(scores) else None,
        "max_score": float(scores.max()) if len(scores) else None,
    }


def verdict_line(summary: DomainSummary) -> str | None:
    """One sentence for an operator, or None when the footage is inside the domain."""
    if not summary.get("checked") or summary["verdict"] == "inside":
        return None
    return (
        f"{summary['share_outside']:.0%} of the windows ({summary['windows_outside']} of "
        f"{summary['windows']}) are outside the model's training domain (median domain score "
        f"{summary['median_score']:.2f}, 1 = threshold): its detections there are not reliable"
    )
