"""The index over a batch's videos, written by rank 0 into the batch's folder:

* ``events.csv`` and ``events.jsonl`` — one row per event of every video: video, camera,
  the signal that raised it (``classifier``, or ``normality``: a camera's normal), class,
  frames and times, peak and mean probability, share of frames outside the model's domain,
  the most anomalous window and the report explaining it (batch explanations);
* ``videos.csv`` — one row per video: status and error, frames, duration, events, domain;
* ``batch.json`` — the command, models, settings and counts;
* ``index.html`` — one self-contained page listing every video with its anomaly-score
  timeline (and the normal's, beside a classifier) and events, linking to each video's
  outputs and reports; written last.

Links and folders are relative to the batch's folder, so it can be moved or served as it is.
Nothing here depends on the order videos were processed in, or on how many processes did it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from vadx.batch.records import BatchEvent, VideoRecord
from vadx.files import atomic_path, write_json

TEMPLATE = Path(__file__).with_name("index.html.j2")
EVENT_COLUMNS = (
    "video",
    "camera",
    "event",
    "signal",
    "class",
    "start_frame",
    "end_frame",
    "start_time",
    "end_time",
    "peak",
    "mean",
    "out_of_domain",
    "trust",
    "window_start",
    "window_end",
    "report",
    "folder",
)
VIDEO_COLUMNS = (
    "video",
    "camera",
    "status",
    "error",
    "frames",
    "fps",
    "duration",
    "width",
    "height",
    "codec",
    "truncated",
    "events",
    "peak",
    "domain",
    "outside_share",
    "folder",
    "source",
)
INDEX_FILES = ("events.csv", "events.jsonl", "videos.csv", "batch.json", "index.html")
#: the signals an event may come from, as the page shows them
SIGNALS = ("classifier", "normality")
#: where a video's folder keeps the files of a camera's normal beside the classifier
BESIDE = "unusual/"


def folder_of(record: VideoRecord) -> str:
    """A video's output folder, relative to the batch's folder."""
    return f"videos/{record.video}"


def event_rows(records: Sequence[VideoRecord]) -> list[tuple[object, ...]]:
    """Every event of every video (key order; then the classifier's events in time, then
    those of the camera's normal beside it), as events.csv/jsonl hold them: one cell per
    column of :data:`EVENT_COLUMNS`."""
    rows = []
    for record in records:
        folder = folder_of(record)
        for e in record.events:
            window_start, window_end = e.window if e.window else (None, None)
            rows.append(
                (
                    record.video,
                    record.identity.camera,
                    e.event,
                    e.signal,
                    e.class_name,
                    e.start_frame,
                    e.end_frame,
                    e.start_time,
                    e.end_time,
                    e.peak,
                    e.mean,
                    e.out_of_domain,
                    e.trust,
                    window_start,
                    window_end,
                    f"{folder}/{e.report}" if e.report else e.report,
                    folder,
                )
            )
    return rows


def video_rows(records: Sequence[VideoRecord]) -> list[tuple[object, ...]]:
    """One row per video, as videos.csv holds it: one cell per column of
    :data:`VIDEO_COLUMNS`."""
    rows = []
    for record in records:
        o = record.outcome
        domain = o.domain or {}
        share = domain.get("share_outside")
        rows.append(
            (
                record.video,
                record.identity.camera,
                record.status,
                record.error,
                o.frames,
                o.fps,
                o.duration,
                o.width,
                o.height,
                o.codec,
                o.truncated,
                len(o.events),
                max((e.peak for e in o.events), default=None),
                domain.get("verdict"),
                None if share is None else round(share, 4),
                folder_of(record),
                record.identity.source,
            )
        )
    return rows


def write_index(out: Path, records: Sequence[VideoRecord], meta: dict[str, Any]) -> None:
    """Write the index files of the module doc into ``out`` (each atomically, the page last)."""
    events, videos = event_rows(records), video_rows(records)
    _write_csv(out / "events.csv", EVENT_COLUMNS, events)
    with atomic_path(out / "events.jsonl") as tmp:
        lines = [json.dumps(dict(zip(EVENT_COLUMNS, row, strict=True))) + "\n" for row in events]
        tmp.write_text("".join(lines), encoding="utf-8")
    _write_csv(out / "videos.csv", VIDEO_COLUMNS, videos)
    failed = [r.video for r in records if r.status != "ok"]
    counts = {
        "videos": len(records),
        "failed": len(failed),
        "events": len(events),
        "videos_with_events": sum(1 for r in records if r.events),
    }
    write_json(out / "batch.json", {**meta, **counts, "failed_videos": failed})
    page = (
        _environment()
        .get_template(TEMPLATE.name)
        .render(
            meta=meta,
            counts=counts,
            videos=[_video_view(r) for r in records],
            settings=json.dumps(meta.get("settings"), indent=1),
        )
    )
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")


def _write_csv(path: Path, columns: Sequence[str], rows: list[tuple[object, ...]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(TEMPLATE.parent)
    environment = jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["clock"] = clock
    return environment


def clock(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), as players show times."""
    if seconds is None:
        return "–"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _href(path: str) -> str:
    return quote(path, safe="/#=.-_~")


@dataclass(frozen=True, slots=True)
class EventView:
    """What the page shows of one event: the event, its link and its place on the timeline
    (x and width in the 1000-unit-wide drawing), and its thumbnail when it has one (a
    camera's normal's: the event's most unusual frame with its map)."""

    event: BatchEvent
    href: str
    x: float
    width: float
    thumb: str | None = None


@dataclass(frozen=True, slots=True)
class VideoView:
    """What the page shows of one video: its record, links and timeline (SVG coordinates)."""

    record: VideoRecord
    folder_href: str
    events: tuple[EventView, ...]
    #: (name, href) of each of the video's files the page links to
    links: list[tuple[str, str]]
    #: the score curve's polyline points
    line: str
    #: the polyline points of the curve of the camera's normal beside the classifier ("": none)
    normal_line: str
    #: (x, width) of each run of bins mostly outside the model's domain
    outside: list[tuple[float, float]]
    peak: float | None
    classes: list[str]
    #: the detection's threshold, drawn as a line (None: not a setting of the batch)
    settings_on: float | None
    #: the threshold the normal beside the classifier reads with (None: no normal)
    normal_on: float | None
    #: per signal (:data:`SIGNALS`), its events' count and highest peak (-1: none)
    counts: dict[str, int]
    peaks: dict[str, float]


def _video_view(record: VideoRecord) -> VideoView:
    """What the page shows of one video: its row, links and timeline (SVG coordinates)."""
    folder = folder_of(record)
    files = set(record.files)
    duration = record.outcome.duration or 0.0
    events = []
    for event in record.events:
        # a camera's normal beside the classifier keeps its files in the video's unusual/
        beside = event.signal == "normality" and f"{BESIDE}events.json" in files
        prefix = BESIDE if beside else ""
        if event.report:
            href = f"{folder}/{event.report}"
        elif f"{prefix}annotated.mp4" in files:
            href = f"{folder}/{prefix}annotated.mp4#t={event.start_time:.2f}"
        else:
            href = f"{folder}/scores.png"
        start = _x(event.start_time, duration)
        width = max(_x(event.end_time, duration) - start, 0.4)
        thumb = f"{prefix}maps/event-{event.event}.png"
        shown = _href(f"{folder}/{thumb}") if thumb in files else None
        events.append(EventView(event, _href(href), start, width, shown))
    names = ("scores.png", "annotated.mp4", "events.json", "summary.json", "unusual.mp4")
    names += tuple(f"{BESIDE}{name}" for name in ("unusual.mp4", "events.json", "scores.csv"))
    links = [(name, _href(f"{folder}/{name}")) for name in names if name in files]
    curve = record.outcome.curve or {"time": [], "score": [], "outside": []}
    starts = [_x(t, duration) for t in curve["time"]]
    shaded = _runs([o > 0.5 for o in curve["outside"]], [*starts, 1000.0])
    settings = record.identity.settings or {}
    return VideoView(
        record=record,
        folder_href=_href(folder + "/"),
        events=tuple(events),
        links=links,
        line=_line(curve, duration),
        normal_line=_line(record.outcome.normal_curve, duration),
        outside=shaded,
        peak=max((e.peak for e in record.events), default=None),
        classes=sorted({e.class_name for e in record.events}),
        settings_on=settings.get("detect", {}).get("on"),
        normal_on=(settings.get("normal") or {}).get("on"),
        counts={s: sum(1 for e in record.events if e.signal == s) for s in SIGNALS},
        peaks={
            s: max((e.peak for e in record.events if e.signal == s), default=-1) for s in SIGNALS
        },
    )


def _line(curve: dict[str, list[float]] | None, duration: float) -> str:
    """The points of a score curve's polyline in the timeline's drawing ("" for none)."""
    if not curve:
        return ""
    return " ".join(
        f"{_x(t, duration):.1f},{(1 - s) * 40 + 2:.1f}"
        for t, s in zip(curve["time"], curve["score"], strict=True)
    )


def _runs(flags: list[bool], edges: list[float]) -> list[tuple[float, float]]:
    """``(x, width)`` of each run of consecutive true ``flags``; bin ``k`` spans ``edges[k]``
    to ``edges[k + 1]``."""
    runs, start = [], None
    for k, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            runs.append((round(edges[start], 1), round(edges[k] - edges[start], 1)))
            start = None
    return runs


def _x(time: float, duration: float) -> float:
    """A time's x in the timeline's 1000-unit-wide drawing."""
    return 0.0 if duration <= 0 else min(1000.0, max(0.0, time / duration * 1000))
