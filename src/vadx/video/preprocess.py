"""Frames (uint8 RGB ``(T, H, W, 3)``) to model input: resize, augment, normalise.

Three fits bring a frame to the model's size, and a model records which one it was trained
with (:attr:`vadx.models.CRNNConfig.fit`, ``"stretch"`` by default), so ``fit`` is always given
explicitly here: ``"stretch"`` resizes ignoring the aspect ratio (the reference's Keras
generator); ``"pad"`` keeps it by letter-boxing, the padding coloured with the ImageNet mean,
which normalises to ≈ 0; ``"crop"`` keeps it by cutting the edges away. :class:`Geometry`
records the mapping so maps computed on the model's frames can be put back onto the source
frames, and which of the model's pixels show the picture (:meth:`Geometry.picture`).

Augmentation follows the reference (brightness, horizontal flip, zoom) with **one random draw
per clip** applied to every frame (and to masks, when given), so motion stays coherent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from vadx.errors import InputError
from vadx.video.frames import check_frames

Fit = Literal["pad", "crop", "stretch"]
#: ImageNet mean as uint8 RGB: the padding colour, ≈ 0 after normalisation
PAD_COLOUR = (124, 116, 104)


@dataclass(frozen=True)
class Geometry:
    """How a source frame of ``source_size`` maps into a model frame of ``size`` (both H, W).

    The source's visible part, scaled by ``scale``, occupies ``size`` from ``(top, left)`` with
    extent ``(content_height, content_width)``; negative offsets mean a crop.
    """

    source_size: tuple[int, int]
    size: tuple[int, int]
    scale_y: float
    scale_x: float
    top: int
    left: int

    @property
    def content_size(self) -> tuple[int, int]:
        """``(H, W)`` the whole source occupies on the model frame, at least 1 px each (a
        2000×4 frame letter-boxed into 112² is a line, not nothing)."""
        return (
            max(1, round(self.source_size[0] * self.scale_y)),
            max(1, round(self.source_size[1] * self.scale_x)),
        )

    def picture(self) -> np.ndarray:
        """``(H, W)`` bool of the model frame: True where it shows the source, False on the
        letter-box padding (all True for ``crop`` and ``stretch``)."""
        height, width = self.size
        content_h, content_w = self.content_size
        mask = np.zeros((height, width), bool)
        mask[
            max(self.top, 0) : max(self.top + content_h, 0),
            max(self.left, 0) : max(self.left + content_w, 0),
        ] = True
        return mask

    def to_source(self, maps: np.ndarray) -> np.ndarray:
        """Resize float maps ``(..., H, W)`` on model frames back onto source frames."""
        maps = np.asarray(maps, dtype=np.float32)
        height, width = self.size
        src_h, src_w = self.source_size
        # the model-frame region the whole source occupies (may extend beyond it when cropped)
        content_h, content_w = self.content_size
        flat = maps.reshape(-1, height, width)
        out = np.zeros((len(flat), src_h, src_w), np.float32)
        for i, m in enumerate(flat):
            canvas = np.zeros((content_h, content_w), np.float32)
            y0, x0 = max(self.top, 0), max(self.left, 0)
            cy0, cx0 = y0 - self.top, x0 - self.left
            h = min(height - y0, content_h - cy0)
            w = min(width - x0, content_w - cx0)
            canvas[cy0 : cy0 + h, cx0 : cx0 + w] = m[y0 : y0 + h, x0 : x0 + w]
            out[i] = cv2.resize(canvas, (src_w, src_h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(*maps.shape[:-2], src_h, src_w)


def fit_frames(
    frames: np.ndarray, size: Sequence[int], fit: Fit, masks: np.ndarray | None = None
) -> tuple[np.ndarray, Geometry, np.ndarray | None]:
    """Resize uint8 frames ``(T, h, w, 3)`` to ``size = (H, W)``; masks ``(T, h, w)`` follow.

    Returns the frames, the :class:`Geometry`, and the resized masks (or None).
    """
    frames = check_frames(frames)
    height, width = (int(size[0]), int(size[1]))
    src_h, src_w = frames.shape[1:3]
    if fit == "stretch":
        scale_y, scale_x = height / src_h, width / src_w
    elif fit in ("pad", "crop"):
        choose = min if fit == "pad" else max
        scale_y = scale_x = choose(height / src_h, width / src_w)
    else:
        raise InputError(f"fit must be pad, crop or stretch, got {fit!r}")
    new_h, new_w = max(1, round(src_h * scale_y)), max(1, round(src_w * scale_x))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    geometry = Geometry((src_h, src_w), (height, width), scale_y, scale_x, top, left)
    interpolation = cv2.INTER_AREA if new_h * new_w < src_h * src_w else cv2.INTER_LINEAR
    out = np.empty((len(frames), height, width, 3), np.uint8)
    out[:] = PAD_COLOUR
    out_masks = None if masks is None else np.zeros((len(frames), height, width), bool)
    ys, xs = (
        slice(max(top, 0), max(top, 0) + min(new_h, height)),
        slice(max(left, 0), max(left, 0) + min(new_w, width)),
    )
    crop_y = slice(max(-top, 0), max(-top, 0) + min(new_h, height))
    crop_x = slice(max(-left, 0), max(-left, 0) + min(new_w, width))
    for t, frame in enumerate(frames):
        resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
        out[t, ys, xs] = resized[crop_y, crop_x]
        if out_masks is not None:
            mask = cv2.resize(
                masks[t].astype(np.uint8), (new_w, new_h), interpolation=cv2.INTER_NEAREST
            )
            out_masks[t, ys, xs] = mask[crop_y, crop_x] > 0
    return out, geometry, out_masks


@dataclass(frozen=True)
class AugmentDraw:
    """One random draw of :class:`Augment`, applied identically to every frame of a clip."""

    brightness: float
    flip: bool
    zoom: float


@dataclass(frozen=True)
class Augment:
    """The reference's augmentation: brightness, horizontal flip, zoom (one draw per clip).

    Attributes:
        brightness: pixel values are multiplied by a factor drawn in ``[1 - b, 1 + b]``.
        flip: probability of a horizontal flip.
        zoom: scale drawn in ``[1 - z, 1 + z]`` about the centre (> 1 zooms in; zooming out
            repeats the border pixels, like Keras' ``fill_mode="nearest"``).
    """

    brightness: float = 0.2
    flip: float = 0.5
    zoom: float = 0.2

    def __post_init__(self) -> None:
        if not (0 <= self.brightness < 1 and 0 <= self.flip <= 1 and 0 <= self.zoom < 1):
            raise InputError(
                "augmentation needs 0 ≤ brightness < 1, 0 ≤ flip ≤ 1 and 0 ≤ zoom < 1, got "
                f"{self.brightness}, {self.flip}, {self.zoom}"
            )

    def draw(self, rng: np.random.Generator) -> AugmentDraw:
        return AugmentDraw(
            brightness=float(rng.uniform(1 - self.brightness, 1 + self.brightness)),
            flip=bool(rng.random() < self.flip),
            zoom=float(rng.uniform(1 - self.zoom, 1 + self.zoom)),
        )

    def __call__(
        self,
        frames: np.ndarray,
        rng: np.random.Generator,
        masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return apply_augmentation(frames, self.draw(rng), masks)


def apply_augmentation(
    frames: np.ndarray, draw: AugmentDraw, masks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one draw to uint8 frames ``(T, H, W, 3)`` and boolean masks ``(T, H, W)``."""
    frames = check_frames(frames)
    height, width = frames.shape[1:3]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    sx = -draw.zoom if draw.flip else draw.zoom
    matrix = np.array([[sx, 0, cx - sx * cx], [0, draw.zoom, cy - draw.zoom * cy]], np.float32)
    identity = draw.zoom == 1.0 and not draw.flip
    out = np.empty_like(frames)
    out_masks = None if masks is None else np.empty(masks.shape, bool)
    for t, frame in enumerate(frames):
        if identity:
            warped = frame
        else:
            warped = cv2.warpAffine(
                frame,
                matrix,
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        out[t] = np.clip(warped.astype(np.float32) * draw.brightness, 0, 255).astype(np.uint8)
        if out_masks is not None:
            mask = masks[t].astype(np.uint8)
            if not identity:
                mask = cv2.warpAffine(
                    mask,
                    matrix,
                    (width, height),
                    flags=cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=0,
                )
            out_masks[t] = mask > 0
    return out, out_masks


def frames_to_clip(
    frames: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Normalise uint8 RGB frames ``(T, H, W, 3)`` into a float clip ``(T, 3, H, W)``.

    ``clip = (frames / 255 - mean) / std`` per channel.

    >>> frames_to_clip(np.full((1, 1, 1, 3), 255, np.uint8), (0.5,) * 3, (0.5,) * 3).flatten()
    tensor([1., 1., 1.])
    """
    tensor = torch.as_tensor(
        np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames
    )
    if tensor.dtype != torch.uint8 or tensor.dim() != 4 or tensor.shape[-1] != 3:
        raise InputError(
            f"expected uint8 RGB frames (T, H, W, 3), got {tuple(tensor.shape)} {tensor.dtype}"
        )
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (tensor.permute(0, 3, 1, 2).float() / 255.0 - mean_t) / std_t


def clip_to_frames(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`frames_to_clip`: uint8 RGB ``(T, H, W, 3)`` for display."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    values = (clip.detach().cpu().float() * std_t + mean_t).clamp(0, 1) * 255
    return values.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
