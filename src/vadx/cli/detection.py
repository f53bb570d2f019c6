"""The command that finds anomalies over whole videos: detect (one video, or a batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vadx.cli.batches import run_as_batch
from vadx.cli.common import (
    DETECT,
    ForceOption,
    ListOption,
    ModelPath,
    NormalOption,
    VideosArgument,
    console,
    err_console,
    load_normal,
    progress_bar,
    say_domain,
    with_detection_options,
)
from vadx.files import writable_path
from vadx.settings import DetectConfig


@with_detection_options
def detect_command(
    model: ModelPath,
    videos: VideosArgument = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write events, scores, video.")] = ...,  # type: ignore[assignment]
    list_file: ListOption = None,
    force: ForceOption = False,
    normal: NormalOption = None,
    detection: DetectConfig = DETECT,
    annotate: Annotated[bool, typer.Option(help="Write annotated.mp4.")] = True,
    runtime: Annotated[
        str,
        typer.Option(
            help="Where the per-frame CNN runs: torch, or onnx (ONNX Runtime on the CPU, "
            "1.1–1.4× faster for VGG19 on 2 cores; needs the onnx extra: "
            "pip install vadx\\[onnx])."
        ),
    ] = "torch",
) -> None:
    """Find anomalies over a whole video: events, per-frame scores, an annotated video.

    Several videos, folders of videos or --list make a batch: one folder per video, one index.

    A batch run again skips the videos already done; under torchrun its processes share them.

    With --normal, the camera's normal reads each video too, with the settings its threshold
    was calibrated with: its events, scores and maps go to unusual/ beside the classifier's
    files (OUT/unusual/ for one video), and scores.png shows both signals.
    """
    from vadx.batch import DetectJob, is_batch
    from vadx.detect import check_domain_mode, detect
    from vadx.detect.files import write_detection_files
    from vadx.files import staged_folder
    from vadx.models import load_model
    from vadx.normality import is_normality

    config, domain = detection, detection.domain
    writable_path(out, "--out")
    beside = load_normal(model, normal)
    normality = is_normality(model)  # a model of the camera's normal (vadx learn-normal)
    if normality:
        _note_calibration(model, config)
    if normality and is_batch(videos or [], list_file):
        from vadx.batch.jobs import UnusualJob
        from vadx.normality import load_normality

        job = UnusualJob(config, annotate=annotate)
        run_as_batch(model, videos, list_file, out, job, force, load=load_normality)
        return
    if normality:
        _detect_unusual(model, videos or [], out, config, annotate)
        return
    if is_batch(videos or [], list_file):
        job = DetectJob(config, annotate=annotate, runtime=runtime, normal=beside)
        run_as_batch(
            model,
            videos,
            list_file,
            out,
            job,
            force,
            check=lambda loaded: check_domain_mode(loaded, domain),
        )
        return
    video = videos[0]  # type: ignore[index]
    loaded = load_model(model)
    check_domain_mode(loaded, domain)
    unusual = None
    with (
        progress_bar("detecting") as advance,
        staged_folder(out, last="events.json") as staging,  # all the files, or none
    ):
        progress = lambda _, d, t: advance(d, t)  # noqa: E731
        if beside is None:
            result = detect(loaded, video, config, progress=progress, runtime=runtime)
            write_detection_files(
                staging, result, video, loaded.checkpoint.model_id, annotate, progress
            )
        else:  # the camera's normal on the same video too, in unusual/
            from vadx.normality import write_beside

            result, unusual = write_beside(
                staging, loaded, beside, video, config, annotate, progress, runtime
            )
    checked = result.domain["checked"]
    table = Table(
        "class",
        "start",
        "end",
        "peak",
        *(["in domain"] if checked else []),
        title=f"{len(result.events)} event(s)",
    )
    for event in result.events:
        familiar = [] if event.out_of_domain is None else [f"{1 - event.out_of_domain:.0%}"]
        table.add_row(
            event.class_name,
            f"{event.start_time:.2f} s (frame {event.start_frame})",
            f"{event.end_time:.2f} s (frame {event.end_frame})",
            f"{event.peak_probability:.0%}",
            *familiar,
        )
    console.print(table)
    say_domain(result.domain, loaded, domain)
    console.print(
        f"wrote {out}/events.json, scores.csv, scores.png" + (", annotated.mp4" if annotate else "")
    )
    if unusual is not None:
        found = ", ".join(
            f"{e.start_time:.1f}–{e.end_time:.1f} s ({e.peak_probability:.0%})"
            for e in unusual.events
        )
        console.print(
            f"unusual for this camera: {len(unusual.events)} event(s)"
            + (f": {found}" if found else "")
            + f"; wrote {out}/unusual/events.json, scores.csv, scores.png"
            + (", annotated.mp4, unusual.mp4 and maps/ (the maps)" if annotate else ""),
            soft_wrap=True,
        )


def _note_calibration(model: str, config: DetectConfig) -> None:
    """A note when detection's settings are not those the normality model's threshold was
    calibrated with."""
    from vadx.cli import option_name
    from vadx.normality import calibration_mismatch

    if differ := calibration_mismatch(model, config):
        calibrated = ", ".join(f"{option_name(k)} {v:g}" for k, v in differ.items())
        err_console.print(
            f"note: the model's threshold was calibrated with {calibrated}: with other "
            "settings its false-alarm rate is not the one measured",
            soft_wrap=True,
        )


def _detect_unusual(model, videos, out, config, annotate) -> None:
    """Detection with a normality model (``vadx learn-normal``) on one video: what is unusual
    for the camera, as events, scores, an annotated video and the maps over the frames."""
    from vadx.files import staged_folder
    from vadx.normality import load_normality, write_unusual

    loaded = load_normality(model)
    with (
        progress_bar("detecting") as advance,
        staged_folder(out, last="events.json") as staging,  # all the files, or none
    ):
        progress = lambda _, d, t: advance(d, t)  # noqa: E731
        result = write_unusual(staging, loaded, videos[0], config, annotate, progress)
    table = Table("class", "start", "end", "peak", title=f"{len(result.events)} event(s)")
    for event in result.events:
        table.add_row(
            event.class_name,
            f"{event.start_time:.1f} s",
            f"{event.end_time:.1f} s",
            f"{event.peak_probability:.0%}",
        )
    console.print(table)
    written = "events.json, scores.csv, scores.png"
    written += ", annotated.mp4, unusual.mp4 and maps/ (the maps)" if annotate else ""
    console.print(f"wrote {out}/{written}", soft_wrap=True)
