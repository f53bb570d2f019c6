"""Upload jobs in the console's database: :class:`JobMirror`.

With live cameras (``vadx serve --cameras``), the server keeps one review list. Every upload
job is mirrored into the console's :class:`~vadx.console.store.EventStore` (table ``jobs``),
and a finished detection's events join the cameras' events (``source`` = ``upload``), each
with a short clip cut from the uploaded video for playback. ``job.json`` stays the job's
record: the mirror follows it one way, at every save (state, progress, reviews) and every
deletion, and catches up with the jobs folder when the server starts. So an event reviewed
on the uploads' page is reviewed in the console, and one reviewed in the console is reviewed
through its job (:meth:`review`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from vadx.console.store import StoredEvent, StoredJob
from vadx.detect import Event
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel
from vadx.serve.job_store import Job, JobStore
from vadx.serve.schema import DetectResult, JobParams
from vadx.serve.storage import VideoStore
from vadx.video.decode import VideoReader

if TYPE_CHECKING:
    from vadx.console.service import Console

LOG = logging.getLogger("vadx.serve")
#: seconds of the uploaded video kept before and after an event, at most ``CLIP_SECONDS`` in
#: all, each frame at most ``CLIP_SIDE`` pixels on its longer side: a clip of a 1080p upload
#: holds at most 15 s × fps frames of 480 × 270 × 3 bytes in memory while it is written
CLIP_MARGIN, CLIP_SECONDS, CLIP_SIDE = 2.0, 15.0, 480


class JobMirror:
    """Mirrors the jobs of ``jobs`` into ``console``'s store (module doc)."""

    def __init__(
        self, jobs: JobStore, console: Console, videos: VideoStore, models: dict[str, CRNN]
    ) -> None:
        self.jobs, self.console, self.videos, self.models = jobs, console, videos, models
        self.store = console.store
        self._cutting: set[int] = set()  # events whose clip is being cut
        self._lock = threading.Lock()
        self.sync()
        jobs.watchers.append(self)

    def sync(self) -> None:
        """Catch up with the jobs folder: keep every job, forget the rows of jobs deleted
        while the console did not run."""
        present = dict(self.jobs.jobs)
        for stored in self.store.jobs():
            if stored.id not in present:
                self.store.forget_job(stored.id)
        for job in sorted(present.values(), key=lambda j: j.created):
            self.saved(job, quiet=True)

    def saved(self, job: Job, quiet: bool = False) -> None:
        """Keep ``job`` (and, once found, its events; their footage is cut on the console's
        clip thread). ``quiet``: not told to the console page's live listeners."""
        params = JobParams.of(job.params)
        try:
            video_name = self.videos.get(params.video).name
        except KeyError:
            video_name = params.video
        result = job.result if isinstance(job.result, DetectResult) else None
        events = result.events if job.state == "done" and result is not None else []
        known = {e.job_event for e in self.store.events(job_id=job.id, limit=len(events) + 1)}
        model = self.models.get(params.model)
        stored = self.store.save_job(
            StoredJob(
                job.id,
                job.kind,
                params.video,
                video_name,
                params.model,
                job.state,
                job.progress,
                job.error,
                job.created,
                job.started,
                job.finished,
            ),
            events,
            model_id=str(model.model_id or "") if model is not None else "",
            reviews={int(k): v for k, v in job.reviews.items()},
            signal="normality" if isinstance(model, NormalityModel) else "classifier",
        )
        for event in stored:
            if not quiet:
                self.console.tell("update" if event.job_event in known else "new", event)
            if event.footage is None and result is not None:
                self._keep_footage(event, params.video, result)

    def deleted(self, job_id: str) -> None:
        self.store.forget_job(job_id)

    def review(self, event: StoredEvent, reviewed: bool) -> StoredEvent:
        """Mark an upload's event reviewed (or not) through its job, so that ``job.json``
        and the database agree; returns the event as stored."""
        assert event.job_id is not None and event.job_event is not None
        self.jobs.review(event.job_id, event.job_event, reviewed)
        return self.store.event(event.id)

    def _keep_footage(self, event: StoredEvent, video_id: str, result: DetectResult) -> None:
        try:
            path = self.videos.path(video_id)
        except KeyError:
            return  # the video was deleted: its events keep no clip
        with self._lock:
            if event.id in self._cutting:
                return
            self._cutting.add(event.id)
        source = result.events[event.job_event]

        def cut() -> tuple[np.ndarray, float, np.ndarray]:
            try:
                return event_clip(path, source, result.fps)
            finally:
                with self._lock:
                    self._cutting.discard(event.id)

        self.console.keep_footage(event, cut)


def event_clip(path: Path, event: Event, fps: float) -> tuple[np.ndarray, float, np.ndarray]:
    """The frames around ``event`` in the video at ``path`` (module constants), their rate
    and their numbers."""
    margin = round(CLIP_MARGIN * fps)
    start = max(event.start_frame - margin, 0)
    stop = min(event.end_frame + 1 + margin, start + max(round(CLIP_SECONDS * fps), 1))
    chunks = []
    with VideoReader(path) as reader:
        stop = min(stop, reader.info.num_frames)
        for first in range(start, stop, 32):
            chunks.append(_shrunk(reader.read_range(first, min(first + 32, stop)).data))
    return np.concatenate(chunks), fps, np.arange(start, stop)


def _shrunk(frames: np.ndarray) -> np.ndarray:
    """``frames`` with their longer side at most ``CLIP_SIDE`` pixels (even sizes)."""
    height, width = frames.shape[1:3]
    scale = min(1.0, CLIP_SIDE / max(height, width))
    size = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
    if size == (width, height):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])
