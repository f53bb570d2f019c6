"""Per-frame ground truth: boolean anomaly masks ``(T, H, W)`` and frame labels ``(T,)``.

Two storage forms are read: a ``.npz`` file (what ``vadx synth`` writes: bit-packed masks, their
shape, and per-frame labels) and a folder of mask images, one per frame in file-name order
(UCSD Ped2's ``Test001_gt``; any non-zero pixel is anomalous).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vadx.errors import VadxError
from vadx.files import atomic_path
from vadx.video.decode import IMAGE_EXTENSIONS


class MaskError(VadxError):
    """Ground-truth masks are missing, unreadable or inconsistent with their video."""


def write_masks(path: str | os.PathLike[str], masks: np.ndarray, frame_labels: np.ndarray) -> Path:
    """Store boolean ``masks (T, H, W)`` and integer ``frame_labels (T,)`` as a compact ``.npz``."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or len(frame_labels) != len(masks):
        raise MaskError(f"masks must be (T, H, W) with T frame labels, got {masks.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            packed=np.packbits(masks, axis=-1),
            shape=np.asarray(masks.shape, np.int64),
            frame_labels=np.asarray(frame_labels, np.int64),
        )
    return Path(path)


def read_masks(
    source: str | os.PathLike[str], indices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(N, H, W)`` and frame labels ``(N,)`` (1 where the mask is not empty for image
    folders) of the frames at ``indices`` (all frames by default)."""
    source = Path(source)
    if not source.exists():
        raise MaskError(f"mask file or folder not found: {source}")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise MaskError(f"{source} holds no mask images")
        chosen = range(len(files)) if indices is None else indices
        _check_indices(source, chosen, len(files))
        masks = np.stack([_read_mask_image(files[int(i)]) for i in chosen])
        return masks, masks.reshape(len(masks), -1).any(1).astype(np.int64)
    try:
        with np.load(source) as data:
            shape = tuple(int(v) for v in data["shape"])
            packed, labels = data["packed"], data["frame_labels"]
    except (OSError, ValueError, KeyError) as err:
        raise MaskError(f"cannot read masks from {source}: {err}") from err
    chosen = np.arange(shape[0]) if indices is None else np.asarray(indices)
    _check_indices(source, chosen, shape[0])
    masks = np.unpackbits(packed[chosen], axis=-1, count=shape[2]).astype(bool)
    return masks, labels[chosen]


def _read_mask_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise MaskError(f"cannot read mask image {path}")
    return image > 0


def _check_indices(source: Path, indices, count: int) -> None:
    indices = np.asarray(list(indices) if isinstance(indices, range) else indices)
    if indices.size and (indices.min() < 0 or indices.max() >= count):
        raise MaskError(
            f"{source} has masks for {count} frames; frame {int(indices.max())} was asked for"
        )
