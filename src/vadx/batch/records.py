"""What a batch records of each video: :class:`VideoRecord` — the video's identity (file,
model, settings), status, what was found in it (:class:`VideoOutcome`, its events
:class:`BatchEvent`) and the files written — as its marker ``batch.json`` holds it
(:meth:`VideoRecord.to_json`, read back by :meth:`VideoRecord.from_json`) and as the index is
written from it; and :class:`JobSettings`, every setting of a batch that changes the outputs.

A video's events are those of one signal or two: a classifier's (``signal`` ``classifier``),
a camera's normal's (``normality``: a normality model alone, or beside the classifier, its
files in the video's ``unusual/``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vadx.detect import DetectConfig


@dataclass(frozen=True, slots=True)
class JobSettings:
    """Every setting of a batch's job that changes its outputs (a marker with others is
    redone): detection's, and ``annotate`` and ``runtime`` (detection jobs) or ``explain``
    (the explanation's settings as JSON, explanation jobs), and ``normal``: what a camera's
    normal beside the classifier reads with (its threshold, and the detection settings the
    threshold was calibrated with); None: not a setting of the job. Markers and
    ``batch.json`` hold them as JSON, the job's own settings only, in this order
    (:func:`vadx.batch.run.run_batch`)."""

    detect: DetectConfig
    annotate: bool | None = None
    runtime: str | None = None
    explain: dict[str, Any] | None = None
    normal: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One event of a video as the batch records it (times and probabilities rounded), with
    the report explaining it and that explanation's trust verdict (batch explanations), and
    the signal that raised it: ``classifier`` or ``normality`` (a camera's normal). ``event``
    is its index among its signal's events (in ``events.json``, or ``unusual/events.json``
    for a normal beside the classifier)."""

    event: int
    class_name: str
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    peak: float
    mean: float
    out_of_domain: float | None
    window: tuple[int, int] | None
    report: str | None
    trust: str | None
    signal: str = "classifier"


@dataclass(frozen=True, slots=True)
class VideoOutcome:
    """What was found in a video: its properties, events (the classifier's, then those of
    the camera's normal beside it), domain verdict and score curve
    (:func:`vadx.batch.run.score_curve`), and the normal's curve when it ran beside the
    classifier; all empty (the default) for a failed video."""

    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    truncated: bool | None = None
    #: the detection's domain verdict (:attr:`vadx.detect.Detection.domain`)
    domain: dict[str, Any] | None = None
    events: tuple[BatchEvent, ...] = ()
    curve: dict[str, list[float]] | None = None
    #: the curve of the camera's normal beside the classifier (its ``p(unusual)``)
    normal_curve: dict[str, list[float]] | None = None


@dataclass(frozen=True, slots=True)
class VideoIdentity:
    """What a video's outputs were made from: a marker of another identity is redone. The
    models are a pair: ``model`` (the batch's model) and ``normal`` (the camera's normal
    beside it; None when there is none)."""

    format: int
    video: str
    camera: str
    source: str
    size: int | None
    mtime_ns: int | None
    model: str | None
    normal: str | None
    #: :meth:`JobSettings.to_json`, as a marker holds them
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VideoRecord:
    """A video of a batch: its identity, status (``ok``, ``failed`` with its ``error`` and,
    for an unexpected one, its ``traceback``), outcome and the files of its folder."""

    identity: VideoIdentity
    status: str
    error: str | None
    outcome: VideoOutcome = field(default_factory=VideoOutcome)
    files: tuple[str, ...] = ()
    traceback: str | None = None

    @property
    def video(self) -> str:
        """The video's key (its outputs are in ``videos/<key>/``)."""
        return self.identity.video

    @property
    def events(self) -> tuple[BatchEvent, ...]:
        """The video's events (none for a failed video)."""
        return self.outcome.events

    def to_json(self) -> dict[str, Any]:
        """The record as the video's marker holds it."""
        o = self.outcome
        document: dict[str, Any] = {
            **asdict(self.identity),
            "status": self.status,
            "error": self.error,
            "frames": o.frames,
            "fps": o.fps,
            "duration": o.duration,
            "width": o.width,
            "height": o.height,
            "codec": o.codec,
            "truncated": o.truncated,
            "domain": o.domain,
            "events": [
                {
                    "event": e.event,
                    "signal": e.signal,
                    "class": e.class_name,
                    "start_frame": e.start_frame,
                    "end_frame": e.end_frame,
                    "start_time": e.start_time,
                    "end_time": e.end_time,
                    "peak": e.peak,
                    "mean": e.mean,
                    "out_of_domain": e.out_of_domain,
                    "window": None if e.window is None else list(e.window),
                    "report": e.report,
                    "trust": e.trust,
                }
                for e in o.events
            ],
            "curve": o.curve,
        }
        if o.normal_curve is not None:
            document["normal_curve"] = o.normal_curve
        if self.traceback is not None:
            document["traceback"] = self.traceback
        document["files"] = list(self.files)
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> VideoRecord:
        """The record a marker holds (:meth:`to_json`); KeyError, TypeError, ValueError or
        AttributeError when it is not one. Markers written before events said their signal
        (or the record its ``normal``) read as they were made: a normality model's events are
        its signal's, a classifier's the classifier's, beside no normal."""
        alone = "normality" if document["settings"].get("runtime") == "normality" else "classifier"
        events = tuple(
            BatchEvent(
                event=e["event"],
                class_name=e["class"],
                start_frame=e["start_frame"],
                end_frame=e["end_frame"],
                start_time=e["start_time"],
                end_time=e["end_time"],
                peak=e["peak"],
                mean=e["mean"],
                out_of_domain=e.get("out_of_domain"),
                window=None if e.get("window") is None else tuple(e["window"]),
                report=e.get("report"),
                trust=e.get("trust"),
                signal=e.get("signal", alone),
            )
            for e in document["events"]
        )
        outcome = VideoOutcome(
            frames=document["frames"],
            fps=document["fps"],
            duration=document["duration"],
            width=document["width"],
            height=document["height"],
            codec=document["codec"],
            truncated=document["truncated"],
            domain=document["domain"],
            events=events,
            curve=document["curve"],
            normal_curve=document.get("normal_curve"),
        )
        identity = VideoIdentity(
            format=document["format"],
            video=document["video"],
            camera=document["camera"],
            source=document["source"],
            size=document["size"],
            mtime_ns=document["mtime_ns"],
            model=document["model"],
            normal=document.get("normal"),
            settings=document["settings"],
        )
        return cls(
            identity,
            document["status"],
            document["error"],
            outcome,
            tuple(document.get("files", [])),
            document.get("traceback"),
        )
