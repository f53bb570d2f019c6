"""What a batch does to each video: detect (``vadx detect`` on many videos, with a classifier,
a camera's normal, or both) or detect and explain the flagged windows (``vadx explain
--windows flagged`` on many videos)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vadx.batch.inputs import Video
from vadx.batch.records import JobSettings, VideoOutcome
from vadx.batch.run import ProgressFn, outcome
from vadx.detect import DetectConfig, detect
from vadx.detect.files import write_detection_files
from vadx.explanations.clip import ExplainSettings
from vadx.models.crnn import CRNN

if TYPE_CHECKING:
    from vadx.normality import NormalityModel


@dataclass(frozen=True)
class DetectJob:
    """``vadx detect``'s outputs for each video: events.json, scores.csv, scores.png and,
    with ``annotate``, annotated.mp4. With ``normal`` (a camera's normal beside the
    classifier), what ``vadx detect … --normal`` writes for one video
    (:func:`vadx.normality.write_beside`): also the normal's files in ``unusual/``, read with
    its calibrated settings, and a scores.png that draws both signals."""

    config: DetectConfig = field(default_factory=DetectConfig)
    annotate: bool = True
    runtime: str = "torch"
    command: str = "detect"
    normal: NormalityModel | None = None

    def settings(self) -> JobSettings:
        """Every setting that changes the outputs (the normal's id is the marker's, beside
        the classifier's: :func:`vadx.batch.run.model_ids`)."""
        normal = None
        if self.normal is not None:
            from vadx.normality import CALIBRATED_SETTINGS, calibrated_config

            calibrated = calibrated_config(self.normal)  # what it reads with, whatever config
            read = {name: getattr(calibrated, name) for name in CALIBRATED_SETTINGS}
            normal = {"threshold": self.normal.threshold, **read}
        return JobSettings(self.config, annotate=self.annotate, runtime=self.runtime, normal=normal)

    def run(
        self, model: CRNN, video: Video, folder: Path, named: Path, progress: ProgressFn | None
    ) -> VideoOutcome:
        """Detect events in ``video`` and write the detection's files into ``folder``; with
        a normal, its files too (class doc)."""
        if self.normal is not None:
            from vadx.normality import write_beside

            found, unusual = write_beside(
                folder,
                model,
                self.normal,
                video.path,
                self.config,
                self.annotate,
                progress,
                self.runtime,
            )
            return outcome(found, normal=unusual)
        detection = detect(model, video.path, self.config, progress, runtime=self.runtime)
        write_detection_files(
            folder, detection, video.path, model.model_id, self.annotate, progress
        )
        return outcome(detection)


@dataclass(frozen=True)
class UnusualJob:
    """``vadx detect``'s outputs with a normality model (:mod:`vadx.normality`) for each video:
    events.json, scores.csv, scores.png and, with ``annotate``, annotated.mp4 and unusual.mp4
    (each frame's anomaly map over it)."""

    config: DetectConfig = field(default_factory=DetectConfig)
    annotate: bool = True
    command: str = "detect"

    def settings(self) -> JobSettings:
        """Every setting that changes the outputs."""
        return JobSettings(self.config, annotate=self.annotate, runtime="normality")

    def run(
        self, model: Any, video: Video, folder: Path, named: Path, progress: ProgressFn | None
    ) -> VideoOutcome:
        """Detect what is unusual in ``video`` and write its files into ``folder``."""
        from vadx.normality import write_unusual

        found = write_unusual(folder, model, video.path, self.config, self.annotate, progress)
        return outcome(found, signal="normality")


@dataclass(frozen=True)
class ExplainJob:
    """The detection's files (without annotated.mp4) and, beside them, ``vadx explain
    --windows flagged``'s: summary.json and one folder with report.html per event."""

    explain: ExplainSettings = field(default_factory=ExplainSettings)
    config: DetectConfig = field(default_factory=DetectConfig)
    command: str = "explain"

    def settings(self) -> JobSettings:
        """Every setting that changes the outputs."""
        return JobSettings(self.config, explain=self.explain.to_json())

    def run(
        self, model: CRNN, video: Video, folder: Path, named: Path, progress: ProgressFn | None
    ) -> VideoOutcome:
        """Detect events in ``video``, write the detection's files into ``folder`` and explain
        each flagged window there (``named``: the folder ``folder`` becomes)."""
        from vadx.explanations.video import ExplainRequest, explain_into

        detection = detect(model, video.path, self.config, progress)
        sha256 = write_detection_files(
            folder, detection, video.path, model.model_id, annotate=False
        )
        request = ExplainRequest(
            video.path,
            self.explain,
            windows="flagged",
            detection=detection,
            source_sha256=sha256,
            progress=progress,
        )
        summary = explain_into(folder, named, model, request)
        reports = [Path(clip.report).relative_to(named).as_posix() for clip in summary.clips]
        return outcome(detection, reports, [clip.verdict for clip in summary.clips])
