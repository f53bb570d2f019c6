"""Datasets: one Dataset for every layout, ground-truth masks, synthetic scenes."""

from vadx.data.dataset import (
    ClipBatch,
    ClipItem,
    VideoDataset,
    VideoSample,
    collate_clips,
    make_loader,
)
from vadx.data.layouts import (
    available_splits,
    folder_samples,
    frame_mask_samples,
    list_file_samples,
    read_temporal_annotations,
    temporal_samples,
)
from vadx.data.masks import MaskError, read_masks, write_masks

__all__ = [
    "ClipBatch",
    "ClipItem",
    "MaskError",
    "VideoDataset",
    "VideoSample",
    "available_splits",
    "collate_clips",
    "folder_samples",
    "frame_mask_samples",
    "list_file_samples",
    "make_loader",
    "read_masks",
    "read_temporal_annotations",
    "temporal_samples",
    "write_masks",
]
