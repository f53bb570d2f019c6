"""Video input: frames to clip tensors (decoding, sampling and live sources come next)."""

from vadx.video.preprocess import frames_to_clip

__all__ = ["frames_to_clip"]
