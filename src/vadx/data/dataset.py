"""One torch ``Dataset`` for every layout: a list of :class:`VideoSample` → model-ready clips.

A sample is a video (file or frame folder), a class, and which frames make the clip: a frame
range sampled evenly (the reference's video generator) or explicit indices (a window of a long
video). Ground-truth masks and per-frame labels come along when the sample has them.

Each item is a dict::

    clip          float (T, 3, H, W), resized (the fit), augmented, normalised
    label         int, the class index
    frame_indices int (T,), the source frames the clip was made of
    masks         bool (T, H, W), when the sample has masks (resized and augmented with the clip)
    frame_labels  int (T,), when the sample has them (1 = anomaly in that frame)
    picture       bool (H, W), True where the frame shows the video, False on letter-box
                  padding (without augmentation: augmented frames have none)
    index         int, the sample's position in the dataset

Videos are checked when the dataset is built (they exist, decode, and are long enough). A bad
video raises a :class:`~vadx.video.VideoError` naming it — or, with ``skip_bad=True``, is left
out, listed in ``dataset.skipped`` and counted in a warning: never silently.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vadx.data.masks import MaskError, read_masks
from vadx.errors import InputError, VadxError
from vadx.video.decode import VideoReader, probe
from vadx.video.preprocess import Augment, Fit, fit_frames, frames_to_clip
from vadx.video.sampling import even_indices


@dataclass(frozen=True)
class VideoSample:
    """One clip of a dataset.

    Attributes:
        source: video file or frame folder.
        label: class index.
        start, stop: the frame range to sample evenly from (``stop=None``: to the end).
        indices: explicit frame indices (a window); overrides even sampling.
        masks: ``.npz`` file or folder of mask images with per-frame ground truth.
        frame_labels: per-frame labels of ``indices`` (temporal annotations), if known.
        fps: frame rate of a frame folder.
    """

    source: Path
    label: int
    start: int = 0
    stop: int | None = None
    indices: tuple[int, ...] | None = None
    masks: Path | None = None
    frame_labels: tuple[int, ...] | None = None
    fps: float = 25.0


@dataclass
class VideoDataset(Dataset):
    """Clips of ``num_frames`` frames of ``frame_size`` from samples, ready for a CRNN.

    Args:
        samples: the clips.
        class_names: names of the label indices.
        num_frames, frame_size, mean, std: the model's input (see :class:`~vadx.CRNNConfig`).
        fit: how frames are resized, ``"stretch"`` (default, as the models' default),
            ``"pad"`` (letterbox) or ``"crop"``; :meth:`for_model` takes the model's.
        augment: augmentation drawn once per clip (training), or None.
        seed: seed of the augmentation; a clip's draw depends on (seed, epoch, index) only, so
            results do not depend on the number of loader workers.
        skip_bad: leave out unreadable or too-short videos (listed in ``skipped``, warned about)
            instead of raising.
        check: probe every video when building (disable only for trusted, pre-checked data).
    """

    samples: Sequence[VideoSample]
    class_names: Sequence[str]
    num_frames: int = 20
    frame_size: tuple[int, int] = (112, 112)
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)
    fit: Fit = "stretch"
    augment: Augment | None = None
    seed: int = 0
    skip_bad: bool = False
    check: bool = True
    progress: Callable[[int, int], None] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list, init=False)
    #: frames in each sample's range (known once checked), the clip's source span
    spans: list[int] = field(default_factory=list, init=False)
    epoch: int = field(default=0, init=False)

    @classmethod
    def for_model(
        cls, config: Any, samples: Sequence[VideoSample], class_names: Sequence[str], **options
    ) -> VideoDataset:
        """Clips as the model with (resolved) ``config`` sees them: its clip length, frame
        size, fit and normalisation — the one place every path takes them from."""
        return cls(
            samples,
            class_names,
            num_frames=config.num_frames,
            frame_size=config.frame_size,
            mean=config.mean,
            std=config.std,
            fit=config.fit,
            **options,
        )

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is None or len(value) != 3:
                raise InputError(
                    f"{name} must be three numbers (R, G, B), got {value!r}; use the model's "
                    f"resolved settings, e.g. model.config.{name}"
                )
        self.class_names = tuple(self.class_names)
        self.samples = list(self.samples)
        for sample in self.samples:
            if not 0 <= sample.label < len(self.class_names):
                raise InputError(
                    f"{sample.source}: label {sample.label} is not a class index of "
                    f"{len(self.class_names)} classes ({', '.join(self.class_names)})"
                )
        if self.check:
            self.samples = self._checked(self.samples)

    def _checked(self, samples: list[VideoSample]) -> list[VideoSample]:
        kept = []
        for done, sample in enumerate(samples, 1):
            try:
                span = self._check(sample)
                kept.append(sample)
                self.spans.append(span)
            except (VadxError, OSError) as err:
                if not self.skip_bad:
                    raise
                self.skipped.append((str(sample.source), str(err)))
            if self.progress is not None:
                self.progress(done, len(samples))
        if self.skipped:
            warnings.warn(
                f"skipped {len(self.skipped)} of {len(samples)} videos that cannot be used "
                f"(first: {self.skipped[0][1]}); see dataset.skipped",
                stacklevel=3,
            )
        if not kept:
            raise InputError("the dataset has no usable video")
        return kept

    def _check(self, sample: VideoSample) -> int:
        info = probe(sample.source, fps=sample.fps)
        if sample.indices is not None:
            if max(sample.indices) >= info.num_frames:
                raise InputError(
                    f"{sample.source} has {info.num_frames} frames; the sample asks for frame "
                    f"{max(sample.indices)}"
                )
            return max(sample.indices) - min(sample.indices) + 1
        stop = info.num_frames if sample.stop is None else sample.stop
        if stop > info.num_frames:
            raise InputError(
                f"{sample.source} has {info.num_frames} frames; the sample ends at frame {stop}"
            )
        if stop - sample.start < self.num_frames:
            raise InputError(
                f"{sample.source} has {stop - sample.start} frames in range, fewer than the "
                f"{self.num_frames} a clip needs"
            )
        return stop - sample.start

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """The class index of every sample, ``(N,)``."""
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per training epoch)."""
        self.epoch = epoch

    def frame_indices(self, index: int) -> np.ndarray:
        """The source frames clip ``index`` is made of."""
        sample = self.samples[index]
        if sample.indices is not None:
            return np.asarray(sample.indices, dtype=np.int64)
        with VideoReader(sample.source, fps=sample.fps) as video:
            return self._sampled(sample, video.info.num_frames)

    def _sampled(self, sample: VideoSample, num_frames: int) -> np.ndarray:
        if sample.indices is not None:
            return np.asarray(sample.indices, dtype=np.int64)
        stop = num_frames if sample.stop is None else sample.stop
        return even_indices(num_frames, self.num_frames, start=sample.start, stop=stop)

    def __getitem__(self, index: int) -> ClipItem:
        sample = self.samples[index]
        with VideoReader(sample.source, fps=sample.fps) as video:
            indices = self._sampled(sample, video.info.num_frames)
            frames = video.read(indices).data
        masks = frame_labels = None
        if sample.masks is not None:
            try:
                masks, frame_labels = read_masks(sample.masks, indices)
            except MaskError as err:
                raise MaskError(f"{sample.source}: {err}") from err
            if masks.shape[1:] != frames.shape[1:3]:
                raise MaskError(
                    f"{sample.masks} masks are {masks.shape[2]}×{masks.shape[1]}, the frames "
                    f"of {sample.source} are {frames.shape[2]}×{frames.shape[1]}"
                )
        if sample.frame_labels is not None:
            frame_labels = np.asarray(sample.frame_labels, dtype=np.int64)
        frames, geometry, masks = fit_frames(frames, self.frame_size, self.fit, masks=masks)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            frames, masks = self.augment(frames, rng, masks)
        return ClipItem(
            clip=frames_to_clip(frames, self.mean, self.std),
            label=sample.label,
            frame_indices=torch.from_numpy(indices),
            index=index,
            masks=None if masks is None else torch.from_numpy(masks),
            picture=torch.from_numpy(geometry.picture()) if self.augment is None else None,
            frame_labels=None
            if frame_labels is None
            else torch.from_numpy(np.asarray(frame_labels, dtype=np.int64)),
        )


@dataclass(frozen=True, slots=True)
class ClipItem:
    """One clip of a :class:`VideoDataset`: the clip ``(T, 3, H, W)``, its class index, the
    source frames it samples ``(T,)`` and its index in the dataset; its masks ``(T, H, W)``
    and frame labels ``(T,)`` where the sample has them, and its picture mask ``(H, W)`` (the
    frame without letter-box padding) where the dataset does not augment."""

    clip: torch.Tensor
    label: int
    frame_indices: torch.Tensor
    index: int
    masks: torch.Tensor | None = None
    picture: torch.Tensor | None = None
    frame_labels: torch.Tensor | None = None


@dataclass(frozen=True, slots=True)
class ClipBatch:
    """Clips batched by :func:`collate_clips`: ``clip (B, T, 3, H, W)``, ``label (B,)``,
    ``frame_indices (B, T)``, ``index (B,)``; masks, pictures and frame labels only when every
    clip of the batch has them (else None)."""

    clip: torch.Tensor
    label: torch.Tensor
    frame_indices: torch.Tensor
    index: torch.Tensor
    masks: torch.Tensor | None = None
    picture: torch.Tensor | None = None
    frame_labels: torch.Tensor | None = None


def _stacked(values: list[torch.Tensor | None]) -> torch.Tensor | None:
    """The tensors stacked, or None when any is missing."""
    present = [value for value in values if value is not None]
    return torch.stack(present) if len(present) == len(values) else None


def collate_clips(items: list[ClipItem]) -> ClipBatch:
    """Batch items: ``clip (B, T, 3, H, W)``, ``label (B,)`` …; masks, pictures and frame
    labels only when every item has them."""
    return ClipBatch(
        clip=torch.stack([item.clip for item in items]),
        label=torch.tensor([item.label for item in items]),
        frame_indices=torch.stack([item.frame_indices for item in items]),
        index=torch.tensor([item.index for item in items]),
        masks=_stacked([item.masks for item in items]),
        picture=_stacked([item.picture for item in items]),
        frame_labels=_stacked([item.frame_labels for item in items]),
    )


def _init_worker(_: int) -> None:
    # Each worker decodes one clip at a time: torch threads inside workers only compete.
    # (OpenCV's thread count is left alone: cv2.setNumThreads in a forked child whose parent
    # already used OpenCV's pool deadlocks.)
    torch.set_num_threads(1)


def _worker_context() -> multiprocessing.context.BaseContext:
    # Workers start from a fork server: a fresh, single-threaded process that has imported torch
    # and OpenCV once. Forking the caller would copy the locks its threads (OpenCV's pool,
    # FFmpeg's decoders, a server's threads) held at that instant; a worker that needs one then
    # waits forever — a hang seen once in a CI run of the suite.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def make_loader(
    dataset: VideoDataset,
    *,
    batch_size: int = 8,
    shuffle: bool = False,
    workers: int | None = None,
    seed: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader that decodes in ``workers`` processes (default: CPU count, at most 8).

    Workers start from a fork server (never a fork of the caller, which may hold threads'
    locks), so a script that uses ``workers > 0`` runs its top level under
    ``if __name__ == "__main__":``, as with any multiprocessing start method but fork.
    """
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_clips,
        worker_init_fn=_init_worker if workers else None,
        multiprocessing_context=_worker_context() if workers else None,
        persistent_workers=workers > 0,
        generator=generator,
        drop_last=drop_last,
    )
