"""Reference inputs that stand for "this information removed", for perturbation methods.

All baselines live in the model's normalised input space, shape like the clip ``(B, T, 3, H, W)``:

* ``zeros`` — 0 after normalisation: the training data's mean colour (captum's default);
* ``black`` — black pixels (0 before normalisation);
* ``mean`` — the clip's mean frame over time: the static scene with movers smeared out;
* ``blur`` — each frame Gaussian-blurred (σ = 1/16 of the frame side): coarse layout kept,
  detail removed;
* ``previous`` — frame t−1 ("nothing new happened"; the first frame uses the second).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vadx.explain.base import check_choice
from vadx.explain.protocol import ExplainableModel

BASELINES = ("zeros", "black", "mean", "blur", "previous")


def baseline_clip(model: ExplainableModel, clip: torch.Tensor, kind: str) -> torch.Tensor:
    """The baseline ``kind`` for ``clip`` ``(B, T, 3, H, W)``, same shape (see module doc)."""
    check_choice("baseline", kind, BASELINES)
    if kind == "zeros":
        return torch.zeros_like(clip)
    if kind == "black":
        mean = torch.tensor(model.config.mean, dtype=clip.dtype, device=clip.device)
        std = torch.tensor(model.config.std, dtype=clip.dtype, device=clip.device)
        return (-mean / std)[:, None, None].expand_as(clip).clone()
    if kind == "mean":
        return clip.mean(1, keepdim=True).expand_as(clip).clone()
    if kind == "blur":
        return gaussian_blur(clip, sigma=max(clip.shape[-2:]) / 16)
    if clip.shape[1] < 2:
        return clip.clone()
    return torch.cat([clip[:, 1:2], clip[:, :-1]], dim=1)


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the last two axes, reflecting at the borders."""
    shape = frames.shape
    flat = frames.reshape(-1, 1, *shape[-2:])
    radius_h, radius_w = (min(math.ceil(3 * sigma), side - 1) for side in shape[-2:])
    flat = F.pad(flat, (radius_w, radius_w, radius_h, radius_h), mode="reflect")
    flat = F.conv2d(flat, _gaussian(sigma, radius_w, frames).view(1, 1, 1, -1))
    flat = F.conv2d(flat, _gaussian(sigma, radius_h, frames).view(1, 1, -1, 1))
    return flat.reshape(shape)


def _gaussian(sigma: float, radius: int, like: torch.Tensor) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()
