"""The commands that learn a camera's normal from its own footage: learn-normal, and
update-normal, which learns it again with footage judged normal."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from vadx import limits
from vadx.cli.common import console, number, progress_bar
from vadx.files import writable_path


def learn_normal_command(
    source: Annotated[
        str,
        typer.Argument(
            help="A vadx checkpoint (its CNN and preprocessing) or a backbone name "
            "(efficientnet_lite0 ships its weights; others need --weights).",
            show_default=False,
        ),
    ],
    footage: Annotated[
        list[str],
        typer.Argument(
            help="Videos of the camera's ordinary activity (no labels), or the camera itself "
            "(rtsp://, http(s)://, tcp://…) with --record-minutes.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to save the normality model.")],
    alarms_per_hour: Annotated[
        float,
        number("False alarms per hour accepted on the held-back footage.", 0.001, 3600, kind=float),
    ] = 1.0,
    holdout: Annotated[
        float,
        number("Share of each video held back to calibrate the threshold.", 0.05, 0.5, kind=float),
    ] = 0.2,
    channels: Annotated[int, number("Feature dimensions per location.", 1, 512)] = 64,
    layer: Annotated[
        str | None,
        typer.Option(
            help="The backbone's layer whose features are read: an alias such as block3 "
            "(efficientnet_lite0: block0…block15) or a module name (`vadx info CHECKPOINT "
            "--layers` lists a classifier's). Default: the first layer at stride 8.",
            show_default=False,
        ),
    ] = None,
    appearance: Annotated[
        str,
        typer.Option(
            help="How a location's features are judged: memory (distance to the nearest of "
            "the features learnt, anywhere in the frame; PatchCore) or gaussian (a Gaussian "
            "per location; PaDiM).",
        ),
    ] = "memory",
    memory_size: Annotated[
        int,
        number(
            "Learnt features the memory keeps (a coreset of them; appearance memory).",
            *limits.MEMORY_SIZE,
        ),
    ] = 8000,
    memory_lists: Annotated[
        int,
        number(
            "Lists the memory is put in: a cell is compared with the features of the 4 lists "
            "nearest to it only (0: with every feature; faster the more lists).",
            *limits.MEMORY_LISTS,
        ),
    ] = 32,
    fitting_frames: Annotated[
        int,
        number(
            "Most frames the CNN reads to fit the statistics (every k-th of the footage "
            "learnt from; the held-back share is read whole).",
            *limits.FITTING_FRAMES,
        ),
    ] = 1000,
    spread_floor: Annotated[
        float,
        number(
            "Least spread of a location's statistics, as a quantile of all locations' "
            "(0: each its own; a cell the footage hardly varied in then alarms on any change).",
            0,
            1,
            kind=float,
        ),
    ] = 0.9,
    neighbourhood: Annotated[
        int,
        number(
            "Cells around each location whose features its Gaussian learns too (appearance "
            "gaussian; 0: the "
            "location's own, as PaDiM; people seen walking nearby are then usual there too).",
            *limits.NEIGHBOURHOOD,
        ),
    ] = 13,
    shrinkage: Annotated[
        float,
        number(
            "How far each location's covariance is pulled toward its mean variance.",
            0,
            1,
            kind=float,
        ),
    ] = 0.1,
    size: Annotated[
        int | None, number("Frame side in pixels (default: the checkpoint's, else 160).", 32, 1024)
    ] = None,
    frame_step: Annotated[
        int,
        number(
            "Analyse every k-th frame (the frames between keep its map); motion is then "
            "learnt and read over k frames.",
            *limits.FRAME_STEP,
        ),
    ] = 2,
    motion: Annotated[
        bool, typer.Option(help="Model each location's frame-to-frame change too.")
    ] = True,
    weights: Annotated[
        str | None, typer.Option(help="The backbone's weights: a file, a URL or 'imagenet'.")
    ] = None,
    seed: Annotated[int, number("Seed of the feature projection.", *limits.SEED)] = 0,
    record_minutes: Annotated[
        float | None,
        number(
            "Minutes to record of each live source given as footage (its packets copied "
            "as they come, kept in --recordings), then learnt from.",
            0.01,
            7 * 24 * 60,
            kind=float,
        ),
    ] = None,
    recordings: Annotated[
        Path | None,
        typer.Option(
            help="Where recordings of live sources go (default: OUT-footage beside --out).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Learn a camera's normal from its own footage, without labels: then `vadx detect
    MODEL VIDEO` finds what is unusual for this camera, each frame's map showing where."""
    from vadx.normality import learn_normal, save_normality, source_backbone

    writable_path(out, "--out")
    footage = _recorded(footage, record_minutes, recordings or out.with_name(out.name + "-footage"))
    frame_size = None if size is None else (size, size)
    backbone, config = source_backbone(
        source,
        weights,
        frame_size,
        channels=channels,
        layer=layer,
        appearance=appearance,
        motion=motion,
        seed=seed,
        frame_step=frame_step,
    )
    with progress_bar("learning") as advance:
        model = learn_normal(
            backbone,
            footage,
            config,
            holdout=holdout,
            alarms_per_hour=alarms_per_hour,
            fitting_frames=fitting_frames,
            spread_floor=spread_floor,
            neighbourhood=neighbourhood,
            shrinkage=shrinkage,
            memory_size=memory_size,
            memory_lists=memory_lists,
            progress=lambda stage, d, t: advance(d, t, stage),
        )
    save_normality(model, out)
    c = model.calibration
    console.print(
        f"learnt the normal of {len(footage)} video(s) on a {model.grid[0]}×{model.grid[1]} grid; "
        f"threshold {model.threshold:.2f} ({c['held_back_alarms']} alarm(s) in "
        f"{c['held_back_seconds']:.0f} s held back, {c['fitted_alarms']} in the "
        f"{c['fitted_seconds']:.0f} s learnt from); saved {out}",
        soft_wrap=True,
    )


def update_normal_command(
    model: Annotated[
        Path, typer.Argument(help="The camera's normality model.", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Where to save the model learnt again (MODEL itself replaces it)."
        ),
    ],
    footage: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Videos judged normal for this camera (an alarm that was not one, an "
            "ordinary stretch it had not seen), added to the footage it learnt from.",
            show_default=False,
        ),
    ] = None,
    from_console: Annotated[
        Path | None,
        typer.Option(
            "--console",
            help="A console's data folder (vadx serve --data-dir): also add the clips of "
            "--camera's events judged normal there (key N on the console) not yet learnt.",
            show_default=False,
        ),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option(help="The console's camera this model is the normal of.", show_default=False),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="The console's database URL (default: the SQLite file of --console).",
            show_default=False,
        ),
    ] = None,
    recordings: Annotated[
        Path | None,
        typer.Option(
            help="Where the console's clips are copied to be learnt from, and kept (default: "
            "OUT-footage beside --out).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option(help="Why the footage is added, recorded with the update.")
    ] = "judged normal by an operator",
) -> None:
    """Keep learning: learn a camera's normal again from the footage it learnt from and
    footage judged normal (files, or the clips of the console's events judged normal), with
    its own settings; the update is recorded in the model (`vadx info MODEL`). The footage it
    learnt from must still be there, unchanged."""
    from vadx.normality import load_normality, save_normality
    from vadx.normality.update import update_normal

    if (from_console is None) != (camera is None):
        raise typer.BadParameter("--console and --camera go together: the console and its camera")
    if database is not None and from_console is None:
        raise typer.BadParameter("--database reads a console's events: give --console too")
    if not footage and from_console is None:
        raise typer.BadParameter("give the footage to add, or --console and --camera")
    writable_path(out, "--out")
    loaded = load_normality(model)
    added = list(footage or [])
    if from_console is not None:
        assert camera is not None
        folder = recordings or out.with_name(out.name + "-footage")
        writable_path(folder, "--recordings")
        clips = _judged_clips(loaded, from_console, camera, database, folder)
        if not clips and not added:
            raise typer.BadParameter(
                f"no event of camera {camera} in {from_console} is judged normal and not yet "
                "learnt: judge its events on the console first (N)"
            )
        added += clips
    with progress_bar("learning again") as advance:
        updated = update_normal(
            loaded, added, reason=reason, progress=lambda stage, d, t: advance(d, t, stage)
        )
    save_normality(updated, out)
    console.print(
        f"learnt again from {len(updated.footage)} video(s), {len(added)} added; threshold "
        f"{loaded.threshold:.4g} → {updated.threshold:.4g}; saved {out}",
        soft_wrap=True,
    )


def _judged_clips(model, folder: Path, camera: str, database: str | None, into: Path):
    """The clips of ``camera``'s events judged normal on the console in ``folder``, copied
    into ``into`` (a console's clips go when it needs the room; the model keeps learning
    from the copies), less those the model already learnt from."""
    from vadx.console.store import judged_normal_clips
    from vadx.files import atomic_path
    from vadx.video.decode import video_sha256

    learnt = {entry["sha256"] for entry in model.footage}
    copies = []
    for event, clip in judged_normal_clips(folder, camera, database):
        if video_sha256(clip) in learnt:
            continue
        copy = into / f"{re.sub(r'[^A-Za-z0-9_-]+', '-', camera)}-event-{event}.mp4"
        with atomic_path(copy) as staged:
            shutil.copyfile(clip, staged)
        copies.append(copy)
    return copies


def _recorded(footage: list[str], minutes: float | None, folder: Path) -> list[Path]:
    """The footage as files: each live source recorded for ``minutes`` into ``folder``."""
    from vadx.video.live import is_live
    from vadx.video.record import record_stream

    live = [source for source in footage if is_live(source)]
    if live and minutes is None:
        raise typer.BadParameter(
            f"{live[0]} is a live source: give --record-minutes to record it, then learn"
        )
    if not live:
        return [Path(source) for source in footage]
    writable_path(folder, "--recordings")
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for source in footage:
        if not is_live(source):
            files.append(Path(source))
            continue
        name = re.sub(r"[^A-Za-z0-9]+", "-", source.split("://", 1)[-1]).strip("-")[:60]
        target = folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.mkv"
        with progress_bar(f"recording {source}") as advance:
            record_stream(source, target, minutes * 60, progress=lambda _, d, t: advance(d, t))
        console.print(f"recorded {minutes:g} min of {source} in {target}", soft_wrap=True)
        files.append(target)
    return files
