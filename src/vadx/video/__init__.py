"""Video input and output: decoding, encoding, clip sampling, preprocessing, augmentation."""

from vadx.video.decode import (
    Frames,
    VideoError,
    VideoInfo,
    VideoReader,
    probe,
    read_image,
    read_video,
    video_sha256,
)
from vadx.video.encode import write_gif, write_mp4, write_png
from vadx.video.live import LiveFrame, LiveSource, SourceError
from vadx.video.preprocess import (
    Augment,
    AugmentDraw,
    Geometry,
    apply_augmentation,
    clip_to_frames,
    fit_frames,
    frames_to_clip,
)
from vadx.video.sampling import Window, even_indices, sliding_windows

__all__ = [
    "Augment",
    "AugmentDraw",
    "Frames",
    "Geometry",
    "LiveFrame",
    "LiveSource",
    "SourceError",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "Window",
    "apply_augmentation",
    "clip_to_frames",
    "even_indices",
    "fit_frames",
    "frames_to_clip",
    "probe",
    "read_image",
    "read_video",
    "sliding_windows",
    "video_sha256",
    "write_gif",
    "write_mp4",
    "write_png",
]
