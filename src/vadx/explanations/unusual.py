"""The report of what a camera's normal (``vadx learn-normal``) finds unusual:
:func:`explain_unusual`, what ``vadx explain CAMERA_MODEL VIDEO`` runs.

A normality model explains itself: its anomaly map *is* where the frame departs from the
camera's normal, and the frame's score is the map's largest cell. So nothing is estimated
after the fact; the report shows the model's own maps in the same ``report.html`` as a
classifier's (the same player, views, opacity and frame scrubber, drawn by the same viewer),
with the frames' scores as the temporal curve — which frames made the score — and the score
over the whole video as the timeline. A cell is at full strength where it alone reaches the
threshold (1 = the threshold), as in ``unusual.mp4``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vadx._version import __version__
from vadx.detect import DetectConfig, Detection
from vadx.errors import InputError
from vadx.explanations.clip import ExplainSettings
from vadx.explanations.report.page import (
    curves_svg,
    player_payload,
    render_report,
    timeline_svg,
)
from vadx.files import atomic_path, write_json
from vadx.normality import NormalityModel, detection_of
from vadx.progress import ProgressFn
from vadx.video.decode import VideoReader, video_sha256
from vadx.video.preprocess import fit_frames

#: frames a report shows at most, centred on the most unusual frame (the span an operator
#: scrubs through; the timeline shows the whole video)
MOST_FRAMES = 64
METHOD = "unusual"
LABEL = "Anomaly map (the camera's normal)"
DESCRIPTION = (
    "Where the frame departs from what this camera usually shows, per cell of the feature "
    "map, in units of the threshold: the model's own map, not an estimate."
)


@dataclass(frozen=True)
class UnusualExplanation:
    """What :func:`explain_unusual` wrote: the frames shown, the most unusual one and its
    score (÷ the threshold: ≥ 1 raises an alarm), the video's events, and the report."""

    frames: tuple[int, int]
    peak_frame: int
    peak_score: float
    events: int
    report: str


def explain_unusual(
    model: NormalityModel,
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    start: int | None = None,
    end: int | None = None,
    config: DetectConfig | None = None,
    settings: ExplainSettings | None = None,
    progress: ProgressFn | None = None,
) -> UnusualExplanation:
    """Write ``report.html``, ``maps.npz`` (the frames' maps in threshold units, their
    numbers and scores) and ``manifest.json`` of ``video`` under ``out``: frames ``start`` …
    ``end``, by default the first event's (at most :data:`MOST_FRAMES` around its most unusual
    frame), else the most unusual frame's neighbourhood. ``settings`` gives the view, opacity
    and colours (its methods are not read: the map is the model's own)."""
    settings = settings or ExplainSettings()
    scores, maps = model.scores(video, progress)
    detection = detection_of(scores, model, video, config or DetectConfig())
    first, last = _span(detection, scores, start, end)
    numbers = np.arange(first, last + 1)
    with VideoReader(video) as reader:
        frames = reader.read_range(first, last + 1).data
        fps = reader.info.fps
    height, width = model.config.frame_size
    _, geometry, _ = fit_frames(frames[:1], (height, width), model.config.fit)  # type: ignore[arg-type]
    units = maps[first : last + 1] / model.cell_unit()
    display = np.stack([cv2.resize(m, (width, height)) for m in units]).clip(0, 1)
    clip_scores = scores[first : last + 1] / model.threshold
    peak = int(first + np.argmax(clip_scores))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "maps.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, maps=units.astype(np.float32), frames=numbers, scores=clip_scores)
    manifest = {
        "kind": "normality",
        "model_id": model.model_id,
        "threshold": model.threshold,
        "source": {"path": str(video), "sha256": video_sha256(video), "fps": fps},
        "frames": [first, last],
        "peak": {"frame": peak, "score": float(clip_scores.max())},
        "detection": detection.settings.to_json(),
        "events": [asdict(e) for e in detection.events],
        "view": {"view": settings.view, "opacity": settings.opacity},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"vadx": __version__},
    }
    write_json(folder / "manifest.json", manifest)
    report = _write_report(
        folder / "report.html", model, frames, numbers, fps, geometry, display, clip_scores,
        detection, settings, manifest,
    )  # fmt: skip
    return UnusualExplanation(
        (first, last), peak, float(clip_scores.max()), len(detection.events), report.name
    )


def _span(
    detection: Detection, scores: np.ndarray, start: int | None, end: int | None
) -> tuple[int, int]:
    count = len(scores)
    if start is not None or end is not None:
        first = 0 if start is None else start
        last = count - 1 if end is None else end
        if not 0 <= first <= last < count:
            raise InputError(
                f"frames {first}–{last} are not inside the video's {count} frames "
                f"(0–{count - 1}): give 0 ≤ {{start}} ≤ {{end}} ≤ {count - 1}",
                "start",
                "end",
            )
        return first, last
    if detection.events:
        event = detection.events[0]
        inside = scores[event.start_frame : event.end_frame + 1]
        centre = event.start_frame + int(np.argmax(inside))
        low, high = event.start_frame, event.end_frame
    else:
        centre, low, high = int(np.argmax(scores)), 0, count - 1
    first = min(max(centre - MOST_FRAMES // 2, low), max(low, high - MOST_FRAMES + 1))
    return first, min(high, first + MOST_FRAMES - 1)


def _write_report(
    path: Path,
    model: NormalityModel,
    frames: np.ndarray,
    numbers: np.ndarray,
    fps: float,
    geometry,
    display: np.ndarray,
    clip_scores: np.ndarray,
    detection: Detection,
    settings: ExplainSettings,
    manifest: dict,
) -> Path:
    peak = float(clip_scores.max())
    probability = float(model.probability(peak * model.threshold))  # as detection has it
    name = "unusual" if peak >= 1 else "normal"
    importance, legend = curves_svg(
        [("frame score ÷ threshold (÷ its largest here)", clip_scores / max(peak, 1e-9))],
        [int(n) for n in numbers],
        bottom=0.0,
        marks=(f"{peak:.2f}", "0"),
    )
    player = player_payload(frames, numbers, fps, geometry, {METHOD: (LABEL, display)}, settings)
    return render_report(
        path,
        title=f"{name.capitalize()} for this camera — {Path(manifest['source']['path']).name}",
        predicted=name,
        probability=probability if name == "unusual" else 1 - probability,
        probabilities=sorted(
            [("unusual", probability), ("normal", 1 - probability)], key=lambda p: -p[1]
        ),
        target="unusual (the camera's normal)",
        frames=(int(numbers[0]), int(numbers[-1])),
        fps=fps,
        timeline=timeline_svg(detection, (int(numbers[0]), int(numbers[-1]))),
        importance=importance,
        importance_note=(
            "Each frame's score reads its map at several scales (its most unusual cell, and "
            "its most unusual patches), in units of the threshold (at 1 a frame alone is "
            "unusual), divided here by the clip's largest. Nothing is estimated: these are "
            "the scores detection read."
        ),
        legend=legend,
        player=json.dumps(player),
        methods=[(METHOD, LABEL, DESCRIPTION)],
        view=settings.view,
        quality=None,
        trust=None,
        domain=None,
        manifest=json.dumps(manifest, indent=1),
        audit_rows=[
            ("Model", model.model_id or "not from a checkpoint"),
            ("Kind", "a camera's normal (vadx learn-normal): its maps are its decision"),
            ("Threshold", f"{model.threshold:.4f} (a frame's score; 1 on this page)"),
            ("Input video", manifest["source"]["path"]),
            ("Input sha256", manifest["source"]["sha256"]),
            ("Frames", f"{numbers[0]}–{numbers[-1]} (most unusual: {manifest['peak']['frame']})"),
            ("Explained", manifest["created"]),
            ("Versions", ", ".join(f"{k} {v}" for k, v in manifest["versions"].items())),
        ],
    )
