"""Frames (uint8 RGB ``(T, H, W, 3)``) to normalised clip tensors ``(T, 3, H, W)``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vadx.errors import InputError


def frames_to_clip(
    frames: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Normalise uint8 RGB frames ``(T, H, W, 3)`` into a float clip ``(T, 3, H, W)``.

    ``clip = (frames / 255 - mean) / std`` per channel.

    >>> frames_to_clip(np.full((1, 1, 1, 3), 255, np.uint8), (0.5,) * 3, (0.5,) * 3).flatten()
    tensor([1., 1., 1.])
    """
    tensor = torch.as_tensor(frames)
    if tensor.dtype != torch.uint8 or tensor.dim() != 4 or tensor.shape[-1] != 3:
        raise InputError(
            f"expected uint8 RGB frames (T, H, W, 3), got {tuple(tensor.shape)} {tensor.dtype}"
        )
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (tensor.permute(0, 3, 1, 2).float() / 255.0 - mean_t) / std_t
