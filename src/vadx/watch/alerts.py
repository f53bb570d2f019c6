"""Explanations of alerts, computed beside detection, never on the capture path.

Each started event's window is explained by its own copy of the model in a background thread
(a shared model would see the explainer's hooks during detection) and saved under
``alerts/event-NNNNNN/``: ``strip.png`` (the frames with the first method's view above the
temporal-importance curves), ``explanation.npz`` + ``manifest.json`` (arrays, settings, the
event), optionally ``<method>.mp4``. Jobs wait in a bounded queue; when alerts come faster
than they can be explained, the newest are skipped and counted (the events are logged anyway).
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadx.explain_video import ExplainSettings, explain_clip, rendered
from vadx.models.crnn import CRNN
from vadx.render.figures import frame_strip
from vadx.video.encode import write_mp4, write_png
from vadx.watch.engine import Alert

#: what an alert gets by default: Grad-CAM, frame occlusion, the reference's contour view
ALERT_SETTINGS = ExplainSettings(methods=("gradcam",), temporal=("frame_occlusion",),
                                 view="contour", timeline=False)  # fmt: skip


@dataclass
class ExplainerStats:
    explained: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)
    last_error: str | None = None


class AlertExplainer:
    """Explains alerts in a background thread; ``done(alert_id, folder, record)`` is called
    with each finished explanation."""

    def __init__(
        self,
        model: CRNN,
        folder: str | Path,
        settings: ExplainSettings = ALERT_SETTINGS,
        mp4: bool = False,
        capacity: int = 4,
        done: Callable[[int, Path, dict[str, Any]], None] | None = None,
    ) -> None:
        self.model = copy.deepcopy(model).eval()
        self.folder = Path(folder)
        self.settings, self.mp4, self.done = settings, mp4, done
        self.stats = ExplainerStats()
        self._queue: queue.Queue[tuple[int, Alert, dict[str, Any]] | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="vadx-explainer", daemon=True)
        self._thread.start()

    def submit(self, number: int, alert: Alert, record: dict[str, Any]) -> bool:
        """Queue ``alert`` (logged as ``number``); False when it was skipped."""
        if alert.clip is None:
            self.stats.skipped += 1
            return False
        try:
            self._queue.put_nowait((number, alert, record))
        except queue.Full:
            self.stats.skipped += 1
            return False
        return True

    def close(self, timeout: float = 120.0) -> None:
        """Finish the queued explanations (up to ``timeout`` s), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            number, alert, record = job
            began = time.perf_counter()
            try:
                folder = self.write(number, alert, record)
                self.stats.seconds.append(time.perf_counter() - began)
                self.stats.explained += 1
                if self.done is not None:
                    self.done(number, folder, record)
            except Exception as err:  # an explanation must never take detection down
                self.stats.failed += 1
                self.stats.last_error = f"{type(err).__name__}: {err}"

    def write(self, number: int, alert: Alert, record: dict[str, Any]) -> Path:
        """Explain ``alert``'s clip for its class into ``alerts/event-NNNNNN``."""
        assert alert.clip is not None
        out = self.folder / "alerts" / f"event-{number:06d}"
        s = self.settings
        clip = explain_clip(self.model, alert.clip, alert.clip_frames, alert.clip_fps, s,
                            target=alert.event.class_name)  # fmt: skip
        e = clip.explanation
        first = next(iter(e.maps))
        frames = rendered(clip, first, s.view, s)
        curves = {f.display_name: f.scores[0] for f in e.temporal.values()}
        title = (f"event {number}: {alert.event.class_name} · {e.maps[first].display_name} · "
                 f"frames {alert.clip_frames[0]}–{alert.clip_frames[-1]}")  # fmt: skip
        write_png(out / "strip.png", frame_strip(frames, curves, alert.clip_frames, title))
        if self.mp4:
            for method in e.maps:
                write_mp4(out / f"{method}.mp4", rendered(clip, method, s.view, s), clip.fps)
        e.save(out, {"event": record, "clip_frames": list(alert.clip_frames),
                     "clip_fps": clip.fps})  # fmt: skip
        return out
