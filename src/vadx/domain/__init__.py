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

from typing import Any

from vadx.domain.stats import (
    DOMAIN_FILE,
    DOMAIN_MODES,
    PERCENTILE,
    DomainMode,
    DomainStats,
    domain_summary,
    fit_domain,
    load_domain,
    missing_note,
    verdict_line,
)

#: what runs a model (and so imports detection and the data pipeline): loaded on first use,
#: so that the checkpoint loader and detection can import the statistics above
_CALIBRATION = ("calibrate", "check_clip", "clip_features", "save_domain", "window_features")


def __getattr__(name: str) -> Any:
    if name in _CALIBRATION:
        from vadx.domain import calibration

        return getattr(calibration, name)
    raise AttributeError(f"module 'vadx.domain' has no attribute {name!r}")


__all__ = [
    "DOMAIN_FILE",
    "DOMAIN_MODES",
    "PERCENTILE",
    "DomainMode",
    "DomainStats",
    "domain_summary",
    "fit_domain",
    "load_domain",
    "missing_note",
    "verdict_line",
    *_CALIBRATION,
]
