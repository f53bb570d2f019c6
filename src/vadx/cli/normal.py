"""The command that learns a camera's normal from its own footage: learn-normal."""

from __future__ import annotations

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
        list[Path],
        typer.Argument(
            help="Videos of the camera's ordinary activity (no labels).", show_default=False
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
    size: Annotated[
        int | None, number("Frame side in pixels (default: the checkpoint's, else 224).", 32, 1024)
    ] = None,
    motion: Annotated[
        bool, typer.Option(help="Model each location's frame-to-frame change too.")
    ] = True,
    weights: Annotated[
        str | None, typer.Option(help="The backbone's weights: a file, a URL or 'imagenet'.")
    ] = None,
    seed: Annotated[int, number("Seed of the feature projection.", *limits.SEED)] = 0,
) -> None:
    """Learn a camera's normal from its own footage, without labels: then `vadx detect
    MODEL VIDEO` finds what is unusual for this camera, each frame's map showing where."""
    from vadx.normality import learn_normal, save_normality, source_backbone

    writable_path(out, "--out")
    frame_size = None if size is None else (size, size)
    backbone, config = source_backbone(
        source, weights, frame_size, channels=channels, motion=motion, seed=seed
    )
    with progress_bar("learning") as advance:
        model = learn_normal(
            backbone,
            footage,
            config,
            holdout=holdout,
            alarms_per_hour=alarms_per_hour,
            progress=lambda stage, d, t: advance(d, t, stage),
        )
    save_normality(model, out)
    c = model.calibration
    console.print(
        f"learnt the normal of {len(footage)} video(s) on a {model.grid[0]}×{model.grid[1]} grid; "
        f"threshold {model.threshold:.2f} ({c['held_back_alarms']} alarm(s) in "
        f"{c['held_back_seconds']:.0f} s held back); saved {out}",
        soft_wrap=True,
    )
