"""The commands about footage: synth (a synthetic dataset with exact masks), import-boxes
(annotated boxes as masks) and probe (what a video holds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vadx import limits
from vadx.cli.common import console, int_list, number, progress_bar
from vadx.errors import VadxError
from vadx.files import writable_path


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the dataset to.")],
    clips: Annotated[str, typer.Option(help="Clips per class in train,val,test.")] = "40,10,10",
    frames: Annotated[int, number("Frames per clip.", *limits.SYNTH_FRAMES)] = 40,
    size: Annotated[int, number("Frame side in pixels (square frames).", *limits.SYNTH_SIDE)] = 112,
    fps: Annotated[float, number("Frame rate of the videos.", *limits.FPS, kind=float)] = 10.0,
    seed: Annotated[int, number("Everything generated is a function of it.", *limits.SEED)] = 0,
    classes: Annotated[
        str, typer.Option(help="Comma-separated subset of fight,shooting,fire,normal.")
    ] = "fight,shooting,fire,normal",
    background: Annotated[
        Path | None, typer.Option(help="A real video to paste the scenes onto.")
    ] = None,
    family: Annotated[
        str,
        typer.Option(
            help="default, or controlled: clip N of every class shares its whole scene, so "
            "only the anomaly tells the classes apart (a fair test of explanations)."
        ),
    ] = "default",
) -> None:
    """Generate synthetic surveillance clips with pixel-exact anomaly masks."""
    from vadx.data.synth import SynthConfig, generate

    counts = int_list("--clips", clips)
    if len(counts) != 3:
        raise VadxError(f"--clips takes three counts (train,val,test), got {clips!r}")
    writable_path(out, "OUT")
    config = SynthConfig(
        clips=counts,  # type: ignore[arg-type]
        num_frames=frames,
        size=(size, size),
        fps=fps,
        seed=seed,
        background=None if background is None else str(background),
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
        family=family,
    )
    with progress_bar("rendering clips") as advance:
        manifest = generate(out, config, progress=advance)
    console.print(f"wrote {sum(counts) * len(config.classes)} clips to {out} ({manifest.name})")


def probe(
    video: Annotated[Path, typer.Argument(help="A video file or a folder of frame images.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Describe a video: frames, frame rate, duration, size, codec, rotation."""
    from dataclasses import asdict

    from vadx.video import probe as probe_video

    info = asdict(probe_video(video))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(show_header=False)
    for key, value in info.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def import_boxes_command(
    annotations: Annotated[
        Path,
        typer.Argument(help="A CVAT for video 1.1 export (.xml) or a box CSV (.csv)."),
    ],
    video: Annotated[Path, typer.Argument(help="The video the boxes were drawn on.")],
    labels: Annotated[
        str | None,
        typer.Option(help="Comma-separated labels whose shapes make the masks (default: all)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the masks (default: <video stem>.masks.npz beside it)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace masks that exist.")] = False,
) -> None:
    """Turn annotated boxes into the per-frame masks vadx reads beside a video: xai-eval then
    scores how well the maps point at them (pointing game, energy, IoU)."""
    from vadx.data.annotations import import_boxes, mask_sidecar

    target = out if out is not None else mask_sidecar(video)
    writable_path(target, "--out", folder=False)
    names = None if labels is None else [n.strip() for n in labels.split(",") if n.strip()]
    path, frame_labels = import_boxes(annotations, video, out, names, force)
    console.print(
        f"masks of {len(frame_labels)} frames ({int(frame_labels.sum())} with a shape) "
        f"written to {path}",
        soft_wrap=True,
    )
