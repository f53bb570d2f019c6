"""Right for the right reasons: training terms that penalise attribution outside the masks.

Where training clips have masks (``vadx synth`` scenes, or boxes imported with
``vadx import-boxes``), two terms can be added to the cross-entropy, each with its weight:

* ``cam`` — **CAM alignment**: for each anomalous clip, LayerCAM at the backbone's last feature
  map ``A`` (what the sequence model reads), ``M = ReLU(Σ_c ReLU(∂y/∂A_c) · A_c)`` for the clip's
  true class ``y``, and the share of ``M``'s mass that lies outside the mask, over the frames
  whose mask is not empty. 0 when the map is all on the anomaly, 1 when all off it. The
  gradient is taken with ``create_graph``, so training moves the map itself (double
  backpropagation through the sequence model and the head). It works on cached maps (the
  ``cpu`` preset's frozen prefix) as on clips;
* ``input_gradient`` — Ross et al. 2017: the squared input gradient of the summed log
  probabilities, ``Σ_k log p_k``, summed over the pixels outside the mask of anomalous frames
  and divided by their count. It needs the pixels, so it does not work with the feature cache.

Normal clips (and frames without a mask) add nothing: there, the model may use what it likes.
The weights: :class:`vadx.train.config.ExplanationLoss`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: masks are kept at most this many cells per side (their coverage, pooled to the maps' grid)
MASK_CELLS = 32


def mask_coverage(masks: torch.Tensor) -> torch.Tensor:
    """Boolean masks ``(B, T, H, W)`` as the share of each cell they cover, on a grid of at most
    :data:`MASK_CELLS` per side ``(B, T, h, w)`` — small enough to cache beside maps."""
    size = (min(MASK_CELLS, masks.shape[-2]), min(MASK_CELLS, masks.shape[-1]))
    flat = masks.float().flatten(0, 1)[:, None]
    return F.adaptive_avg_pool2d(flat, size)[:, 0].unflatten(0, masks.shape[:2])


def cam_outside_share(
    maps: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    coverage: torch.Tensor,
    anomalous: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``cam`` term (module doc) and the logits ``head(maps)``.

    ``maps`` ``(B, T, C, h, w)``: the backbone's last feature maps, part of the graph;
    ``coverage`` ``(B, T, h', w')`` from :func:`mask_coverage`; ``anomalous`` ``(B,)`` bool:
    the clips the term applies to. The term is the mean over those clips with a mask."""
    logits = head(maps)
    if not bool(anomalous.any()):
        return logits.new_zeros(()), logits
    chosen = logits.gather(1, labels[:, None])[:, 0]
    (gradient,) = torch.autograd.grad(chosen[anomalous].sum(), maps, create_graph=True)
    cam = (gradient.relu() * maps).sum(2).relu()  # (B, T, h, w)
    inside = F.adaptive_max_pool2d(coverage.flatten(0, 1)[:, None], cam.shape[-2:])[:, 0]
    inside = inside.unflatten(0, cam.shape[:2]) > 0  # a cell holds the anomaly if it touches it
    frames = inside.flatten(2).any(-1) & anomalous[:, None]  # (B, T)
    weight = frames[..., None, None].to(cam.dtype)
    total = (cam * weight).sum((1, 2, 3))
    outside = (cam * weight * (~inside).to(cam.dtype)).sum((1, 2, 3))
    clips = frames.any(1)
    if not bool(clips.any()):
        return logits.new_zeros(()), logits
    total = torch.where(total > 0, total, torch.ones_like(total))  # no map: no share outside
    return (outside[clips] / total[clips]).mean(), logits


def input_gradient_penalty(
    forward: Callable[[torch.Tensor], torch.Tensor],
    clips: torch.Tensor,
    masks: torch.Tensor,
    anomalous: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``input_gradient`` term (module doc) and the logits ``forward(clips)``.

    ``clips`` ``(B, T, 3, H, W)``; ``masks`` ``(B, T, H, W)`` bool."""
    clips = clips.detach().requires_grad_(True)
    logits = forward(clips)
    if not bool(anomalous.any()):
        return logits.new_zeros(()), logits
    log_probabilities = logits.log_softmax(1).sum(1)
    (gradient,) = torch.autograd.grad(log_probabilities.sum(), clips, create_graph=True)
    frames = masks.flatten(2).any(-1) & anomalous[:, None]  # (B, T)
    outside = (~masks) & frames[..., None, None]
    count = outside.sum()
    if not bool(count):
        return logits.new_zeros(()), logits
    squared = gradient.pow(2).sum(2)  # (B, T, H, W)
    return (squared * outside.to(squared.dtype)).sum() / count, logits
