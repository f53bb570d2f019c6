"""Live detection with a camera's normality model (``vadx learn-normal``): :class:`UnusualStream`.

Each frame's anomaly map and score come from the normality model as the frame arrives (its
motion statistics read the frame analysed before it); ``p(unusual)`` per frame (its score read
at the threshold, :meth:`~vadx.normality.NormalityModel.probability`),
then the same smoothing, hysteresis, shortest event and alerts as a classifier's stream
(:class:`~vadx.watch.engine.StreamDetector`), so the events equal
:func:`vadx.normality.detect_unusual`'s on the same frames. The windows are single frames.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vadx.detect import Event
from vadx.errors import InputError
from vadx.normality import CLASSES, FrameRun, NormalityModel, draw_map
from vadx.settings import DetectConfig
from vadx.watch.engine import (
    Alert,
    AlertFn,
    Decision,
    DecisionFn,
    FrameInfo,
    StreamDetector,
    WindowPlan,
)


class UnusualStream(StreamDetector):
    """:class:`~vadx.watch.engine.StreamDetector`'s contract with a normality model (module
    doc); ``config.domain`` does not apply (the model is the camera's own normal).

    A started event's window (``keep_clips``) carries the anomaly map of each of its frames
    (:attr:`~vadx.watch.engine.Alert.window_maps`), and :attr:`staged_maps` holds the maps of
    the frames last staged, for an engine that keeps footage with its maps."""

    signal = "normality"

    def __init__(
        self,
        model: NormalityModel,
        config: DetectConfig | None = None,
        *,
        on_alert: AlertFn | None = None,
        on_decision: DecisionFn | None = None,
        keep_clips: bool = False,
        ids: Iterator[int] | None = None,
    ) -> None:
        self.model = model  # type: ignore[assignment]
        self.config = config or DetectConfig()
        self.domain = None
        self.plan = WindowPlan(1, 1, 1)
        self.device = torch.device("cpu")
        self.on_alert, self.on_decision = on_alert, on_decision
        self.keep_clips = keep_clips
        self.windows_decided = 0
        self.cnn_frames = 0
        self.alerts = 0
        self.ids = ids or itertools.count(1)
        self.latest: float | None = None
        #: the anomaly maps ``(N, h, w)`` of the frames the last :meth:`stage` took
        self.staged_maps = np.zeros((0, *model.grid), np.float32)
        self.class_names, self.normal_class = CLASSES, "normal"
        self._new_segment()

    def _new_segment(self) -> None:
        super()._new_segment()
        self.scores: dict[int, float] = {}  # frame → its score, until decided
        self.run = FrameRun()  # the frames since the segment began, as the model reads them
        self.recent_maps: dict[int, np.ndarray] = {}  # with keep_clips: frame → its map

    def stage(self, frames: Sequence[np.ndarray], infos: Sequence[FrameInfo]) -> list[int]:
        """Take the frames and compute their maps at once (the model's own CNN: nothing for
        an engine to batch); returns no index."""
        if len(frames) != len(infos):
            raise InputError(f"{len(frames)} frames but {len(infos)} frame infos")
        if not frames:
            return []
        first = self.received
        for frame, info in zip(frames, infos, strict=True):
            self.infos[self.received] = info
            if self.keep_clips:
                self.recent[self.received] = frame
            self.received += 1
        stacked = np.stack(frames)
        analysed = self.run.analysed_frames
        maps = self.model.run_maps(stacked, self.run)
        self.staged_maps = maps
        if self.keep_clips:
            self.recent_maps.update(zip(range(first, self.received), maps, strict=True))
        values = self.model.frame_scores(maps).astype(np.float64)
        self.scores.update(zip(range(first, self.received), values.tolist(), strict=True))
        self.cnn_frames += self.run.analysed_frames - analysed
        return []

    def _compute_features(self, indices: list[int]) -> None:
        """Nothing: :meth:`stage` computed the maps."""

    def _decide(self, starts: list[int]) -> None:
        decided = time.monotonic()
        for start in starts:
            score = self.scores.pop(start)
            unusual = float(self.model.probability(score))
            row = np.array([unusual, 1 - unusual])
            self.tracker.add_window(start, row, None)
            self.window_rows.append((start, row))
            decision = Decision(
                self.windows_decided, self.infos[start], self.infos[start], row, unusual, decided
            )
            self.windows_decided += 1
            self.latest = unusual
            if self.on_decision is not None:
                self.on_decision(decision)

    def _with_window(self, alert: Alert, event: Event) -> Alert:
        """The kept frames around the event's start (the stream's windows are single frames:
        the event's first frames, as many as a normality map's motion needs, at least 8)."""
        frames = [i for i in range(event.start_frame, event.end_frame + 1) if i in self.recent]
        if not frames:
            return alert
        frames = frames[:8]
        infos = [self.infos[i] for i in frames]
        elapsed = infos[-1].time - infos[0].time
        fps = (len(infos) - 1) / elapsed if elapsed > 0 else 25.0
        return replace(
            alert,
            window=np.stack([self.recent[i] for i in frames]),
            window_frames=tuple(i.number for i in infos),
            window_times=tuple(i.time for i in infos),
            window_fps=fps,
            window_maps=np.stack([self.recent_maps[i] for i in frames]),
        )

    def _forget(self, final: int) -> None:
        super()._forget(final)
        for index in [i for i in self.recent_maps if i not in self.recent]:
            del self.recent_maps[index]


def write_maps(
    folder: str | os.PathLike[str],
    model: NormalityModel,
    frames: Sequence[np.ndarray],
    maps: np.ndarray,
    fps: float,
) -> None:
    """A normality event's anomaly maps over its frames, in ``folder``: ``map.mp4`` (every
    frame with its map, encoded as it is drawn; :func:`~vadx.normality.draw_map`) and its most
    unusual frame with its map as ``map.png`` and ``thumb.png``. Each file appears whole."""
    from vadx.video.encode import Mp4Writer, write_png

    if len(frames) != len(maps) or not len(frames):
        raise InputError(f"{len(maps)} maps for {len(frames)} frames")
    folder = Path(folder)
    peak = int(model.frame_scores(maps).argmax())
    with Mp4Writer(folder / "map.mp4", max(fps, 1.0), frames[0].shape[:2]) as mp4:
        for frame, cells in zip(frames, maps, strict=True):
            mp4.write(draw_map(model, frame, cells))
    drawn = draw_map(model, frames[peak], maps[peak])
    write_png(folder / "map.png", drawn)
    write_png(folder / "thumb.png", drawn)


__all__ = ["UnusualStream", "write_maps"]
