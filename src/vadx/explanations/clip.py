"""The clip layer: what to explain and how to draw it (:class:`ExplainSettings`), and one
explained clip of a video (:class:`ClipExplanation`, made by :func:`explain_clip`, drawn on its
frames by :func:`rendered`) — the data that :mod:`vadx.explanations.video` writes and
:mod:`vadx.explanations.report` draws, neither depending on the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from vadx.catalogue import NORMALISATIONS, WEIGHTINGS, Normalisation, Weighting
from vadx.detect.domain import check_clip
from vadx.errors import InputError
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL, Explanation, explain
from vadx.explain.base import check_choice
from vadx.explain.engine import MethodOptions
from vadx.models.crnn import CRNN
from vadx.progress import ProgressFn
from vadx.render.overlay import COLORMAPS, VIEWS, class_label, label_frame, render
from vadx.settings import EXPORTS, WINDOW_MODES, Export, WindowMode
from vadx.video.decode import VideoInfo, VideoReader
from vadx.video.preprocess import Geometry, fit_frames, frames_to_clip
from vadx.video.sampling import even_indices

#: the window modes of :func:`vadx.explanations.video.explain_video` (its ``windows``)
WINDOWS = WINDOW_MODES
__all__ = [
    "EXPORTS",
    "WINDOWS",
    "ClipExplanation",
    "ExplainSettings",
    "Export",
    "ProgressFn",
    "WindowMode",
    "clip_indices",
    "explain_clip",
    "explain_frames",
    "parse_target",
    "rendered",
]


def parse_target(text: str) -> str | int:
    """A target as a person types it: a class index when it is at most 18 ASCII digits ("²"
    is not one, and 4,300 digits are more than Python reads as an int), else the name as it
    is (``predicted``, ``anomaly``, a class: an unknown one is refused by name later)."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else text


@dataclass(frozen=True)
class ExplainSettings:
    """What to explain and how to draw it (see :func:`vadx.explain.explain` for the first six).

    Attributes:
        view: how maps are drawn on frames: ``heatmap``, ``contour`` (the reference's) or
            ``contours`` (iso-lines at 25/50/75 %).
        colormap, opacity: of the heat maps.
        timeline: run detection over the whole video for the report's anomaly-score timeline.
        quality: score the clip's explanations (deletion/insertion AUCs beside random orders,
            :mod:`vadx.quality.faithfulness`) and show them in the report.
        trust: give every map and frame curve its trust verdict (trustworthy / weak /
            contradictory, with reasons: :mod:`vadx.quality.trust`), in the manifest, the
            summary and the report.
        exports: pictures to render besides the report, of :data:`EXPORTS`.
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    temporal: tuple[str, ...] = DEFAULT_TEMPORAL
    target: str | int | None = None
    layer: str | None = None
    weighting: Weighting = "frame"
    normalisation: Normalisation = "clip"
    options: MethodOptions = field(default_factory=dict)
    view: str = "heatmap"
    colormap: str = "jet"
    opacity: float = 0.5
    timeline: bool = True
    quality: bool = False
    trust: bool = False
    exports: tuple[Export, ...] = ()

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise InputError(f"unknown view {self.view!r}; choose from {', '.join(VIEWS)}")
        if self.colormap not in COLORMAPS:
            raise InputError(
                f"unknown colormap {self.colormap!r}; choose from {', '.join(COLORMAPS)}"
            )
        if not 0.0 <= self.opacity <= 1.0:
            raise InputError(f"opacity must be between 0 and 1, got {self.opacity}")
        check_choice("weighting", self.weighting, WEIGHTINGS)
        check_choice("normalisation", self.normalisation, NORMALISATIONS)
        if not self.methods:
            raise InputError("give at least one explanation method")
        for names, known, kind in (
            (self.methods, METHODS, "method"),
            (self.temporal, TEMPORAL, "temporal estimator"),
            (self.exports, EXPORTS, "export"),
        ):
            for name in names:
                if name not in known:
                    raise InputError(f"unknown {kind} {name!r}; choose from {', '.join(known)}")

    def to_json(self) -> dict[str, Any]:
        """The settings as the files record them (``summary.json``, a batch's settings):
        every field by name, each method's options as a plain mapping."""
        document = asdict(self)
        document["options"] = {k: dict(v) for k, v in self.options.items()}
        return document


@dataclass(frozen=True)
class ClipExplanation:
    """One explained clip of a video, with what is needed to draw it on the source frames."""

    explanation: Explanation
    indices: np.ndarray
    frames: np.ndarray  # (T, h, w, 3) uint8 source frames
    maps: dict[str, np.ndarray]  # method → (T, h, w) display maps on the source frames
    geometry: Geometry
    fps: float
    #: the clip's domain check (:func:`vadx.detect.domain.check_clip`)
    domain: Mapping[str, Any] = field(default_factory=lambda: {"checked": False})

    @property
    def predicted(self) -> tuple[str, float]:
        """The clip's most probable class and its probability."""
        e = self.explanation
        best = int(e.probabilities[0].argmax())
        return e.class_names[best], float(e.probabilities[0, best])


def clip_indices(info: VideoInfo, steps: int, start: int | None, end: int | None) -> np.ndarray:
    """``steps`` frame indices spread evenly over ``[start, end]`` (default: the whole video)."""
    first = 0 if start is None else start
    last = info.num_frames - 1 if end is None else end
    if first > last:
        raise InputError(
            f"{{end}} {last} is before {{start}} {first} (video {info.path})", "end", "start"
        )
    if not 0 <= first <= last < info.num_frames:
        raise InputError(
            f"frame span {first}–{last} is not inside {info.path}: it has {info.num_frames} "
            f"frames (0–{info.num_frames - 1})"
        )
    return even_indices(info.num_frames, steps, first, last + 1)


def explain_frames(
    model: CRNN,
    video: VideoReader,
    indices: np.ndarray,
    settings: ExplainSettings,
    target: str | int | None = None,
    progress: ProgressFn | None = None,
) -> ClipExplanation:
    """Explain the clip made of ``video``'s frames at ``indices``."""
    spacing = float(np.diff(indices).mean()) if len(indices) > 1 else 1.0
    return explain_clip(
        model,
        video.read(indices).data,
        indices,
        video.info.fps / max(spacing, 1.0),
        settings,
        target,
        progress,
    )


def explain_clip(
    model: CRNN,
    frames: np.ndarray,
    indices: Sequence[int] | np.ndarray,
    fps: float,
    settings: ExplainSettings,
    target: str | int | None = None,
    progress: ProgressFn | None = None,
) -> ClipExplanation:
    """Explain the clip made of uint8 source ``frames`` ``(T, h, w, 3)`` (numbered
    ``indices``, playing at ``fps``)."""
    config = model.config
    fitted, geometry, _ = fit_frames(frames, config.frame_size, config.fit)
    device = model.device
    clip = frames_to_clip(fitted, config.mean, config.std)[None].to(device)
    e = explain(
        model,
        clip,
        target if target is not None else settings.target,
        settings=settings,
        progress=progress,
        picture=torch.from_numpy(geometry.picture())[None],
    )
    maps = {name: geometry.to_source(a.display[0]) for name, a in e.maps.items()}
    return ClipExplanation(
        e, np.asarray(indices), frames, maps, geometry, fps, check_clip(model, clip)
    )


def rendered(
    explained: ClipExplanation, method: str, view: str, settings: ExplainSettings
) -> np.ndarray:
    """The clip's frames with ``method``'s map in ``view`` (in ``settings``' colours) and the
    "Class: NN%" label under each: ``(T, h + band, w, 3)`` uint8."""
    name, probability = explained.predicted
    text = class_label(name, probability)
    return np.stack(
        [
            label_frame(render(frame, value, view, settings.colormap, settings.opacity), text)
            for frame, value in zip(explained.frames, explained.maps[method], strict=True)
        ]
    )
