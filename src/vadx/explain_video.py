"""Explanations of video clips as files: ``vadx explain MODEL VIDEO --out DIR``.

A clip is sampled from the video like a training clip (``T`` frames spread evenly over a
span), explained by :func:`vadx.explain.explain`, and its maps are brought back onto the
source frames. For each clip a folder holds:

* ``report.html`` — one self-contained page that carries each frame once and each method's
  raw maps (8-bit), and draws every view in the browser (see :mod:`vadx.report`);
* ``explanation.npz`` and ``manifest.json`` — every array, every setting, the model's and the
  input's sha256, versions: the audit record;

and, only when asked (``exports``), pictures rendered here with "Class: NN%" under each frame:

* ``frames`` — ``frames/<method>/NNNNNN.png``, every frame with the method's view;
* ``mp4``, ``gif`` — ``<method>.mp4`` (H.264) and ``<method>.gif``, the same frames playing
  in real time (the source's frame rate divided by the sampled frames' spacing);
* ``sheets`` — ``<method>-sheet.png`` contact sheets, ``methods.png`` (methods × frames),
  ``views.png`` (the three views of the first method) and ``strip.png`` (the frames above
  the temporal-importance curves).

Clips: one span (``start``/``end``, default the whole video), every sliding window of
``vadx detect`` (``windows="all"``), or the windows ``vadx detect`` flagged (``"flagged"``:
for each event, its most anomalous window, explaining the event's class).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.clip import (
    EXPORTS,
    WINDOWS,
    ClipExplanation,
    ExplainSettings,
    ProgressFn,
    WindowChoice,
    clip_indices,
    explain_clip,
    explain_frames,
)
from vadx.detect import DetectConfig, Detection, Event, detect, event_window
from vadx.errors import InputError
from vadx.files import staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.render.figures import contact_sheet, frame_strip, grid
from vadx.render.overlay import VIEWS, class_label, label_frame, render
from vadx.report import write_report
from vadx.video.decode import VideoInfo, VideoReader, probe, video_sha256
from vadx.video.encode import write_gif, write_mp4, write_png


@dataclass(frozen=True)
class ClipSummary:
    """One explained clip, as ``summary.json`` lists it: its folder and report, its frames,
    the prediction and target, the domain check and (with ``trust``) each map's verdict."""

    folder: str
    frames: list[int]
    predicted: str
    probability: float
    target: str
    report: str
    domain: dict[str, Any]
    trust: dict[str, str] | None = None

    @property
    def verdict(self) -> str | None:
        """The clip's overall trust verdict: the worst of its maps' (None: not checked)."""
        if not self.trust:
            return None
        order = ("contradictory", "weak", "trustworthy")
        return min(self.trust.values(), key=order.index)

    def moved(self, folder: Path) -> ClipSummary:
        """The same clip once its folder is ``folder`` (staged folders move into place)."""
        return replace(self, folder=str(folder), report=str(folder / "report.html"))


@dataclass(frozen=True)
class VideoSummary:
    """What :func:`explain_video` explained in one video (its ``summary.json``): the clips,
    the window mode and the settings — or, when nothing was to be explained, why (``note``)."""

    source: str
    clips: list[ClipSummary] = field(default_factory=list)
    windows: str | int | None = None
    settings: dict[str, Any] | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The document ``summary.json`` holds (unchanged since before this type)."""
        document: dict[str, Any] = {"source": self.source}
        if self.note is not None:
            return {**document, "clips": [], "note": self.note}
        clips = [asdict(clip) for clip in self.clips]
        return {**document, "windows": self.windows, "settings": self.settings, "clips": clips}


def rendered(clip: ClipExplanation, method: str, view: str, settings: ExplainSettings):
    """The clip's frames with ``method``'s map in ``view`` and the "Class: NN%" label."""
    name, probability = clip.predicted
    text = class_label(name, probability)
    return np.stack(
        [
            label_frame(render(frame, value, view, settings.colormap, settings.opacity), text)
            for frame, value in zip(clip.frames, clip.maps[method], strict=True)
        ]
    )


def write_clip(
    out: Path,
    clip: ClipExplanation,
    settings: ExplainSettings,
    model: CRNN,
    source: VideoInfo,
    source_sha256: str,
    timeline: Detection | None = None,
) -> ClipSummary:
    """Write the files of one explained clip into ``out`` (module doc); returns its summary."""
    e = clip.explanation
    write_exports(out, clip, settings)
    extra = audit(clip, settings, model, source, source_sha256)
    if settings.quality:
        extra["quality"] = clip_quality(model, clip)
    if settings.trust:
        extra["trust"] = clip_trust(model, clip)
    e.save(out, extra)
    write_report(out / "report.html", clip, settings, extra, timeline, extra.get("quality"))
    name, probability = clip.predicted
    trust = {m: v["verdict"] for m, v in extra["trust"].items()} if settings.trust else None
    return ClipSummary(
        folder=str(out),
        frames=[int(i) for i in clip.indices],
        predicted=name,
        probability=round(probability, 4),
        target=e.target_names[0],
        report=str(out / "report.html"),
        domain=dict(clip.domain),
        trust=trust,
    )


def write_exports(out: Path, clip: ClipExplanation, settings: ExplainSettings) -> None:
    """The pictures of ``settings.exports`` (module doc), rendered here."""
    exports = set(settings.exports)
    if not exports:
        return
    e = clip.explanation
    numbers = [f"frame {i}" for i in clip.indices]
    views = {m: rendered(clip, m, settings.view, settings) for m in e.maps}
    for method, frames in views.items():
        if "frames" in exports:
            for index, frame in zip(clip.indices, frames, strict=True):
                write_png(out / "frames" / method / f"{index:06d}.png", frame)
        if "mp4" in exports:
            write_mp4(out / f"{method}.mp4", frames, fps=clip.fps)
        if "gif" in exports:
            write_gif(out / f"{method}.gif", frames, fps=clip.fps)
        if "sheets" in exports:
            write_png(out / f"{method}-sheet.png", contact_sheet(frames, numbers))
    if "sheets" in exports:
        first = next(iter(e.maps))
        columns = [str(i) for i in clip.indices]
        rows = [("frame", clip.frames)] + [(e.maps[m].display_name, views[m]) for m in e.maps]
        view_rows = [
            (view, views[first] if view == settings.view else rendered(clip, first, view, settings))
            for view in VIEWS
        ]
        write_png(out / "methods.png", grid(rows, columns))
        write_png(out / "views.png", grid(view_rows, columns))
        curves = {f.display_name: f.scores[0] for f in e.temporal.values()}
        if curves:
            title = f"{e.maps[first].display_name} · target {e.target_names[0]}"
            write_png(out / "strip.png", frame_strip(views[first], curves, clip.indices, title))


def clip_quality(model: CRNN, clip: ClipExplanation) -> dict[str, dict[str, float]]:
    """Deletion/insertion AUCs of each map and frame-importance curve of ``clip``, each with
    its random-order baseline (lower deletion and higher insertion than random = faithful)."""
    from vadx.quality.evaluate import curve_scores
    from vadx.quality.faithfulness import spatial_curves, temporal_curves

    e = clip.explanation
    tensor = torch.from_numpy(np.array(e.clip)).to(model.device)
    target = int(e.targets[0]) if e.targets[0] >= 0 else int(e.probabilities[0].argmax())
    picture = clip.geometry.picture()
    scores = {
        name: curve_scores(spatial_curves(model, tensor, a.display[0], target, picture=picture))
        for name, a in e.maps.items()
    }
    scores.update(
        {
            name: curve_scores(temporal_curves(model, tensor, f.scores[0], target), "temporal_")
            for name, f in e.temporal.items()
        }
    )
    return scores


def clip_trust(model: CRNN, clip: ClipExplanation) -> dict[str, dict[str, Any]]:
    """The trust verdict of each map and frame curve of ``clip`` (:mod:`vadx.quality.trust`)."""
    from vadx.quality.trust import trust_check

    verdicts = trust_check(
        model, clip.explanation, domain=clip.domain, picture=clip.geometry.picture()
    )
    return {name: asdict(verdict.record()) for name, verdict in verdicts.items()}


def audit(
    clip: ClipExplanation,
    settings: ExplainSettings,
    model: CRNN,
    source: VideoInfo,
    source_sha256: str,
) -> dict[str, Any]:
    """What the manifest adds to the explanation's own record: the source and the model."""
    info = model.checkpoint
    return {
        "source": {
            "path": source.path,
            "sha256": source_sha256,
            "frames": source.num_frames,
            "fps": source.fps,
            "size": [source.height, source.width],
            "announced_frames": source.announced_frames,
            "truncated": source.truncated,
        },
        "clip_frames": [int(i) for i in clip.indices],
        "clip_fps": clip.fps,
        "model_checkpoint": None
        if info is None
        else {
            "path": str(info.path),
            "id": info.model_id,
            "weights_sha256": info.weights_sha256,
            "created": info.created,
        },
        "render": {
            "view": settings.view,
            "colormap": settings.colormap,
            "opacity": settings.opacity,
        },
        "preprocessing": {
            "fit": model.config.fit,
            "picture_share": float(clip.geometry.picture().mean()),
        },
        "domain": dict(clip.domain),
    }


def explain_video(
    model: CRNN,
    source: str | Path,
    out: str | Path,
    settings: ExplainSettings | None = None,
    *,
    start: int | None = None,
    end: int | None = None,
    windows: WindowChoice = "one",
    detect_config: DetectConfig | None = None,
    progress: ProgressFn | None = None,
    detection: Detection | None = None,
) -> VideoSummary:
    """Explain one span, every window (``"all"``), the flagged windows or window number
    ``windows`` (an int) of ``source`` into ``out``. A ``detection`` of ``source`` already at
    hand is reused instead of detecting again.

    Returns (and writes as ``summary.json``) the list of explained clips.
    """
    settings = settings or ExplainSettings()
    if not isinstance(windows, int) and windows not in WINDOWS:
        raise InputError(
            f"windows must be one of {', '.join(WINDOWS)} or a window number; got {windows!r}"
        )
    if windows != "one" and (start is not None or end is not None):
        raise InputError(
            "{start}/{end} choose one clip; they cannot be combined with {windows}",
            "start",
            "end",
            "windows",
        )
    out = Path(out)
    if windows == "one":  # a span outside the video is refused before any work
        clip_indices(probe(source), model.config.num_frames, start, end)
    source_sha256 = video_sha256(source)
    if detection is None and (windows != "one" or settings.timeline):
        detection = detect(model, source, detect_config, progress)
    with staged_folder(out, last="summary.json") as staging:
        return explain_into(
            staging,
            out,
            model,
            source,
            settings,
            start,
            end,
            windows,
            detection,
            progress,
            source_sha256,
        )


def explain_into(
    folder: Path,
    named: Path,
    model: CRNN,
    source: str | Path,
    settings: ExplainSettings,
    start: int | None,
    end: int | None,
    windows: WindowChoice,
    detection: Detection | None,
    progress: ProgressFn | None = None,
    source_sha256: str | None = None,
) -> VideoSummary:
    """The files of :func:`explain_video`, written straight into ``folder`` (a staging folder
    of the caller's that will become ``named``, the path the summary gives), ``summary.json``
    last; ``detection`` is needed for any ``windows`` but ``"one"``. Returns the summary."""
    source_sha256 = source_sha256 or video_sha256(source)
    clips: list[ClipSummary] = []
    with VideoReader(source) as video:
        jobs = _jobs(model, video.info, windows, start, end, detection)
        if not jobs:
            say = "no window was flagged" if windows == "flagged" else "nothing to explain"
            summary = VideoSummary(str(source), note=say)
            write_json(folder / "summary.json", summary.to_json())
            return summary
        for number, (indices, target) in enumerate(jobs):
            name = (
                ""
                if len(jobs) == 1 and windows == "one"
                else (f"window-{number:04d}-f{indices[0]:06d}-f{indices[-1]:06d}")
            )
            clip = explain_frames(model, video, indices, settings, target)
            written = write_clip(
                folder / name, clip, settings, model, video.info, source_sha256, detection
            )
            clips.append(written.moved(named / name))
            if progress is not None:
                progress("explaining", number + 1, len(jobs))
    summary = VideoSummary(str(source), clips, windows, jsonable_settings(settings))
    write_json(folder / "summary.json", summary.to_json())
    return summary


def _jobs(
    model: CRNN,
    info: VideoInfo,
    windows: WindowChoice,
    start: int | None,
    end: int | None,
    detection: Detection | None,
) -> list[tuple[np.ndarray, str | None]]:
    """(frame indices, target override) of each clip to explain."""
    steps = model.config.num_frames
    if windows == "one":
        return [(clip_indices(info, steps, start, end), None)]
    assert detection is not None
    if isinstance(windows, int):
        if not 0 <= windows < len(detection.windows):
            raise InputError(
                f"window {windows} does not exist: the video has {len(detection.windows)} "
                f"windows (0–{len(detection.windows) - 1}) at this stride"
            )
        return [(detection.windows[windows].indices, None)]
    if windows == "all":
        return [(w.indices, None) for w in detection.windows]
    return [(_event_indices(detection, event), event.class_name) for event in detection.events]


def _event_indices(detection: Detection, event: Event) -> np.ndarray:
    """The frames of the event's window (the one detection chose, else chosen here)."""
    if event.window is not None:
        return next(
            w.indices
            for w in detection.windows
            if (w.indices[0], w.indices[-1]) == tuple(event.window)
        )
    d = detection
    return event_window(d.windows, d.window_probabilities, d.class_names, event).indices


def jsonable_settings(settings: ExplainSettings) -> dict[str, Any]:
    document = asdict(settings)
    document["options"] = {k: dict(v) for k, v in settings.options.items()}
    return document


def model_names(paths: Sequence[str | Path]) -> list[str]:
    """Names for the models at ``paths`` in a comparison (the keys :func:`compare_models`
    takes): each model by its folder's name, a run's ``best/`` or ``last/`` with its run's
    (``run/best``), and a name given twice numbered by position (``a #1``, ``a #2``)."""
    folders = [Path(p) for p in paths]
    names = [
        p.name if p.name not in ("best", "last") else f"{p.parent.name}/{p.name}" for p in folders
    ]
    return [name if names.count(name) == 1 else f"{name} #{k + 1}" for k, name in enumerate(names)]


def compare_models(
    models: Mapping[str, CRNN],
    source: str | Path,
    out: str | Path,
    settings: ExplainSettings | None = None,
    start: int | None = None,
    end: int | None = None,
) -> dict[str, Any]:
    """The same span of ``source`` explained by several models, side by side.

    Each model samples its own clip (its clip length) from the span and is explained with the
    first of ``settings.methods``. Writes ``compare.png`` (models × frames, each row labelled
    with the model's prediction), ``compare.json``, and each model's explanation (arrays and
    manifest) under ``models/<name>/``.
    """
    settings = settings or ExplainSettings()
    if len(models) < 2:
        raise InputError("compare needs at least two models")
    out = Path(out)
    method = settings.methods[0]
    source_sha256 = video_sha256(source)
    rows: list[tuple[str, np.ndarray]] = []
    entries = []
    with VideoReader(source) as video, staged_folder(out, last="compare.json") as staging:
        for name, model in models.items():
            indices = clip_indices(video.info, model.config.num_frames, start, end)
            clip = explain_frames(model, video, indices, settings)
            e = clip.explanation
            predicted, probability = clip.predicted
            if not rows:
                rows.append(("frame", clip.frames))
            rows.append(
                (
                    f"{name}: {class_label(predicted, probability)}",
                    rendered(clip, method, settings.view, settings),
                )
            )
            folder = Path("models") / re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
            e.save(staging / folder, audit(clip, settings, model, video.info, source_sha256))
            entries.append(
                {
                    "model": name,
                    "folder": str(out / folder),
                    "frames": [int(i) for i in indices],
                    "predicted": predicted,
                    "probability": round(probability, 4),
                    "probabilities": dict(
                        zip(e.class_names, e.probabilities[0].round(4).tolist(), strict=True)
                    ),
                    "target": e.target_names[0],
                    "frame_importance": {
                        k: f.scores[0].round(6).tolist() for k, f in e.temporal.items()
                    },
                }
            )
        first_frames = entries[0]["frames"]
        write_png(staging / "compare.png", grid(rows, [str(i) for i in first_frames]))
        summary = {
            "source": str(source),
            "source_sha256": source_sha256,
            "method": method,
            "view": settings.view,
            "models": entries,
        }
        write_json(staging / "compare.json", summary)
    return summary


__all__ = [
    "EXPORTS",
    "WINDOWS",
    "ClipExplanation",
    "ExplainSettings",
    "clip_indices",
    "compare_models",
    "explain_clip",
    "explain_frames",
    "explain_video",
    "model_names",
    "write_clip",
]
