"""From raw attributions to maps a person can look at, without losing which frame mattered.

Display maps are raw maps upsampled to the frame (bilinear, pixel centres aligned), taken by
magnitude for signed methods, then scaled by one of three **normalisations**:

* ``clip`` (default) — divided by the largest value over the whole clip ``(T, H, W)``: the
  hottest frame reaches 1 and a frame the model ignored stays dark;
* ``frame`` — divided by each frame's own maximum: every frame peaks at 1.0, so *which frame
  mattered is lost* (what pytorch-grad-cam and torch-cam do); for looking at detail only;
* ``none`` — magnitudes as computed.

Raw maps are always kept beside the display maps.

>>> import torch
>>> maps = torch.tensor([[[[1.0, 0.0]], [[4.0, 2.0]]]])  # (B=1, T=2, h=1, w=2)
>>> display(maps, "clip").tolist()
[[[[0.25, 0.0]], [[1.0, 0.5]]]]
>>> display(maps, "frame").tolist()
[[[[1.0, 0.0]], [[1.0, 0.5]]]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vadx.catalogue import NORMALISATIONS, Normalisation
from vadx.explain.base import check_choice


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``(B, T, h, w) → (B, T, H, W)`` bilinear with aligned pixel centres (no shift)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    batch, steps = maps.shape[:2]
    flat = maps.reshape(batch * steps, 1, *maps.shape[-2:])
    resized = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return resized.reshape(batch, steps, *size)


def magnitude(
    maps: torch.Tensor, size: Sequence[int] | None = None, signed: bool = False
) -> torch.Tensor:
    """Raw maps upsampled to the frame, by magnitude (``|x|`` if signed, else ``max(x, 0)``)."""
    shown = upsample(maps, size) if size is not None else maps
    return shown.abs() if signed else shown.clamp(min=0)


def display(
    maps: torch.Tensor,
    normalisation: Normalisation = "clip",
    *,
    size: Sequence[int] | None = None,
    signed: bool = False,
    picture: torch.Tensor | None = None,
) -> torch.Tensor:
    """Display maps in ``[0, 1]`` (``none``: unscaled) from raw maps ``(B, T, h, w)``.

    ``picture`` ``(B, H, W)`` (or ``(H, W)``) marks the model frame's pixels that show the
    video (1) and the letter-box padding preprocessing added (0): padding is set to 0 before
    normalising, so no display map peaks — or shows anything — where the video has no picture.
    """
    check_choice("normalisation", normalisation, NORMALISATIONS)
    shown = magnitude(maps, size, signed)
    if picture is not None:
        shown = shown * _per_video(picture, shown)
    if normalisation == "none":
        return shown
    axes = (1, 2, 3) if normalisation == "clip" else (2, 3)
    peak = shown.amax(axes, keepdim=True)
    return torch.where(peak > 0, shown / peak.clamp(min=torch.finfo(shown.dtype).tiny), 0.0)


def frame_scores(maps: torch.Tensor) -> torch.Tensor:
    """Each frame's total attribution ``(B, T)``: the un-normalised mass of its map."""
    return maps.sum((-2, -1))


def off_picture_share(
    maps: torch.Tensor, picture: torch.Tensor, size: Sequence[int], signed: bool = False
) -> torch.Tensor:
    """``(B,)`` share of each clip's raw attribution magnitude that fell on padding, not on
    the picture (``picture`` as in :func:`display`; 0 when a clip's map is all zero).

    >>> maps = torch.tensor([[[[1.0, 3.0]]]])                    # one frame, 1×2
    >>> off_picture_share(maps, torch.tensor([[True, False]]), (1, 2)).tolist()
    [0.75]
    """
    shown = magnitude(maps, size, signed)
    total = shown.sum((1, 2, 3))
    outside = (shown * (1 - _per_video(picture, shown))).sum((1, 2, 3))
    return torch.where(total > 0, outside / total.clamp(min=torch.finfo(shown.dtype).tiny), 0.0)


def _per_video(picture: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``picture`` as a float mask broadcasting over ``maps`` ``(B, T, H, W)``."""
    mask = picture.to(device=maps.device, dtype=maps.dtype)
    if mask.shape[-2:] != maps.shape[-2:]:
        raise ValueError(
            f"the picture mask is {tuple(mask.shape[-2:])}, the maps {tuple(maps.shape[-2:])}"
        )
    return mask.reshape(-1, 1, *mask.shape[-2:]) if mask.dim() == 3 else mask
