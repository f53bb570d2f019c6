"""``vadx calibrate-trust``: a model's maps scored against the ground truth on its own
validation scenes, and the trust calibration fitted on them (:mod:`vadx.quality.trust_prior`
says what it holds and how the verdict reads it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.catalogue import DEFAULT_METHODS
from vadx.data.synth import SceneSpec, scene_specs
from vadx.errors import InputError
from vadx.explain.engine import explain
from vadx.models.crnn import CRNN
from vadx.progress import ProgressFn
from vadx.quality.interventions import actor_scores, intervention_truth
from vadx.quality.trust import TrustSettings, trust_check
from vadx.quality.trust_prior import RANK, MapOutcome, TrustCalibration, fit_calibration


def map_outcomes(
    model: CRNN,
    specs: Iterable[SceneSpec],
    methods: Sequence[str] = DEFAULT_METHODS,
    thresholds: TrustSettings | None = None,
    rank: float = RANK,
    progress: ProgressFn | None = None,
) -> list[MapOutcome]:
    """Every map of every anomalous clip of ``specs``, checked (uncalibrated) and scored
    against its ground truth by intervention. Maps the truth cannot score (fewer than three
    actors visible, no evidence) are left out."""
    clips = [s for s in specs if s.kind != model.config.normal_class]
    unknown = sorted({s.kind for s in clips} - set(model.class_names))
    if unknown:
        raise InputError(f"the scenes hold classes the model does not know: {', '.join(unknown)}")
    outcomes = []
    for n, spec in enumerate(clips):
        target = model.class_names.index(spec.kind)
        truth = intervention_truth(model, spec, target)
        picture = truth.clip.picture
        with torch.enable_grad():
            e = explain(
                model,
                truth.clip.clip[None],
                target,
                methods=list(methods),
                temporal=[],
                picture=torch.from_numpy(picture)[None],
            )
            verdicts = trust_check(
                model, e, picture=picture, thresholds=thresholds, calibrated=False
            )
        for method, a in e.maps.items():
            scores = actor_scores(a.display[0], truth)
            correlation, first = scores["actor_rank_correlation"], scores["decisive_actor_first"]
            if np.isnan(correlation) or np.isnan(first):
                continue
            values = {c.name: c.value for c in verdicts[method].checks}
            matches = bool(first == 1 and correlation >= rank)
            outcomes.append(MapOutcome(n, spec.kind, method, matches, values))
        if progress is not None:
            progress("scenes", n + 1, len(clips))
    return outcomes


def calibrate_trust(
    model: CRNN,
    specs: Iterable[SceneSpec],
    methods: Sequence[str] = DEFAULT_METHODS,
    thresholds: TrustSettings | None = None,
    rank: float = RANK,
    progress: ProgressFn | None = None,
) -> TrustCalibration:
    """The trust calibration of ``model`` on validation ``specs``
    (:mod:`vadx.quality.trust_prior`)."""
    return fit_calibration(map_outcomes(model, specs, methods, thresholds, rank, progress), rank)


def validation_scenes(
    model: CRNN, samples: Iterable[Any], data: str | Path, limit: int | None = None
) -> list[SceneSpec]:
    """The scenes of the anomalous clips among ``samples`` (held-out
    :class:`~vadx.data.dataset.VideoSample` of the ``vadx synth`` dataset ``data``), up to
    ``limit`` spread evenly over them."""
    specs = scene_specs(data)
    found = [specs.get(Path(sample.source).resolve()) for sample in samples]
    found = [s for s in found if s is not None and s.kind != model.config.normal_class]
    if not found:
        raise InputError(
            f"{data}: no anomalous held-out clip of a vadx synth scene; the calibration needs "
            "scenes whose truth interventions can measure"
        )
    if limit is not None and limit < len(found):
        picked = sorted({round(k * (len(found) - 1) / max(1, limit - 1)) for k in range(limit)})
        found = [found[i] for i in picked]
    return found
