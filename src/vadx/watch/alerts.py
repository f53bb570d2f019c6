"""Explanations of alerts, computed beside detection, never on the capture path.

Each started event's window is explained in a **separate process** (its own copy of the model,
one torch thread, a lower scheduling priority), so neither Python's GIL nor a CPU-hungry
explanation can hold up the capture thread or detection; results are saved under
``alerts/event-NNNNNN/``: ``strip.png`` (the frames with the first method's view above the
temporal-importance curves), ``explanation.npz`` + ``manifest.json`` (arrays, settings, the
event), optionally ``<method>.mp4``. Jobs wait in a bounded queue; when alerts come faster
than they can be explained, the newest are skipped and counted (the events are logged anyway).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vadx.explanations.clip import ExplainSettings, explain_clip, rendered
from vadx.models.crnn import CRNN
from vadx.render.figures import frame_strip
from vadx.video.encode import write_mp4, write_png
from vadx.watch.engine import Alert
from vadx.watch.sinks import EventRecord

#: where ``vadx watch`` puts each alert's explanation, under its output folder
ALERT_LAYOUT = "alerts/event-{number:06d}"
#: what an alert gets by default: LayerCAM, frame Shapley values, the reference's contour view
ALERT_SETTINGS = ExplainSettings(
    methods=("layercam",), temporal=("frame_shapley",), view="contour", timeline=False
)


@dataclass
class ExplainerStats:
    explained: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)
    last_error: str | None = None


class AlertExplainer:
    """Explains alerts in a worker process; ``done(alert_id, folder, record)`` is called (from
    a collector thread) with each finished explanation.

    Args:
        unwritten: called (from the collector thread) with the alert's number and the error
            when an explanation could not be written (an :class:`OSError`: the disk full…),
            instead of a warning line.
        failed: called (from the collector thread) with the alert's number and why, when
            explaining it failed otherwise (besides the warning line).
        niceness: added to the worker's scheduling niceness (POSIX), so capture and detection
            get the CPU first.
        layout: where each alert's explanation goes under ``folder`` (``{number}``: the alert's
            number).
    """

    def __init__(
        self,
        model: CRNN,
        folder: str | Path,
        settings: ExplainSettings = ALERT_SETTINGS,
        *,
        mp4: bool = False,
        capacity: int = 4,
        done: Callable[[int, Path, EventRecord], None] | None = None,
        unwritten: Callable[[int, OSError], None] | None = None,
        failed: Callable[[int, str], None] | None = None,
        niceness: int = 10,
        layout: str = ALERT_LAYOUT,
    ) -> None:
        self.folder = Path(folder)
        self.done = done
        self.unwritten = unwritten
        self.failed = failed
        self.stats = ExplainerStats()
        self._records: dict[int, EventRecord] = {}
        self.ready = threading.Event()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded torch process
        self._jobs = context.Queue(capacity)
        self._results = context.Queue()
        self._process = context.Process(
            target=_serve,
            name="vadx-explainer",
            daemon=True,
            args=(model, self.folder, settings, mp4, niceness, layout, self._jobs, self._results),
        )
        self._process.start()
        self._collector = threading.Thread(target=self._collect, name="vadx-explained", daemon=True)
        self._collector.start()

    def submit(self, number: int, alert: Alert, record: EventRecord) -> bool:
        """Queue ``alert`` (logged as ``number``, as ``record``); False when it was skipped."""
        if alert.window is None:
            self.stats.skipped += 1
            return False
        job = (
            number,
            alert.window,
            alert.window_frames,
            alert.window_fps,
            alert.event.class_name,
            record.to_json(),  # for the explanation's manifest
        )
        self._records[number] = record  # before its result can come back
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            del self._records[number]
            self.stats.skipped += 1
            return False
        return True

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until the worker has loaded (torch, the model); False if it did not."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if not self._process.is_alive() or time.monotonic() > deadline:
                return False
        return True

    def close(self, timeout: float = 120.0) -> None:
        """Finish the queued explanations (up to ``timeout`` s), then stop the worker."""
        with contextlib.suppress(queue.Full):
            self._jobs.put(None, timeout=timeout)
        self._collector.join(timeout)
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
        self._jobs.cancel_join_thread()

    def _collect(self) -> None:
        while True:
            try:
                message = self._results.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():  # it died: nothing more will come
                    self.stats.last_error = (
                        f"the explainer process exited (code {self._process.exitcode})"
                    )
                    return
                continue
            if message is None:
                return
            kind, number, value, seconds = message
            if kind == "ready":
                self.ready.set()
                continue
            record = self._records.pop(number, None)
            if kind == "failed":  # counted, and said: an operator must see it
                self.stats.failed += 1
                self.stats.last_error = text = _error_text(value)
                if isinstance(value, OSError) and self.unwritten is not None:
                    self.unwritten(number, value)
                else:
                    warnings.warn(f"explaining alert {number} failed: {text}", stacklevel=1)
                    if self.failed is not None:
                        try:
                            self.failed(number, text)
                        except Exception as err:  # a callback must not stop the collector
                            self.stats.last_error = f"{type(err).__name__}: {err}"
                continue
            self.stats.explained += 1
            self.stats.seconds.append(seconds)
            if self.done is not None and record is not None:
                try:
                    self.done(number, Path(value), record)
                except Exception as err:  # a callback must not stop the collector
                    self.stats.last_error = f"{type(err).__name__}: {err}"


def _serve(model, folder, settings, mp4, niceness, layout, jobs, results) -> None:
    """The worker process: explain jobs until ``None``."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    torch.set_num_threads(1)
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)
    model.eval()
    results.put(("ready", 0, "", 0.0))
    while (job := _next_job(jobs)) is not None:
        number, window, frames, fps, class_name, record = job
        began = time.perf_counter()
        try:
            out = write_alert(
                model,
                folder,
                settings,
                mp4=mp4,
                number=number,
                layout=layout,
                window=window,
                frames=frames,
                fps=fps,
                class_name=class_name,
                record=record,
            )
        except OSError as err:  # the disk (full, read-only…): the parent decides how to say it
            plain = OSError(err.errno, err.strerror, err.filename)  # a library's may not pickle
            results.put(("failed", number, plain if err.errno else _error_text(err), 0.0))
            continue
        except Exception as err:  # an explanation must never take detection down
            results.put(("failed", number, _error_text(err), 0.0))
            continue
        results.put(("done", number, str(out), time.perf_counter() - began))
    results.put(None)


def _next_job(jobs: Any) -> Any:
    """The next job; None when told to stop, or when the parent died (a SIGKILL runs none of
    its cleanup: the worker must not outlive it)."""
    parent = multiprocessing.parent_process()
    while parent is None or parent.is_alive():
        with contextlib.suppress(queue.Empty):
            return jobs.get(timeout=1.0)
    return None


def _error_text(error: BaseException | str) -> str:
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"


def write_alert(
    model: CRNN,
    folder: Path,
    settings: ExplainSettings,
    *,
    mp4: bool,
    number: int,
    layout: str = ALERT_LAYOUT,
    window: np.ndarray,
    frames: tuple[int, ...],
    fps: float,
    class_name: str,
    record: dict[str, Any],
) -> Path:
    """Explain an alert's ``window`` (uint8 frames) for ``class_name`` into
    ``folder/layout`` (by default ``folder/alerts/event-NNNNNN``)."""
    out = folder / layout.format(number=number)
    explained = explain_clip(model, window, frames, fps, settings, target=class_name)
    explanation = explained.explanation
    first = next(iter(explanation.maps))
    views = rendered(explained, first, settings.view, settings)
    curves = {f.display_name: f.scores[0] for f in explanation.temporal.values()}
    title = (
        f"event {number}: {class_name} · {explanation.maps[first].display_name} · "
        f"frames {frames[0]}–{frames[-1]}"
    )
    write_png(out / "strip.png", frame_strip(views, curves, frames, title))
    if mp4:
        for method in explanation.maps:
            shown = rendered(explained, method, settings.view, settings)
            write_mp4(out / f"{method}.mp4", shown, explained.fps)
    extra: dict[str, Any] = {
        "event": record,
        "clip_frames": list(frames),
        "clip_fps": explained.fps,
    }
    if settings.trust:  # each map's and curve's verdict on this window (docs/trust.md)
        from vadx.quality.trust import trust_check

        verdicts = trust_check(
            model, explanation, domain=explained.domain, picture=explained.geometry.picture()
        )
        extra["trust"] = {name: asdict(v.record()) for name, v in verdicts.items()}
    explanation.save(out, extra)
    return out


def alert_verdict(folder: Path) -> str | None:
    """The worst trust verdict of an alert's explanation in ``folder`` (None: not checked)."""
    from vadx.files import read_json
    from vadx.quality.trust import worst_verdict

    checked = read_json(folder / "manifest.json").get("trust") or {}
    return worst_verdict(v["verdict"] for v in checked.values())
