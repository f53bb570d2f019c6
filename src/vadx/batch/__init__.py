"""Batch runs over video archives: many videos in one command, resumable, shared among the
processes and machines of a torchrun launch, with one index over all of them."""

from vadx.batch.inputs import Video, gather_videos, is_batch
from vadx.batch.jobs import DetectJob, ExplainJob
from vadx.batch.run import MARKER, BatchResult, run_batch

__all__ = [
    "MARKER",
    "BatchResult",
    "DetectJob",
    "ExplainJob",
    "Video",
    "gather_videos",
    "is_batch",
    "run_batch",
]
