"""Writing a detection as files and reading it back: ``events.json``, ``scores.csv``,
``scores.png`` and ``annotated.mp4`` (:func:`write_detection`), all of them or none; and
:func:`read_detection`, the detection a later explanation of the same video and model reuses.
The algorithm that computes a :class:`~vadx.detect.Detection` is :mod:`vadx.detect`'s."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vadx._version import __version__
from vadx.detect import Detection, Event
from vadx.errors import InputError
from vadx.files import read_json, staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.progress import ProgressFn
from vadx.render.overlay import band_height, class_label, label_frame
from vadx.render.plots import png_bytes
from vadx.settings import DetectionSettings
from vadx.video.decode import VideoInfo, VideoReader, video_sha256
from vadx.video.encode import Mp4Writer
from vadx.video.sampling import sliding_windows


def write_detection(
    out: str | Path,
    detection: Detection,
    source: str | Path,
    model_id: str | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
) -> Path:
    """Write events.json, scores.csv, scores.png and (optionally) annotated.mp4 into ``out``:
    all of them or, if anything fails or a signal stops it, none (``events.json`` comes last:
    a reader that finds it finds the rest)."""
    with staged_folder(out, last="events.json") as staging:
        write_detection_files(staging, detection, source, model_id, annotate, progress)
    return Path(out) / "events.json"


def write_detection_files(
    folder: Path,
    detection: Detection,
    source: str | Path,
    model_id: str | None = None,
    annotate: bool = True,
    progress: ProgressFn | None = None,
) -> str:
    """The files of :func:`write_detection`, written straight into ``folder`` (a staging
    folder of the caller's), ``events.json`` last; returns the video's SHA-256 (as
    ``events.json`` records it)."""
    _write_scores_csv(folder / "scores.csv", detection)
    (folder / "scores.png").write_bytes(scores_png(detection))
    if annotate:
        write_annotated(folder / "annotated.mp4", detection, source, progress)
    sha256 = video_sha256(source)
    document = {
        "video": str(source),
        "video_sha256": sha256,
        "video_info": asdict(detection.info),
        "model": model_id,
        "vadx_version": __version__,
        "settings": detection.settings.to_json(),
        "classes": list(detection.class_names),
        "events": [asdict(e) for e in detection.events],
        "windows": len(detection.windows),
        "domain": detection.domain,
    }
    write_json(folder / "events.json", document)
    return sha256


def _write_scores_csv(path: Path, detection: Detection) -> None:
    names = detection.class_names
    domain = detection.frame_domain
    active = _event_of_frame(detection)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "frame",
                "time",
                *[f"p_{n}" for n in names],
                "anomaly",
                "smoothed",
                "event",
                *(["domain_score", "out_of_domain"] if domain is not None else []),
            ]
        )
        for t, row in enumerate(detection.frame_probabilities):
            familiarity = [] if domain is None else [f"{domain[t]:.3f}", int(domain[t] > 1)]
            writer.writerow(
                [
                    t,
                    f"{detection.timestamps[t]:.4f}",
                    *[f"{p:.5f}" for p in row],
                    f"{detection.anomaly_score[t]:.5f}",
                    f"{detection.smoothed_score[t]:.5f}",
                    active[t] or "",
                    *familiarity,
                ]
            )


def _event_of_frame(detection: Detection) -> list[str | None]:
    labels: list[str | None] = [None] * detection.info.num_frames
    for event in detection.events:
        for t in range(event.start_frame, event.end_frame + 1):
            labels[t] = event.class_name
    return labels


def scores_png(detection: Detection, beside: Detection | None = None) -> bytes:
    """Class probabilities and the smoothed anomaly score over time, events shaded; with
    ``beside`` (a camera's normal on the same video), its smoothed ``p(unusual)`` too, its
    events shaded in purple."""
    from matplotlib.figure import Figure

    times = detection.timestamps
    figure = Figure(figsize=(10, 3.8))
    axes = figure.subplots()
    for k, name in enumerate(detection.class_names):
        axes.plot(times, detection.frame_probabilities[:, k], lw=1, label=f"p({name})")
    axes.plot(times, detection.smoothed_score, "k", lw=2, label="anomaly score (smoothed)")
    for event in detection.events:
        axes.axvspan(event.start_time, event.end_time, color="red", alpha=0.15)
        axes.text(event.start_time, 1.02, event.class_name, color="red", fontsize=8)
    if beside is not None:
        label = "unusual for this camera (smoothed)"
        axes.plot(beside.timestamps, beside.smoothed_score, color="purple", lw=2, label=label)
        for event in beside.events:
            axes.axvspan(event.start_time, event.end_time, color="purple", alpha=0.12)
            axes.text(event.start_time, 0.96, event.class_name, color="purple", fontsize=8)
        axes.axhline(beside.settings.on, color="purple", ls="--", lw=0.8)  # its own threshold
    outside = detection.outside_domain
    if outside.any():
        axes.fill_between(
            times,
            0,
            1.08,
            where=outside,
            color="grey",
            alpha=0.2,
            lw=0,
            label="outside the model's domain",
        )
    on, off = detection.settings.on, detection.settings.off
    axes.axhline(on, color="red", ls="--", lw=0.8)
    axes.axhline(off, color="grey", ls=":", lw=0.8)
    axes.set_ylim(0, 1.08)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("probability")
    # the legend under the plot: it never covers the curves or the events' labels
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7, ncol=4, frameon=False)
    figure.tight_layout()
    return png_bytes(figure, dpi=100)


def write_annotated(
    path: Path, detection: Detection, source: str | Path, progress: ProgressFn | None = None
) -> Path:
    """Every frame of the video with its top class and probability ("Fight: 98%"), and
    "(unfamiliar scene)" on frames outside the model's domain."""
    active = _event_of_frame(detection)
    outside = detection.outside_domain
    names = detection.class_names
    info = detection.info
    size = (info.height + band_height(info.width), info.width)  # the label below the picture
    writer = Mp4Writer(path, info.fps, size, reproducible=False)
    with VideoReader(source) as video, writer:
        for t, _, frame in video:
            row = detection.frame_probabilities[t]
            if active[t] is not None:
                name = active[t]
                text = class_label(name, row[names.index(name)])
            else:
                best = int(row.argmax())
                text = class_label(names[best], row[best])
            if outside[t]:
                text += " (unfamiliar scene)"
            writer.write(label_frame(frame, text, active[t] is not None))
            if progress is not None and t % 25 == 0:
                progress("annotating", t + 1, info.num_frames)
    return path


def read_detection(folder: str | Path, model: CRNN, source: str | Path) -> Detection:
    """The detection ``vadx detect`` wrote into ``folder`` (``events.json``, ``scores.csv``),
    checked to be of ``source`` by ``model``: what an explanation's timeline and ``--windows``
    take instead of detecting the whole video again. Its windows are cut again from its
    settings; their probabilities are not on file (NaN), events carry their window."""
    folder = Path(folder)
    try:
        document = read_json(folder / "events.json", InputError)
        with open(folder / "scores.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError) as err:
        raise InputError(
            f"{folder} holds no detection vadx can read ({err}); give the {{out}} "
            "folder of a vadx detect run",
            "out",
        ) from None
    model_id = model.model_id
    if document.get("model") != model_id:
        raise InputError(
            f"{folder} holds the detection of model {document.get('model')}, not "
            f"of this model ({model_id}); detect again with it"
        ) from None
    if document.get("video_sha256") != video_sha256(source):
        raise InputError(
            f"{folder} holds the detection of another video "
            f"({document.get('video')}), not of {source}"
        )
    info = VideoInfo(**document["video_info"])
    names = tuple(document["classes"])
    settings = DetectionSettings.from_json(document["settings"])

    def column(name: str) -> np.ndarray:
        return np.array([float(row[name]) for row in rows])

    timestamps = column("time")
    windows = sliding_windows(
        info.num_frames, settings.window, settings.stride, settings.step, timestamps
    )
    events = [
        Event(**{**e, "window": tuple(e["window"]) if e.get("window") else None})
        for e in document["events"]
    ]
    frame_domain = column("domain_score") if rows and "domain_score" in rows[0] else None
    return Detection(
        info,
        names,
        windows,
        np.full((len(windows), len(names)), np.nan),
        np.stack([column(f"p_{n}") for n in names], 1),
        column("anomaly"),
        column("smoothed"),
        events,
        timestamps,
        settings,
        None,
        frame_domain,
        document.get("domain", {}),
    )
