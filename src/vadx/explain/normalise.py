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

from vadx.explain.base import check_choice

NORMALISATIONS = ("clip", "frame", "none")


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``(B, T, h, w) → (B, T, H, W)`` bilinear with aligned pixel centres (no shift)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    batch, steps = maps.shape[:2]
    flat = maps.reshape(batch * steps, 1, *maps.shape[-2:])
    resized = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return resized.reshape(batch, steps, *size)


def display(
    maps: torch.Tensor,
    normalisation: str = "clip",
    size: Sequence[int] | None = None,
    signed: bool = False,
) -> torch.Tensor:
    """Display maps in ``[0, 1]`` (``none``: unscaled) from raw maps ``(B, T, h, w)``."""
    check_choice("normalisation", normalisation, NORMALISATIONS)
    shown = upsample(maps, size) if size is not None else maps
    shown = shown.abs() if signed else shown.clamp(min=0)
    if normalisation == "none":
        return shown
    axes = (1, 2, 3) if normalisation == "clip" else (2, 3)
    peak = shown.amax(axes, keepdim=True)
    return torch.where(peak > 0, shown / peak.clamp(min=torch.finfo(shown.dtype).tiny), 0.0)


def frame_scores(maps: torch.Tensor) -> torch.Tensor:
    """Each frame's total attribution ``(B, T)``: the un-normalised mass of its map."""
    return maps.sum((-2, -1))
