"""Explanations of video clips as files: ``vadx explain MODEL VIDEO --out DIR``.

A clip is sampled from the video like a training clip (``T`` frames spread evenly over a
span), explained by :func:`vadx.explain.explain`, and its maps are brought back onto the
source frames. For each clip a folder holds:

* ``report.html`` — one self-contained page that carries each frame once and each method's
  raw maps (8-bit), and draws every view in the browser (see :mod:`vadx.explanations.report`);
* ``explanation.npz`` and ``manifest.json`` — every array, every setting, the model's and the
  input's sha256, versions: the audit record;

and, only when asked (``exports``), pictures rendered here with "Class: NN%" under each frame:

* ``frames`` — ``frames/<method>/NNNNNN.png``, every frame with the method's view;
* ``mp4``, ``gif`` — ``<method>.mp4`` (H.264) and ``<method>.gif``, the same frames playing
  in real time (the source's frame rate divided by the sampled frames' spacing);
* ``sheets`` — ``<method>-sheet.png`` contact sheets, ``methods.png`` (methods × frames),
  ``views.png`` (the three views of the first method) and ``strip.png`` (the frames above
  the temporal-importance curves).

Clips: one span (``start``/``end``, default the whole video), one sliding window of ``vadx
detect`` by its number (``window``), every one (``windows="all"``), or the windows ``vadx
detect`` flagged (``"flagged"``: for each event, its most anomalous window, explaining the
event's class).

The data flows one way: an :class:`ExplainRequest` says what to explain, :func:`plan_clips`
turns it into clips, :func:`vadx.explanations.clip.explain_frames` explains each,
:mod:`vadx.quality` scores it when asked, and :func:`write_clip` writes its files (the report
by :mod:`vadx.explanations.report`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vadx.detect import DetectConfig, Detection, Event, detect, event_window
from vadx.errors import InputError
from vadx.explanations.clip import (
    EXPORTS,
    WINDOWS,
    ClipExplanation,
    ExplainSettings,
    ProgressFn,
    WindowMode,
    clip_indices,
    explain_clip,
    explain_frames,
    rendered,
)
from vadx.explanations.report import write_report
from vadx.files import staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.quality.explained import QualityScores, clip_quality
from vadx.quality.trust import Verdict, trust_check, worst_verdict
from vadx.render.figures import contact_sheet, frame_strip, grid
from vadx.render.overlay import VIEWS, class_label
from vadx.video.decode import VideoInfo, VideoReader, probe, video_sha256
from vadx.video.encode import write_gif, write_mp4, write_png


@dataclass(frozen=True)
class ExplainRequest:
    """What :func:`explain_into` explains in one video, and how.

    Attributes:
        source: the video (file or frame folder).
        settings: what to explain and how to draw it.
        start, end: the one clip's span (default: the whole video); only with ``windows``
            ``"one"`` and no ``window``.
        windows: ``"one"`` (the span), ``"all"`` (every sliding window of the detection) or
            ``"flagged"`` (each event's most anomalous window, for the event's class).
        window: one sliding window of the detection by its number, instead.
        detection: the video's detection, needed for ``window`` and any ``windows`` but
            ``"one"`` (and for the report's timeline).
        source_sha256: the video's sha256, when the caller has it already.
        progress: called as ``progress("explaining", clips done, clips in all)``.
    """

    source: str | Path
    settings: ExplainSettings = field(default_factory=ExplainSettings)
    start: int | None = None
    end: int | None = None
    windows: WindowMode = "one"
    window: int | None = None
    detection: Detection | None = None
    source_sha256: str | None = None
    progress: ProgressFn | None = None

    def __post_init__(self) -> None:
        if isinstance(self.windows, int):
            raise InputError(
                f"windows is one of {', '.join(WINDOWS)}; give window number {self.windows} as "
                "{window}",
                "window",
            )
        if self.windows not in WINDOWS:
            raise InputError(
                f"windows must be one of {', '.join(WINDOWS)} or a window number; "
                f"got {self.windows!r}"
            )
        if not self.is_span and (self.start is not None or self.end is not None):
            raise InputError(
                "{start}/{end} choose one clip; they cannot be combined with {windows}",
                "start",
                "end",
                "windows",
            )

    @property
    def is_span(self) -> bool:
        """Whether one span of frames is explained (no window of a detection)."""
        return self.windows == "one" and self.window is None

    @property
    def needs_detection(self) -> bool:
        """Whether the request reads the video's detection (windows, or the timeline)."""
        return not self.is_span or self.settings.timeline


@dataclass(frozen=True, slots=True)
class ClipJob:
    """One clip :func:`explain_into` explains: its frames, the class it explains (None: the
    settings' target) and its folder under the output (``""``: the output itself)."""

    indices: np.ndarray
    target: str | None
    folder: str


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
        return worst_verdict(self.trust.values()) if self.trust else None

    def moved(self, folder: Path) -> ClipSummary:
        """The same clip once its folder is ``folder`` (staged folders move into place)."""
        return replace(self, folder=str(folder), report=str(folder / "report.html"))


@dataclass(frozen=True)
class VideoSummary:
    """What :func:`explain_video` explained in one video (its ``summary.json``): the clips,
    the window mode (or the window's number) and the settings — or, when nothing was to be
    explained, why (``note``)."""

    source: str
    clips: list[ClipSummary] = field(default_factory=list)
    windows: WindowMode | None = None
    settings: ExplainSettings | None = None
    note: str | None = None
    window: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The document ``summary.json`` holds (unchanged since before this type)."""
        document: dict[str, Any] = {"source": self.source}
        if self.note is not None:
            return {**document, "clips": [], "note": self.note}
        clips = [asdict(clip) for clip in self.clips]
        windows = self.window if self.window is not None else self.windows
        settings = None if self.settings is None else self.settings.to_json()
        return {**document, "windows": windows, "settings": settings, "clips": clips}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """The explained video, as the manifest records it (``source``)."""

    path: str
    sha256: str
    frames: int
    fps: float
    size: tuple[int, int]
    announced_frames: int | None
    truncated: bool

    @classmethod
    def of(cls, info: VideoInfo, sha256: str) -> SourceRecord:
        """The record of the video ``info`` describes, whose bytes hash to ``sha256``."""
        return cls(
            path=info.path,
            sha256=sha256,
            frames=info.num_frames,
            fps=info.fps,
            size=(info.height, info.width),
            announced_frames=info.announced_frames,
            truncated=info.truncated,
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """The checkpoint the explained model was loaded from (``model_checkpoint``)."""

    path: str
    id: str
    weights_sha256: str
    created: str


@dataclass(frozen=True, slots=True)
class RenderRecord:
    """How the maps were drawn (``render``)."""

    view: str
    colormap: str
    opacity: float


@dataclass(frozen=True, slots=True)
class PreprocessingRecord:
    """How the frames were fitted to the model (``preprocessing``): the model's fit and the
    share of the model's frame that shows the video."""

    fit: str
    picture_share: float


@dataclass(frozen=True)
class ClipAudit:
    """What a clip's manifest adds to its explanation's own record: the source, the clip, the
    model's checkpoint, how it was drawn and fitted, the domain check and, when asked, the
    quality scores and trust verdicts."""

    source: SourceRecord
    clip_frames: list[int]
    clip_fps: float
    model_checkpoint: CheckpointRecord | None
    render: RenderRecord
    preprocessing: PreprocessingRecord
    domain: Mapping[str, Any]
    quality: QualityScores | None = None
    trust: Mapping[str, Verdict] | None = None

    @classmethod
    def of(
        cls,
        explained: ClipExplanation,
        settings: ExplainSettings,
        model: CRNN,
        source: SourceRecord,
    ) -> ClipAudit:
        """The record of ``clip`` of ``source``, explained by ``model`` with ``settings``."""
        info = model.checkpoint
        return cls(
            source=source,
            clip_frames=[int(i) for i in explained.indices],
            clip_fps=explained.fps,
            model_checkpoint=None
            if info is None
            else CheckpointRecord(
                path=str(info.path),
                id=info.model_id,
                weights_sha256=info.weights_sha256,
                created=info.created,
            ),
            render=RenderRecord(settings.view, settings.colormap, settings.opacity),
            preprocessing=PreprocessingRecord(
                fit=model.config.fit, picture_share=float(explained.geometry.picture().mean())
            ),
            domain=explained.domain,
        )

    def to_json(self) -> dict[str, Any]:
        """The entries the manifest adds (the report shows them too), in the manifest's order;
        ``quality`` and ``trust`` only when they were computed."""
        document: dict[str, Any] = {
            "source": {**asdict(self.source), "size": list(self.source.size)},
            "clip_frames": list(self.clip_frames),
            "clip_fps": self.clip_fps,
            "model_checkpoint": None
            if self.model_checkpoint is None
            else asdict(self.model_checkpoint),
            "render": asdict(self.render),
            "preprocessing": asdict(self.preprocessing),
            "domain": dict(self.domain),
        }
        if self.quality is not None:
            document["quality"] = self.quality
        if self.trust is not None:
            document["trust"] = {
                name: asdict(verdict.record()) for name, verdict in self.trust.items()
            }
        return document


def write_clip(
    out: Path,
    explained: ClipExplanation,
    settings: ExplainSettings,
    model: CRNN,
    source: SourceRecord,
    timeline: Detection | None = None,
) -> ClipSummary:
    """Write the files of one explained clip of ``source`` into ``out`` (module doc), the
    report with the anomaly-score ``timeline`` when given; returns the clip's summary."""
    e = explained.explanation
    write_exports(out, explained, settings)
    picture = explained.geometry.picture()
    audit = replace(
        ClipAudit.of(explained, settings, model, source),
        quality=clip_quality(model, e, picture) if settings.quality else None,
        trust=trust_check(model, e, domain=explained.domain, picture=picture)
        if settings.trust
        else None,
    )
    document = audit.to_json()
    e.save(out, document)
    write_report(out / "report.html", explained, settings, document, timeline, audit.quality)
    name, probability = explained.predicted
    trust = None if audit.trust is None else {m: v.verdict for m, v in audit.trust.items()}
    return ClipSummary(
        folder=str(out),
        frames=[int(i) for i in explained.indices],
        predicted=name,
        probability=round(probability, 4),
        target=e.target_names[0],
        report=str(out / "report.html"),
        domain=dict(explained.domain),
        trust=trust,
    )


def write_exports(out: Path, explained: ClipExplanation, settings: ExplainSettings) -> None:
    """The pictures of ``settings.exports`` (module doc), rendered here."""
    exports = set(settings.exports)
    if not exports:
        return
    e = explained.explanation
    numbers = [f"frame {i}" for i in explained.indices]
    views = {m: rendered(explained, m, settings.view, settings) for m in e.maps}
    for method, frames in views.items():
        if "frames" in exports:
            for index, frame in zip(explained.indices, frames, strict=True):
                write_png(out / "frames" / method / f"{index:06d}.png", frame)
        if "mp4" in exports:
            write_mp4(out / f"{method}.mp4", frames, fps=explained.fps)
        if "gif" in exports:
            write_gif(out / f"{method}.gif", frames, fps=explained.fps)
        if "sheets" in exports:
            write_png(out / f"{method}-sheet.png", contact_sheet(frames, numbers))
    if "sheets" in exports:
        first = next(iter(e.maps))
        columns = [str(i) for i in explained.indices]
        rows = [("frame", explained.frames)] + [(e.maps[m].display_name, views[m]) for m in e.maps]
        view_rows = [
            (
                view,
                views[first]
                if view == settings.view
                else rendered(explained, first, view, settings),
            )
            for view in VIEWS
        ]
        write_png(out / "methods.png", grid(rows, columns))
        write_png(out / "views.png", grid(view_rows, columns))
        curves = {f.display_name: f.scores[0] for f in e.temporal.values()}
        if curves:
            title = f"{e.maps[first].display_name} · target {e.target_names[0]}"
            write_png(
                out / "strip.png", frame_strip(views[first], curves, explained.indices, title)
            )


def explain_video(
    model: CRNN,
    source: str | Path,
    out: str | Path,
    settings: ExplainSettings | None = None,
    *,
    start: int | None = None,
    end: int | None = None,
    windows: WindowMode = "one",
    window: int | None = None,
    detect_config: DetectConfig | None = None,
    progress: ProgressFn | None = None,
    detection: Detection | None = None,
) -> VideoSummary:
    """Explain one span, window number ``window``, every window (``windows="all"``) or the
    flagged windows of ``source`` into ``out`` (:class:`ExplainRequest`). A ``detection`` of
    ``source`` already at hand is reused instead of detecting again.

    Returns (and writes as ``summary.json``) the list of explained clips.
    """
    request = ExplainRequest(
        source,
        settings or ExplainSettings(),
        start=start,
        end=end,
        windows=windows,
        window=window,
        progress=progress,
    )
    # a span outside the video is refused before any work
    plan = plan_clips(model, probe(source), request) if request.is_span else None
    source_sha256 = video_sha256(source)
    if detection is None and request.needs_detection:
        detection = detect(model, source, detect_config, progress)
    request = replace(request, detection=detection, source_sha256=source_sha256)
    out = Path(out)
    with staged_folder(out, last="summary.json") as staging:
        return explain_into(staging, out, model, request, plan)


def explain_into(
    folder: Path,
    named: Path,
    model: CRNN,
    request: ExplainRequest,
    plan: list[ClipJob] | None = None,
) -> VideoSummary:
    """The files of :func:`explain_video`, written straight into ``folder`` (a staging folder
    of the caller's that will become ``named``, the path the summary gives), ``summary.json``
    last; ``plan``: the clips, when the caller planned them already (:func:`plan_clips`).
    Returns the summary."""
    settings = request.settings
    source_sha256 = request.source_sha256 or video_sha256(request.source)
    clips: list[ClipSummary] = []
    with VideoReader(request.source) as video:
        plan = plan_clips(model, video.info, request) if plan is None else plan
        if not plan:
            say = "no window was flagged" if request.windows == "flagged" else "nothing to explain"
            summary = VideoSummary(str(request.source), note=say)
            write_json(folder / "summary.json", summary.to_json())
            return summary
        source = SourceRecord.of(video.info, source_sha256)
        for number, job in enumerate(plan):
            explained = explain_frames(model, video, job.indices, settings, job.target)
            written = write_clip(
                folder / job.folder, explained, settings, model, source, request.detection
            )
            clips.append(written.moved(named / job.folder))
            if request.progress is not None:
                request.progress("explaining", number + 1, len(plan))
    summary = VideoSummary(
        str(request.source), clips, request.windows, settings, window=request.window
    )
    write_json(folder / "summary.json", summary.to_json())
    return summary


def plan_clips(model: CRNN, info: VideoInfo, request: ExplainRequest) -> list[ClipJob]:
    """The clips ``request`` asks for in the video ``info`` describes, each with the class it
    explains and its folder; refuses a span outside the video or a window that does not
    exist."""
    if request.is_span:
        indices = clip_indices(info, model.config.num_frames, request.start, request.end)
        return [ClipJob(indices, None, "")]
    detection = request.detection
    assert detection is not None, "windows are read from the video's detection"
    if request.window is not None:
        if not 0 <= request.window < len(detection.windows):
            raise InputError(
                f"window {request.window} does not exist: the video has "
                f"{len(detection.windows)} windows (0–{len(detection.windows) - 1}) at this stride"
            )
        chosen = [(detection.windows[request.window].indices, None)]
    elif request.windows == "all":
        chosen = [(w.indices, None) for w in detection.windows]
    else:
        chosen = [(_event_indices(detection, e), e.class_name) for e in detection.events]
    return [
        ClipJob(indices, target, f"window-{number:04d}-f{indices[0]:06d}-f{indices[-1]:06d}")
        for number, (indices, target) in enumerate(chosen)
    ]


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


def model_names(paths: Sequence[str | Path]) -> list[str]:
    """Names for the models at ``paths`` in a comparison (the keys :func:`compare_models`
    takes): each model by its folder's name, a run's ``best/`` or ``last/`` with its run's
    (``run/best``), and a name given twice numbered by position (``a #1``, ``a #2``)."""
    folders = [Path(p) for p in paths]
    names = [
        p.name if p.name not in ("best", "last") else f"{p.parent.name}/{p.name}" for p in folders
    ]
    return [name if names.count(name) == 1 else f"{name} #{k + 1}" for k, name in enumerate(names)]


@dataclass(frozen=True, slots=True)
class ComparedModel:
    """One model of a comparison: its explanation's folder, the clip's frames, its prediction
    (and every class's probability), the explained class and each frame curve."""

    model: str
    folder: str
    frames: list[int]
    predicted: str
    probability: float
    probabilities: dict[str, float]
    target: str
    frame_importance: dict[str, list[float]]


@dataclass(frozen=True, slots=True)
class Comparison:
    """What :func:`compare_models` found (its ``compare.json``): the source, the method and
    view shown, and each model's row."""

    source: str
    source_sha256: str
    method: str
    view: str
    models: list[ComparedModel]

    def to_json(self) -> dict[str, Any]:
        """The document ``compare.json`` holds."""
        return asdict(self)


def compare_models(
    models: Mapping[str, CRNN],
    source: str | Path,
    out: str | Path,
    settings: ExplainSettings | None = None,
    start: int | None = None,
    end: int | None = None,
) -> Comparison:
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
    entries: list[ComparedModel] = []
    with VideoReader(source) as video, staged_folder(out, last="compare.json") as staging:
        record = SourceRecord.of(video.info, source_sha256)
        for name, model in models.items():
            indices = clip_indices(video.info, model.config.num_frames, start, end)
            explained = explain_frames(model, video, indices, settings)
            e = explained.explanation
            predicted, probability = explained.predicted
            if not rows:
                rows.append(("frame", explained.frames))
            rows.append(
                (
                    f"{name}: {class_label(predicted, probability)}",
                    rendered(explained, method, settings.view, settings),
                )
            )
            folder = Path("models") / re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
            e.save(staging / folder, ClipAudit.of(explained, settings, model, record).to_json())
            entries.append(
                ComparedModel(
                    model=name,
                    folder=str(out / folder),
                    frames=[int(i) for i in indices],
                    predicted=predicted,
                    probability=round(probability, 4),
                    probabilities=dict(
                        zip(e.class_names, e.probabilities[0].round(4).tolist(), strict=True)
                    ),
                    target=e.target_names[0],
                    frame_importance={
                        k: f.scores[0].round(6).tolist() for k, f in e.temporal.items()
                    },
                )
            )
        first_frames = entries[0].frames
        write_png(staging / "compare.png", grid(rows, [str(i) for i in first_frames]))
        summary = Comparison(str(source), source_sha256, method, settings.view, entries)
        write_json(staging / "compare.json", summary.to_json())
    return summary


__all__ = [
    "EXPORTS",
    "WINDOWS",
    "ClipAudit",
    "ClipExplanation",
    "ClipJob",
    "ClipSummary",
    "ComparedModel",
    "Comparison",
    "ExplainRequest",
    "ExplainSettings",
    "VideoSummary",
    "clip_indices",
    "compare_models",
    "explain_clip",
    "explain_frames",
    "explain_into",
    "explain_video",
    "model_names",
    "plan_clips",
    "rendered",
    "write_clip",
]
