"""The command that shows the whole system on built-in defaults: demo."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from vadx.cli.common import console, err_console, int_list, number, training_progress
from vadx.errors import VadxError
from vadx.files import writable_path


def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo's outputs.")] = Path(
        "demo-out"
    ),
    epochs: Annotated[int | None, number("Training epochs (default: 25).", 1, 100_000)] = None,
    clips: Annotated[
        str | None,
        typer.Option(help="Clips per class in train,val,test (default: 96,24,32)."),
    ] = None,
) -> None:
    """The whole system on built-in defaults: synthesise, train, evaluate, detect, explain.

    Runs offline on a CPU in about 10 minutes; run it again to continue where it stopped.
    """
    from vadx.demo import DemoSettings, run_demo

    writable_path(out, "--out")
    settings = DemoSettings()
    if epochs is not None:
        settings = replace(settings, epochs=epochs)
    if clips is not None:
        counts = int_list("--clips", clips)
        if len(counts) != 3 or min(counts) < 1:
            raise VadxError(
                f"--clips takes three counts of at least 1 (train,val,test), got {clips!r}"
            )
        settings = replace(settings, clips=counts)  # type: ignore[arg-type]
    with training_progress() as progress:
        summary = run_demo(
            out, settings, say=lambda text: err_console.print(text), progress=progress
        )
    console.rule("vadx demo")
    console.print(
        f"test accuracy {summary.test_accuracy:.1%} (macro-F1 {summary.test_macro_f1:.3f}) "
        f"after {summary.epochs_run} epochs"
    )
    for match in summary.matches:
        if match.found:
            console.print(
                f"  {match.class_name:<9} frames {match.start}–{match.end}: found at "
                f"{match.detected_start}–{match.detected_end}"
                + ("" if match.within_tolerance else " (boundaries off by more than a window)")
            )
        else:
            console.print(f"  {match.class_name:<9} frames {match.start}–{match.end}: missed")
    extra = len(summary.detected_events) - summary.events_found
    console.print(f"  {max(extra, 0)} other detected event(s)")
    for name, path in summary.paths.items():
        console.print(f"{name:>11}: {path}")
    for report in summary.reports:
        console.print(f"     report: {report}", soft_wrap=True)
    console.print(f"    summary: {out / 'summary.json'}")
    real = summary.real_footage
    said = (
        f" On real street footage ({Path(real.path).name}) the domain check flags "
        f"{real.domain['share_outside']:.0%} of the windows as outside its domain."
        if real and real.domain.get("checked")
        else ""
    )
    console.print(
        f"[bold]This demo model knows synthetic scenes only.[/]{said} To detect anomalies in real "
        "video, train on your own footage: docs/domain.md.",
        soft_wrap=True,
    )
