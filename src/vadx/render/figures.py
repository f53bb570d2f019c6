"""Composite pictures: grids (methods × frames, models × frames), contact sheets, and the frame
strip with the temporal-importance curves under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from vadx.errors import InputError
from vadx.render.plots import png_bytes

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    cv2.putText(
        image,
        text,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        INK,
        max(1, round(scale * 1.6)),
        cv2.LINE_AA,
    )


def _fit_height(frame: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(frame.shape[1] * height / frame.shape[0]))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def grid(
    rows: Sequence[tuple[str, np.ndarray]],
    column_labels: Sequence[str] | None = None,
    tile_height: int = 112,
    gap: int = 4,
) -> np.ndarray:
    """Rows of frames with a label on the left of each row: ``rows = [(label, (T, H, W, 3))]``.

    Rows may hold different numbers of frames (models with other clip lengths); frames keep
    their aspect ratio at ``tile_height``.
    """
    if not rows:
        raise InputError("a grid needs at least one row")
    scale = max(0.35, tile_height / 260)
    label_width = (
        max(cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for label, _ in rows)
        + 2 * gap
    )
    tiles = [[_fit_height(f, tile_height) for f in frames] for _, frames in rows]
    tile_width = max(t.shape[1] for row in tiles for t in row)
    columns = max(len(row) for row in tiles)
    header = round(tile_height * 0.22) if column_labels else 0
    height = header + len(rows) * (tile_height + gap) + gap
    width = label_width + columns * (tile_width + gap) + gap
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    for c, text in enumerate(column_labels or []):
        _text(canvas, text, (label_width + c * (tile_width + gap) + gap, header - 4), scale * 0.8)
    for r, ((label, _), row) in enumerate(zip(rows, tiles, strict=True)):
        top = header + gap + r * (tile_height + gap)
        _text(canvas, label, (gap, top + tile_height // 2 + 5), scale)
        for c, tile in enumerate(row):
            left = label_width + gap + c * (tile_width + gap)
            canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return canvas


def contact_sheet(
    frames: np.ndarray, labels: Sequence[str], columns: int = 5, tile_height: int = 160
) -> np.ndarray:
    """All frames in a ``columns``-wide sheet, each captioned (e.g. with its frame number)."""
    if len(frames) != len(labels):
        raise InputError(f"{len(frames)} frames but {len(labels)} labels")
    tiles = []
    for frame, label in zip(frames, labels, strict=True):
        tile = _fit_height(frame, tile_height)
        band = np.full((round(tile_height * 0.16), tile.shape[1], 3), BACKGROUND, np.uint8)
        _text(band, label, (3, band.shape[0] - 5), max(0.35, tile_height / 400))
        tiles.append(np.concatenate([band, tile]))
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    blank = np.full_like(tiles[0], 255)
    lines = [np.concatenate([*row, *[blank] * (columns - len(row))], axis=1) for row in rows]
    return np.concatenate(lines, axis=0)


def frame_strip(
    frames: np.ndarray,
    importance: Mapping[str, np.ndarray],
    frame_numbers: Sequence[int],
    title: str = "",
) -> np.ndarray:
    """Thumbnails of the frames above one curve per temporal estimator (each scaled to its own
    largest magnitude, named in the legend), frame by frame. Returns an RGB image."""
    from matplotlib.figure import Figure

    steps = len(frames)
    thumbs = np.concatenate([_fit_height(f, 96) for f in frames], axis=1)
    width = max(6.0, steps * 0.75)
    # thumbnails keep their aspect: each spans 1/steps of the plot's width (≈ 85 % of the figure)
    strip_height = 0.85 * width / steps * frames.shape[1] / frames.shape[2]
    figure = Figure(figsize=(width, strip_height + 2.4), layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=(strip_height, 2.0))
    top.imshow(thumbs, extent=(-0.5, steps - 0.5, 0, 1), aspect="auto")
    top.set_axis_off()
    if title:
        top.set_title(title, fontsize=9)
    positions = np.arange(steps)
    for name, scores in importance.items():
        scores = np.asarray(scores, dtype=np.float64)
        peak = np.abs(scores).max()
        bottom.plot(
            positions, scores / peak if peak > 0 else scores, marker="o", ms=3, lw=1.4, label=name
        )
    bottom.axhline(0, color="0.6", lw=0.6)
    bottom.set_xlim(-0.5, steps - 0.5)
    step = max(1, steps // 10)
    bottom.set_xticks(positions[::step], [str(n) for n in list(frame_numbers)[::step]])
    bottom.set_xlabel("frame")
    bottom.set_ylabel("importance (÷ max)")
    bottom.legend(fontsize=7, loc="upper left")
    bottom.grid(alpha=0.3)
    data = np.frombuffer(png_bytes(figure, dpi=110), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
