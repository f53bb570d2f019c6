"""What a job does: detect or explain one uploaded video with one served model, its failures
worded for the API's client (request fields, the video's uploaded name, never a server path),
and the detections kept for the explanations of the same video that follow."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from vadx.detect import Detection, detect
from vadx.detect.files import write_detection
from vadx.errors import VadxError
from vadx.explanations.video import explain_video
from vadx.files import write_json
from vadx.models.domain_stats import missing_note, verdict_line
from vadx.normality import NormalityModel, detection_of, write_map_video
from vadx.serve.checks import explain_settings
from vadx.serve.job_store import Job, JobCancelled, JobFailed
from vadx.serve.schema import DetectResult, ExplainResult, JobParams
from vadx.serve.served import ServedModel
from vadx.serve.storage import VideoStore, label, redact_paths, without_paths

#: detections kept in memory for the explanations that follow them
KEPT_DETECTIONS = 16
LOG = logging.getLogger("vadx.serve")


class Runners:
    """The job runners of a server: ``detect`` and ``explain``
    (:class:`~vadx.serve.job_store.JobStore` calls them), over its ``models`` and ``videos``;
    one job at a time per model."""

    def __init__(self, models: dict[str, ServedModel], videos: VideoStore) -> None:
        self.models, self.videos = models, videos
        self.locks = {name: threading.Lock() for name in models}
        #: recent detections by (video, model, settings), oldest first (see _detection)
        self.detections: dict[tuple[str, str, str], Detection] = {}

    @contextlib.contextmanager
    def _client_errors(self, job: Job) -> Iterator[None]:
        """A job's failure as the API's client should read it: no server path, API fields
        instead of command-line options; anything unexpected logged here, not shown there."""
        video_id = JobParams.of(job.params).video
        if video_id not in self.videos:
            raise JobFailed(f"video {video_id} was deleted before the job ran")
        try:
            yield
        except (JobCancelled, JobFailed):
            raise
        except Exception as err:
            if video_id not in self.videos:  # its file went from under it
                raise JobFailed(f"video {video_id} was deleted while the job ran") from err
            if not isinstance(err, VadxError):
                LOG.exception("job %s (%s) failed", job.id, job.kind)
                raise JobFailed(
                    "the job failed on an internal error; the server's log has the details"
                ) from err
            name = self.videos.get(video_id).name
            raise JobFailed(api_message(err, self.videos.path(video_id), name)) from err

    def detect(self, job: Job, out: Path, progress) -> DetectResult:
        """Run detection job ``job`` into ``out``; what it found (failures worded for the
        client)."""
        with self._client_errors(job):
            result = self._run_detect(job, out, progress)
            self._redact(job, out)
        return result

    def explain(self, job: Job, out: Path, progress) -> ExplainResult:
        """Run explanation job ``job`` into ``out``; what it found (failures worded for the
        client)."""
        with self._client_errors(job):
            result = self._run_explain(job, out, progress)
            self._redact(job, out)
        return result

    def _redact(self, job: Job, out: Path) -> None:
        """Server paths in what a job wrote → names clients know: the video's uploaded name,
        the model's served name, the job's folder as ``.``."""
        p = JobParams.of(job.params)
        model = self.models[p.model]
        names = {self.videos.path(p.video): label(self.videos.get(p.video).name), out: "."}
        if isinstance(model, NormalityModel):
            checkpoint = model.path
        else:
            checkpoint = None if model.checkpoint is None else model.checkpoint.path
        if checkpoint is not None:
            names[checkpoint] = label(p.model)
        redact_paths(out, names)

    def _detection(self, job: Job, progress) -> Detection:
        """The detection of the job's video with its model and settings: run once, then kept
        (the last few) for the explanations of the same video."""
        p = JobParams.of(job.params)
        key = (p.video, p.model, p.detect.model_dump_json())
        found = self.detections.pop(key, None)
        if found is None:
            model, path = self.models[p.model], self.videos.path(p.video)
            found = detect(model, path, p.detect_config(), progress)
        self.detections[key] = found
        while len(self.detections) > KEPT_DETECTIONS:
            self.detections.pop(next(iter(self.detections)))
        return found

    def _run_detect(self, job: Job, out: Path, progress) -> DetectResult:
        p = JobParams.of(job.params)
        model, path = self.models[p.model], self.videos.path(p.video)
        with self.locks[p.model]:
            if isinstance(model, NormalityModel):  # its maps over the video: its explanation
                scores, maps = model.scores(path, progress)
                found = detection_of(scores, model, path, p.detect_config())
                write_map_video(model, path, maps, out / "unusual.mp4")
            else:
                found = self._detection(job, progress)
        write_detection(out, found, path, model.model_id, annotate=False)
        write_scores(out / "scores.json", found)
        return DetectResult(
            events=found.events,
            frames=found.info.num_frames,
            fps=found.info.fps,
            windows=len(found.windows),
            settings=found.settings.to_json(),
            domain={**found.domain, "message": domain_message(found, model)},
        )

    def _run_explain(self, job: Job, out: Path, progress) -> ExplainResult:
        p = JobParams.of(job.params)
        model, path = self.models[p.model], self.videos.path(p.video)
        with self.locks[p.model]:
            found = self._detection(job, progress)  # the video's, when it was detected already
            summary = explain_video(
                model,
                path,
                out,
                explain_settings(p),
                start=p.start,
                end=p.end,
                progress=progress,
                detection=found,
            )
        write_scores(out / "scores.json", found)  # the report's timeline, as a detection's
        clip = summary.clips[0]
        return ExplainResult(
            frames=clip.frames,
            predicted=clip.predicted,
            probability=clip.probability,
            target=clip.target,
            report="report.html",
            trust=clip.trust,
        )


def write_scores(path: Path, found: Detection) -> None:
    """A detection's per-frame scores as ``GET /api/jobs/{job_id}/scores`` serves them."""
    domain = found.frame_domain
    write_json(
        path,
        {
            "classes": list(found.class_names),
            "times": found.timestamps.round(4).tolist(),
            "anomaly": found.smoothed_score.round(4).tolist(),
            "probabilities": found.frame_probabilities.round(4).tolist(),
            "on": found.settings.on,
            "off": found.settings.off,
            "window": found.settings.window,
            "step": found.settings.step,
            "domain": None if domain is None else domain.round(3).tolist(),
        },
        indent=0,
    )


#: the request fields that set the library's settings, where their names differ
API_FIELDS = {"step": "detect.step", "stride": "detect.stride", "domain": "detect.domain"}


def api_words(err: VadxError) -> str:
    """A library error as the API's client reads it: its settings named by request fields."""
    return err.worded(lambda field: API_FIELDS.get(field, field))


def api_message(err: VadxError, path: Path, name: str) -> str:
    """A library error for the API's client: settings named by request fields, the stored
    video's path replaced by its name."""
    return without_paths(api_words(err), path, name)


def domain_message(found: Detection, model: ServedModel) -> str | None:
    """The sentence the page shows about the detection's domain verdict (no server paths;
    None when the check was turned off, or for a normality model, which has none: what is
    unfamiliar is what it finds)."""
    if isinstance(model, NormalityModel):
        return None
    if not found.domain.get("checked"):
        return None if found.settings.domain == "off" else missing_note(model, False)
    return verdict_line(found.domain)
