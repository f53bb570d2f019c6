"""A batch of videos (:mod:`vadx.batch`) run for ``detect`` and ``explain``, and told: bars
or lines while it runs, a summary after."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import typer

from vadx.cli.boundary import Stopped
from vadx.cli.common import console, err_console, ranks, say
from vadx.errors import VadxError

if TYPE_CHECKING:
    from vadx.batch.records import VideoRecord


def run_as_batch(model_path, videos, list_file, out, job, force, check=None, load=None) -> None:
    """Run a batch (:mod:`vadx.batch`) and say what it did; under torchrun, as one rank.
    ``load`` reads the model (default: a classifier's checkpoint)."""
    from vadx import distributed
    from vadx.batch import gather_videos, run_batch
    from vadx.models import load_model

    found = gather_videos(videos or [], None if list_file is None else str(list_file), out)
    loaded = (load or load_model)(model_path)
    if check is not None:
        check(loaded)
    with ranks() as rank:
        world = distributed.world_size()
        who = f"rank {rank}: " if world > 1 else ""
        bars = world == 1 and err_console.is_terminal
        finished: list[str] = []

        def tell(record: VideoRecord, done: int, total: int) -> None:
            finished.append(record.video)
            on_video(record, done, total)

        with _batch_progress(bars, who) as (progress, on_video):
            try:
                result = run_batch(
                    loaded, found, out, job, force=force, progress=progress, on_video=tell
                )
            except Stopped:
                err_console.print(
                    f"note: {who}the {len(finished)} video(s) finished before the stop are kept "
                    f"in {out}/videos; run the same command again to do the rest",
                    soft_wrap=True,
                    markup=False,
                )
                raise
    if rank != 0:
        if result.failed:
            raise typer.Exit(2)  # rank 0 says why
        return
    failed = result.failed
    with_events = sum(1 for r in result.records if r.events)
    console.print(
        f"{len(result.records)} video(s): {len(result.processed)} processed now"
        f"{f' by {world} processes' if world > 1 else ''}, {len(result.skipped)} already complete "
        f"(skipped), {len(failed)} failed; {result.events} event(s) in {with_events} video(s)",
        soft_wrap=True,
    )
    console.print(f"wrote {out}/index.html, events.csv, events.jsonl, videos.csv", soft_wrap=True)
    if failed:
        names = ", ".join(r.video for r in failed[:3]) + (", …" if len(failed) > 3 else "")
        raise VadxError(
            f"{len(failed)} of {len(result.records)} videos failed ({names}): "
            f"their errors are in {out}/videos.csv; fix them and run again to "
            "redo only those"
        )


@contextlib.contextmanager
def _batch_progress(bars: bool, who: str):
    """``(progress, on_video)`` of a batch: two bars (videos, and the stage of the video in
    progress) on a terminal; else one line per video (logs, several processes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not bars) as bar:
        videos = bar.add_task("videos", total=None)
        stage = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(stage, completed=done, total=total, description=f"  {name}")

        def on_video(record: VideoRecord, done: int, total: int) -> None:
            name = record.video
            bar.update(videos, completed=done, total=total, description=f"videos ({name})")
            if record.status != "ok":
                say("warning: ", "bold yellow", f"{who}{name} failed: {record.error}")
            elif not bars:
                events = len(record.events)
                err_console.print(
                    f"{who}{done}/{total} {name}: {events} event(s)",
                    soft_wrap=True,
                    markup=False,
                    highlight=False,
                )

        yield progress, on_video
