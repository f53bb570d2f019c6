"""Explanation maps drawn on frames: heat maps, the reference's contour view, multi-level contours.

Every function takes uint8 RGB frames ``(H, W, 3)`` and maps ``(H, W)`` of the same size with
values in ``[0, 1]`` (display maps of :mod:`vadx.explain`, brought to the frame's size by
:meth:`vadx.video.preprocess.Geometry.to_source`), and returns a new uint8 RGB frame.

* :func:`heatmap` — the map coloured by a colormap, blended over the frame at ``opacity``;
* :func:`contour` — the reference's view: the outline of the region above ``level`` drawn on
  the untouched frame (the scene stays readable; the intensity is lost);
* :func:`contours` — iso-lines at several levels (25/50/75 % by default), thicker and hotter in
  colour as the level rises: the intensity comes back, the scene stays readable.

>>> import numpy as np
>>> frame = np.zeros((8, 8, 3), np.uint8)
>>> hot = np.zeros((8, 8), np.float32); hot[2:6, 2:6] = 1.0
>>> heatmap(frame, hot, opacity=1.0)[3, 3].tolist(), heatmap(frame, hot, opacity=1.0)[0, 0].tolist()
([128, 0, 0], [0, 0, 128])
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vadx.errors import InputError

COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "hot": cv2.COLORMAP_HOT,
}
VIEWS = ("heatmap", "contour", "contours")
CONTOUR_LEVELS = (0.25, 0.5, 0.75)
#: the reference's contour colour (RGB)
CONTOUR_COLOUR = (255, 32, 32)


def check_map(frame: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` as float32 ``(H, W)`` matching ``frame`` ``(H, W, 3)`` uint8, or InputError."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"expected a uint8 RGB frame (H, W, 3), got {frame.shape} {frame.dtype}")
    value = np.asarray(value, dtype=np.float32)
    if value.shape != frame.shape[:2]:
        raise InputError(
            f"map of shape {value.shape} does not match the frame's {frame.shape[:2]}; bring "
            "maps to the frame with Geometry.to_source"
        )
    return np.nan_to_num(value, nan=0.0).clip(0.0, 1.0)


def colourise(value: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """``(H, W)`` values in [0, 1] → uint8 RGB ``(H, W, 3)`` through ``colormap``."""
    if colormap not in COLORMAPS:
        raise InputError(f"unknown colormap {colormap!r}; choose from {', '.join(COLORMAPS)}")
    scaled = np.round(np.clip(value, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def heatmap(
    frame: np.ndarray, value: np.ndarray, colormap: str = "jet", opacity: float = 0.5
) -> np.ndarray:
    """The map coloured and blended over the frame: ``(1 − opacity)·frame + opacity·colour``."""
    if not 0.0 <= opacity <= 1.0:
        raise InputError(f"opacity must be between 0 and 1, got {opacity}")
    colour = colourise(check_map(frame, value), colormap)
    return cv2.addWeighted(frame, 1.0 - opacity, colour, opacity, 0.0)


def _outline(frame: np.ndarray, value: np.ndarray, level: float, colour, thickness: int):
    mask = (value >= level).astype(np.uint8)
    found, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(frame, found, -1, tuple(int(c) for c in colour), thickness, cv2.LINE_AA)


def line_width(frame: np.ndarray) -> int:
    """A line width readable at the frame's size (1 px on 112², 3 px on 720p)."""
    return max(1, round(min(frame.shape[:2]) / 200))


def contour(
    frame: np.ndarray,
    value: np.ndarray,
    level: float = 0.5,
    colour: Sequence[int] = CONTOUR_COLOUR,
    thickness: int | None = None,
) -> np.ndarray:
    """The reference's contour view: where the map reaches ``level``, outlined on the frame."""
    out = frame.copy()
    _outline(out, check_map(frame, value), level, colour, thickness or line_width(frame))
    return out


def contours(
    frame: np.ndarray,
    value: np.ndarray,
    levels: Sequence[float] = CONTOUR_LEVELS,
    colormap: str = "jet",
    thickness: int | None = None,
) -> np.ndarray:
    """Iso-lines at ``levels``: higher levels drawn later, thicker, in hotter colours."""
    value = check_map(frame, value)
    out = frame.copy()
    base = thickness or line_width(frame)
    ordered = sorted(levels)
    palette = colourise(np.array([ordered], np.float32), colormap)[0]
    for rank, (level, colour) in enumerate(zip(ordered, palette, strict=True)):
        _outline(out, value, level, colour, base + rank)
    return out


def render(
    frame: np.ndarray,
    value: np.ndarray,
    view: str = "heatmap",
    colormap: str = "jet",
    opacity: float = 0.5,
) -> np.ndarray:
    """One of the three :data:`VIEWS` of ``value`` on ``frame``."""
    if view == "heatmap":
        return heatmap(frame, value, colormap, opacity)
    if view == "contour":
        return contour(frame, value)
    if view == "contours":
        return contours(frame, value, colormap=colormap)
    raise InputError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")


def band_height(width: int) -> int:
    """Rows of :func:`label_frame`'s band under a frame ``width`` pixels wide (even)."""
    return (int(22 * max(0.4, width / 640)) + 5) // 2 * 2


def label_frame(frame: np.ndarray, text: str, alert: bool = False) -> np.ndarray:
    """The reference's overlay, without hiding anything: the frame above a band with "Class:
    NN%" (an even number of rows, for video encoders), the band red on alert with a red
    border around the frame."""
    height, width = frame.shape[:2]
    scale = max(0.4, width / 640)
    band = band_height(width)
    colour = (200, 30, 30) if alert else (30, 30, 30)
    out = np.empty((height + band, width, 3), np.uint8)
    out[:height] = frame
    out[height:] = colour
    cv2.putText(
        out,
        text,
        (4, height + band - 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6 * scale,
        (255, 255, 255),
        max(1, round(scale)),
        cv2.LINE_AA,
    )
    if alert:
        cv2.rectangle(out, (0, 0), (width - 1, height - 1), (220, 0, 0), max(2, width // 100))
    return out


def class_label(name: str, probability: float) -> str:
    """``"Fight: 98%"`` — the reference's label."""
    return f"{name.capitalize()}: {probability:.0%}"
