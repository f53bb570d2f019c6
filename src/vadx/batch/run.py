"""A batch over many videos: each video's outputs in ``OUT/videos/<key>/``, resumable, shared
among the ranks of a torchrun launch, merged into one index by rank 0.

Each video's folder is written in a staging folder and appears whole, its marker
``batch.json`` last: the record of the video (its size and modification time, the models —
the batch's model and the camera's normal beside it, if any — the settings, its status,
events and score curves). A re-run skips a video whose marker is complete and matches (the
same file, models and settings, every file listed present), redoes any other — failed,
interrupted, changed — from scratch, and with ``force`` redoes all.

Ranks: rank 0 decides what is left to do and broadcasts it; every rank takes its share
(:func:`vadx.distributed.share`, balanced by file size) and writes only its videos' folders;
the records are gathered and rank 0 writes the index (:mod:`vadx.batch.index`). A video that
fails is recorded with its error and the batch goes on.
"""

from __future__ import annotations

import json
import shutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vadx import distributed
from vadx._version import __version__
from vadx.batch.index import write_index
from vadx.batch.inputs import Video
from vadx.batch.records import BatchEvent, JobSettings, VideoIdentity, VideoOutcome, VideoRecord
from vadx.detect import Detection
from vadx.errors import InputError, VadxError
from vadx.files import path_text, remove_leftovers, staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.progress import ProgressFn

#: the completion marker of a video's folder, written last
MARKER = "batch.json"
#: version of the marker's layout: markers of another version are redone
FORMAT = 1
#: points of a video's score curve kept for the index's timeline
CURVE_POINTS = 400


class Job(Protocol):
    """What a batch does to each video (:class:`vadx.batch.jobs.DetectJob`, …). A job that
    runs a camera's normal beside the model holds it as ``normal`` (its id is recorded with
    the model's, :func:`model_ids`)."""

    #: the command, as the index names it ("detect", "explain")
    command: str

    def settings(self) -> JobSettings:
        """Every setting that changes the outputs (a marker with others is redone)."""
        ...

    def run(
        self, model: CRNN, video: Video, folder: Path, named: Path, progress: ProgressFn | None
    ) -> VideoOutcome:
        """Write ``video``'s outputs into ``folder`` (a staging folder that becomes
        ``named``); return what was found (:func:`outcome`)."""
        ...


@dataclass
class BatchResult:
    """What a batch did: every video's record in key order, and what this run did (over all
    ranks): the videos processed, and those skipped as complete."""

    records: list[VideoRecord]
    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[VideoRecord]:
        """The records of the videos that failed."""
        return [r for r in self.records if r.status != "ok"]

    @property
    def events(self) -> int:
        """How many events the batch's videos have."""
        return sum(len(r.events) for r in self.records)


def run_batch(
    model: CRNN,
    videos: Sequence[Video],
    out: str | Path,
    job: Job,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    on_video: Callable[[VideoRecord, int, int], None] | None = None,
) -> BatchResult:
    """Run ``job`` over ``videos`` into ``out`` (module doc) and write the index.

    ``progress(stage, done, total)`` follows the video in progress; ``on_video(record, done,
    total)`` is called after each of this rank's videos.
    """
    out = Path(out)
    chosen = asdict(job.settings())  # the job's own settings, as a marker holds them:
    settings = json.loads(json.dumps({k: v for k, v in chosen.items() if v is not None}))
    models = model_ids(model, job)
    finished = distributed.broadcast(
        None
        if distributed.rank()
        else [None if force else _finished(v, _folder(out, v), settings, models) for v in videos]
    )
    pending = [i for i, record in enumerate(finished) if record is None]
    mine = [pending[j] for j in distributed.share([videos[i].weight for i in pending])]
    done: dict[int, VideoRecord] = {}
    for n, index in enumerate(mine, 1):
        video = videos[index]
        done[index] = _process(model, video, _folder(out, video), job, settings, models, progress)
        if on_video is not None:
            on_video(done[index], n, len(mine))
    for part in distributed.gather(done):
        done.update(part)
    records = [done.get(i) or finished[i] for i in range(len(videos))]
    if distributed.rank() == 0:
        write_index(
            out,
            records,
            {
                "command": job.command,
                "model": models[0],
                "normal": models[1],
                "settings": settings,
                "vadx_version": __version__,
            },
        )
    skipped = [videos[i].key for i, record in enumerate(finished) if record is not None]
    return BatchResult(records, [videos[i].key for i in sorted(done)], skipped)


def _folder(out: Path, video: Video) -> Path:
    return out / "videos" / video.key


#: the ids of a batch's models: its model's, and that of the camera's normal beside it (None
#: when there is none)
Models = tuple[str | None, str | None]


def model_ids(model: Any, job: Job) -> Models:
    """The ids of the models a batch's outputs are made with (:data:`Models`)."""
    normal = getattr(job, "normal", None)
    return model.model_id, None if normal is None else normal.model_id


def _identity(video: Video, settings: dict[str, Any], models: Models) -> VideoIdentity:
    return VideoIdentity(
        format=FORMAT,
        video=video.key,
        camera=video.camera,
        source=path_text(video.path),
        size=video.size,
        mtime_ns=video.mtime_ns,
        model=models[0],
        normal=models[1],
        settings=settings,
    )


def _finished(
    video: Video, folder: Path, settings: dict[str, Any], models: Models
) -> VideoRecord | None:
    """The record of ``video``'s folder if it is complete and of this file, models and
    settings; else None (to be done)."""
    try:
        record = VideoRecord.from_json(json.loads((folder / MARKER).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not a marker
        return None
    if record.status != "ok" or record.identity != _identity(video, settings, models):
        return None
    if not all((folder / name).is_file() for name in record.files):
        return None
    return record


def _process(
    model: CRNN,
    video: Video,
    folder: Path,
    job: Job,
    settings: dict[str, Any],
    models: Models,
    progress: ProgressFn | None,
) -> VideoRecord:
    """Do ``job`` on ``video`` into ``folder``, from scratch; its record (also on disk)."""
    remove_leftovers(folder)  # of a run killed while writing it
    with staged_folder(folder, last=MARKER, replace=True) as staging:
        identity = _identity(video, settings, models)
        try:
            if video.size is None:
                raise InputError(f"video not found: {video.path}")
            found = job.run(model, video, staging, folder, progress)
            status, error, trace = "ok", None, None
        except Exception as err:  # one bad video never stops the batch
            for entry in staging.iterdir():  # half-written outputs of the failed video
                _remove(entry)
            found, status, error = outcome(None), "failed", error_text(err)
            trace = None if isinstance(err, VadxError | OSError) else traceback.format_exc()
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        record = VideoRecord(identity, status, error, found, tuple(files), trace)
        document = json.loads(json.dumps(record.to_json()))
        write_json(staging / MARKER, document)
    return VideoRecord.from_json(document)  # as a re-run reads it back


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def error_text(err: BaseException) -> str:
    """One line saying why a video failed."""
    if isinstance(err, VadxError):
        return str(err)
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror}{where}"
    return f"{type(err).__name__}: {err}".strip().rstrip(":")


def outcome(
    detection: Detection | None,
    reports: Sequence[str | None] | None = None,
    trust: Sequence[str | None] | None = None,
    *,
    signal: str = "classifier",
    normal: Detection | None = None,
) -> VideoOutcome:
    """What was found in a video: its properties, events (each with the report explaining
    it, from ``reports``, and that explanation's verdict, from ``trust``; each of ``signal``),
    domain verdict and score curve; with ``normal`` (the detection of a camera's normal beside
    the classifier's), its events after the classifier's and its curve. Empty for a failed
    video (``detection`` None)."""
    if detection is None:
        return VideoOutcome()
    info = detection.info
    events = _events(detection, signal, reports, trust)
    if normal is not None:
        events += _events(normal, "normality")
    return VideoOutcome(
        frames=info.num_frames,
        fps=round(info.fps, 4),
        duration=round(info.duration, 4),
        width=info.width,
        height=info.height,
        codec=info.codec,
        truncated=info.truncated,
        domain=detection.domain,
        events=events,
        curve=score_curve(detection),
        normal_curve=None if normal is None else score_curve(normal),
    )


def _events(
    detection: Detection,
    signal: str,
    reports: Sequence[str | None] | None = None,
    trust: Sequence[str | None] | None = None,
) -> tuple[BatchEvent, ...]:
    """``detection``'s events as the batch records them, each of ``signal``."""
    reports, trust = list(reports or []), list(trust or [])
    return tuple(
        BatchEvent(
            event=k,
            class_name=e.class_name,
            start_frame=e.start_frame,
            end_frame=e.end_frame,
            start_time=round(e.start_time, 4),
            end_time=round(e.end_time, 4),
            peak=round(e.peak_probability, 4),
            mean=round(e.mean_probability, 4),
            out_of_domain=None if e.out_of_domain is None else round(e.out_of_domain, 4),
            window=(e.window[0], e.window[1]) if e.window else None,
            report=reports[k] if k < len(reports) else None,
            trust=trust[k] if k < len(trust) else None,
            signal=signal,
        )
        for k, e in enumerate(detection.events)
    )


def score_curve(detection: Detection, points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """The smoothed anomaly score over time in at most ``points`` bins (each bin's maximum:
    a short peak stays visible), with each bin's share of frames outside the domain."""
    score = np.asarray(detection.smoothed_score, dtype=float)
    times = np.asarray(detection.timestamps, dtype=float)
    outside = np.asarray(detection.outside_domain, dtype=float)
    bins = np.array_split(np.arange(len(score)), min(points, len(score)))
    return {
        "time": [round(float(times[b[0]]), 3) for b in bins],
        "score": [round(float(score[b].max()), 4) for b in bins],
        "outside": [round(float(outside[b].mean()), 3) for b in bins],
    }
