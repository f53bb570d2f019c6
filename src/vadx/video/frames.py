"""The one check every frame consumer makes: uint8 RGB ``(T, H, W, 3)``."""

from __future__ import annotations

import numpy as np

from vadx.errors import InputError


def check_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` as a contiguous uint8 ``(T, H, W, 3)`` array (one ``(H, W, 3)`` frame is
    promoted), or a clear :class:`InputError`."""
    frames = np.asarray(frames)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise InputError(
            f"expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    return np.ascontiguousarray(frames)
