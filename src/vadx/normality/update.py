"""Keep learning: a camera's normal learnt again with footage an operator judged normal
(``vadx update-normal``), the update recorded in the model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from vadx.errors import InputError
from vadx.normality.calibrate import calibrated_config
from vadx.normality.learn import (
    FITTING_FRAMES,
    MEMORY_SIZE,
    NEIGHBOURHOOD,
    SHRINKAGE,
    SPREAD_FLOOR,
    learn_normal,
)
from vadx.normality.model import NormalityModel
from vadx.progress import ProgressFn
from vadx.video.decode import video_sha256

#: why footage was added, unless told
REASON = "judged normal by an operator"


def update_normal(
    model: NormalityModel,
    footage: Sequence[str | os.PathLike[str]],
    *,
    reason: str = REASON,
    progress: ProgressFn | None = None,
) -> NormalityModel:
    """``model``'s scene learnt again from the footage it learnt from and ``footage``, judged
    normal by an operator (an alarm that was not one, a stretch of an ordinary day).

    Everything else is the model's own: its CNN and layer, its projection, the fitting
    settings, the share held back, the false-alarm rate and the detection settings its
    threshold was calibrated with. The result is the model :func:`learn_normal` gives on all
    that footage (the statistics are fitted again, not nudged), with ``updates`` recording this
    update after the model's earlier ones: when, the footage added (path and sha256), why, the
    model it replaces and the threshold before and after.

    The footage the model learnt from must still be where it was, unchanged (its sha256 is
    checked before any work); footage it already learnt from is refused."""
    if not footage:
        raise InputError("give the footage to add: videos judged normal for this camera")
    if not model.footage:
        raise InputError(
            "the model records no footage it learnt from, so it cannot learn again: learn "
            "anew with vadx learn-normal"
        )
    learnt = []
    for entry in model.footage:
        path = Path(entry["path"])
        if not path.exists():
            raise InputError(
                f"{path}, which the model learnt from, is gone: keep the footage a model "
                "learnt from to update it, or learn anew with vadx learn-normal"
            )
        if video_sha256(path) != entry["sha256"]:
            raise InputError(
                f"{path} changed since the model learnt from it (its sha256 differs): "
                "put the original back, or learn anew with vadx learn-normal"
            )
        learnt.append(path)
    known = {entry["sha256"]: entry["path"] for entry in model.footage}
    added = []
    for source in footage:
        path = Path(source)
        if not path.exists():
            raise InputError(f"no footage at {path}")
        sha = video_sha256(path)
        if sha in known:
            raise InputError(f"{path} is already learnt from (as {known[sha]})")
        known[sha] = str(path.absolute())
        added.append({"path": str(path.absolute()), "sha256": sha})
    fitting = model.fitting
    updated = learn_normal(
        model.backbone,
        [*learnt, *(Path(a["path"]) for a in added)],
        model.config,
        holdout=float(model.footage[0]["holdout"]),
        alarms_per_hour=float(model.calibration["alarms_per_hour"]),
        fitting_frames=int(fitting.get("fitting_frames", FITTING_FRAMES)),
        spread_floor=float(fitting.get("spread_floor", SPREAD_FLOOR)),
        neighbourhood=int(fitting.get("neighbourhood", NEIGHBOURHOOD)),
        shrinkage=float(fitting.get("shrinkage", SHRINKAGE)),
        memory_size=int(fitting.get("memory_size", MEMORY_SIZE)),
        memory_lists=int(fitting.get("memory_lists", 0)),  # a memory saved before lists: none
        detection=calibrated_config(model),
        progress=progress,
    )
    updated.updates = [
        *model.updates,
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "reason": reason,
            "added": added,
            "replaces": model.model_id,
            "threshold_before": model.threshold,
            "threshold_after": updated.threshold,
        },
    ]
    return updated
