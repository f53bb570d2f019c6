"""Dataset layouts → :class:`~vadx.data.VideoSample` lists.

* **folder per class** — ``root/<class>/<video>``, optionally under ``root/<split>/``
  (RWF-2000, Hockey Fights, RLVS, the reference's own layout, ``vadx synth``'s output). A video
  is a file with a video extension or a folder of frame images; a ``<video stem>.masks.npz``
  beside it is its ground truth.
* **list file** — one ``relative/path label`` per line (label: class name or index; ``#``
  comments; paths relative to the list file's folder unless ``root`` is given).
* **temporal annotations** — long videos with anomalous frame intervals (UCF-Crime's
  ``Temporal_Anomaly_Annotation.txt``: ``video class start end start end …``, -1 for none),
  cut into sliding windows labelled by an overlap rule.
* **frames + masks** — UCSD Ped2 style: ``root/<split>/<clip>/`` frame images and
  ``root/<split>/<clip>_gt/`` mask images, cut into windows with per-frame masks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vadx.data.dataset import VideoSample
from vadx.data.masks import read_masks
from vadx.errors import InputError
from vadx.video.decode import VideoInfo, is_video_path, probe
from vadx.video.sampling import sliding_windows

MASK_SUFFIX = ".masks.npz"
SPLITS = ("train", "val", "test")


def _mask_sidecar(video: Path) -> Path | None:
    sidecar = video.with_name(video.stem + MASK_SUFFIX)
    return sidecar if sidecar.is_file() else None


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    """The split folders (train/val/test, any case) present under ``root``."""
    root = Path(root)
    return [p.name for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in SPLITS]


def folder_samples(
    root: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    split: str | None = None,
) -> tuple[list[VideoSample], tuple[str, ...]]:
    """Samples of a ``root/[<split>/]<class>/<video>`` tree, and the class names.

    Without ``class_names`` the classes are the folder names, sorted. With them, every folder
    must name one of them (a model's classes), in any subset.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    base = root
    if split is not None:
        base = root / split
        if not base.is_dir():
            found = available_splits(root)
            raise InputError(
                f"{root} has no split {split!r}"
                + (f"; it has {', '.join(found)}" if found else "; it has no split folders")
            )
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if split is None and folders and {p.name.lower() for p in folders} <= set(SPLITS):
        raise InputError(
            f"{root} is split into {', '.join(p.name for p in folders)}; choose one with split="
        )
    class_folders = {p.name: p for p in folders if any(is_video_path(v) for v in p.iterdir())}
    if not class_folders:
        raise InputError(f"no videos found in {base} (expected {base}/<class>/<video>)")
    if class_names is None:
        classes = tuple(sorted(class_folders))
    else:
        classes = tuple(class_names)
        unknown = sorted(set(class_folders) - set(classes))
        if unknown:
            raise InputError(
                f"{base / unknown[0]}: folder {unknown[0]!r} is not a class of the model "
                f"({', '.join(classes)})"
            )
    samples = [
        VideoSample(source=video, label=classes.index(name), masks=_mask_sidecar(video))
        for name, folder in sorted(class_folders.items())
        for video in sorted(folder.iterdir())
        if not video.name.startswith(".") and is_video_path(video)
    ]
    return samples, classes


def list_file_samples(
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> tuple[list[VideoSample], tuple[str, ...]]:
    """Samples of a list file with one ``relative/path label`` per line, and the class names.

    Labels are class names, or indices into ``class_names``. Without ``class_names`` the
    classes are the names found, sorted.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"list file not found: {path}")
    if is_video_path(path):
        raise InputError(
            f"{path} is a video, not a dataset: give a folder of class folders (optionally "
            "under train/, val/, test/) or a list file of 'relative/path label' lines"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{path} is not a list file (not UTF-8 text): give a folder of class folders or a "
            "list file of 'relative/path label' lines"
        ) from None
    base = Path(root) if root is not None else path.parent
    entries: list[tuple[int, Path, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise InputError(f"{path}:{number}: expected 'relative/path label', got {line!r}")
        entries.append((number, base / parts[0], parts[1]))
    if not entries:
        raise InputError(f"{path} lists no videos")
    if class_names is None:
        if any(label.isdigit() for _, _, label in entries):
            raise InputError(f"{path} uses class indices; give the class names they index")
        classes = tuple(sorted({label for _, _, label in entries}))
    else:
        classes = tuple(class_names)
    samples = []
    for number, video, label in entries:
        if label.isdigit() and int(label) < len(classes):
            index = int(label)
        elif label in classes:
            index = classes.index(label)
        else:
            raise InputError(
                f"{path}:{number}: unknown label {label!r}; classes are {', '.join(classes)}"
            )
        samples.append(VideoSample(source=video, label=index, masks=_mask_sidecar(video)))
    return samples, classes


Ambiguous = Literal["drop", "normal", "anomaly"]


def _window_label(
    inside: np.ndarray, anomaly: int, normal: int, overlap: float, ambiguous: Ambiguous
) -> int | None:
    share = float(inside.mean())
    if share >= overlap:
        return anomaly
    if share == 0:
        return normal
    return {"drop": None, "normal": normal, "anomaly": anomaly}[ambiguous]


@dataclass(frozen=True)
class AnnotatedVideo:
    """A long video with its annotated class and which frames are anomalous."""

    source: Path
    label: int
    anomalous: np.ndarray
    fps: float


def read_temporal_annotations(
    annotations: str | os.PathLike[str],
    videos_root: str | os.PathLike[str],
    class_names: Sequence[str],
    normal_class: str = "normal",
    class_map: Mapping[str, str] | None = None,
) -> list[AnnotatedVideo]:
    """Parse a UCF-Crime-style annotation file: ``video class start end [start end …]``.

    Annotation classes map to model classes by ``class_map``, else by name (case ignored);
    ``Normal`` maps to ``normal_class``. Intervals include both ends; ``-1`` means none. Videos
    are found under ``videos_root`` by relative path or, failing that, by file name anywhere
    below it (UCF-Crime keeps them in class folders).
    """
    annotations, videos_root = Path(annotations), Path(videos_root)
    if not annotations.is_file():
        raise InputError(f"annotation file not found: {annotations}")
    classes = tuple(class_names)
    if normal_class not in classes:
        raise InputError(f"normal class {normal_class!r} is not one of {', '.join(classes)}")
    lookup = {k.lower(): v for k, v in (class_map or {}).items()}
    by_name: dict[str, Path] | None = None
    videos = []
    try:
        text = annotations.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{annotations} is not a temporal annotation file (not UTF-8 text): give lines of "
            "'video class start end [start end]'"
        ) from None
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        where = f"{annotations}:{number}"
        if len(parts) < 2 or (len(parts) - 2) % 2:
            raise InputError(f"{where}: expected 'video class start end [start end …]'")
        try:
            bounds = [int(v) for v in parts[2:]]
        except ValueError as err:
            raise InputError(f"{where}: frame numbers must be integers ({err})") from err
        name = lookup.get(parts[1].lower(), parts[1])
        if name.lower() == "normal":
            name = normal_class
        matches = [c for c in classes if c.lower() == name.lower()]
        if not matches:
            raise InputError(
                f"{where}: class {parts[1]!r} is not one of the model's classes "
                f"({', '.join(classes)}); map it with class_map={{'{parts[1]}': …}}"
            )
        video = videos_root / parts[0]
        if not video.exists():
            if by_name is None:
                by_name = {p.name: p for p in videos_root.rglob("*") if p.is_file()}
            if parts[0] not in by_name:
                raise InputError(f"{where}: video {parts[0]} not found under {videos_root}")
            video = by_name[parts[0]]
        info = probe(video)
        inside = np.zeros(info.num_frames, bool)
        for start, end in zip(bounds[::2], bounds[1::2], strict=True):
            if start >= 0 and end >= start:
                inside[start : end + 1] = True
        videos.append(AnnotatedVideo(video, classes.index(matches[0]), inside, info.fps))
    if not videos:
        raise InputError(f"{annotations} lists no videos")
    return videos


def temporal_samples(
    annotations: str | os.PathLike[str],
    videos_root: str | os.PathLike[str],
    class_names: Sequence[str],
    window: int,
    stride: int,
    *,
    step: int = 1,
    overlap: float = 0.5,
    ambiguous: Ambiguous = "drop",
    normal_class: str = "normal",
    class_map: Mapping[str, str] | None = None,
) -> list[VideoSample]:
    """Sliding-window samples of long videos with annotated anomalous frame intervals.

    A window is labelled with the video's anomaly class when at least ``overlap`` of its frames
    lie in an annotated interval (ends inclusive), ``normal_class`` when none does, and per
    ``ambiguous`` otherwise (dropped by default). Each sample keeps per-frame labels (1 inside
    an interval). See :func:`read_temporal_annotations` for the file format.
    """
    if not 0 < overlap <= 1:
        raise InputError(f"overlap must be in (0, 1], got {overlap}")
    classes = tuple(class_names)
    videos = read_temporal_annotations(annotations, videos_root, classes, normal_class, class_map)
    normal = classes.index(normal_class)
    samples: list[VideoSample] = []
    for video in videos:
        count = len(video.anomalous)
        times = np.arange(count, dtype=np.float64) / video.fps
        for win in sliding_windows(count, window, stride, step, times):
            flags = video.anomalous[win.indices]
            label = _window_label(flags, video.label, normal, overlap, ambiguous)
            if label is None:
                continue
            samples.append(
                VideoSample(
                    source=video.source,
                    label=label,
                    indices=tuple(int(i) for i in win.indices),
                    frame_labels=tuple(int(f) for f in flags),
                )
            )
    if not samples:
        raise InputError(f"{annotations} gives no windows (videos too short, or all ambiguous)")
    return samples


def _nominal_times(info: VideoInfo) -> np.ndarray:
    """Nominal frame times of a probed video (seconds)."""
    return np.arange(info.num_frames, dtype=np.float64) / info.fps


def frame_mask_samples(
    root: str | os.PathLike[str],
    class_names: Sequence[str],
    window: int,
    stride: int,
    *,
    split: str = "Test",
    anomaly_class: str | None = None,
    normal_class: str = "normal",
    fps: float = 10.0,
) -> list[VideoSample]:
    """Windows of UCSD-Ped2-style clips (frame folders) with their ground-truth mask folders.

    ``root/<split>/<clip>/`` holds the frames and ``root/<split>/<clip>_gt/`` the masks (clips
    without one are normal throughout). A window is labelled ``anomaly_class`` (default: the
    first class that is not ``normal_class``) if any of its frames has a non-empty mask.
    """
    base = Path(root) / split
    if not base.is_dir():
        raise InputError(f"{base} not found (expected {root}/<split>/<clip>/ frame folders)")
    classes = tuple(class_names)
    if normal_class not in classes:
        raise InputError(f"normal class {normal_class!r} is not one of {', '.join(classes)}")
    anomaly_class = anomaly_class or next(c for c in classes if c != normal_class)
    if anomaly_class not in classes:
        raise InputError(f"anomaly class {anomaly_class!r} is not one of {', '.join(classes)}")
    clips = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.endswith("_gt"))
    clips = [p for p in clips if is_video_path(p)]
    if not clips:
        raise InputError(f"no frame folders in {base}")
    samples = []
    for clip in clips:
        info = probe(clip, fps=fps)
        gt = clip.with_name(clip.name + "_gt")
        masks = gt if gt.is_dir() else None
        labels = np.zeros(info.num_frames, np.int64)
        if masks is not None:
            _, labels = read_masks(masks)
            if len(labels) != info.num_frames:
                raise InputError(
                    f"{masks} has {len(labels)} masks for {info.num_frames} frames in {clip}"
                )
        for win in sliding_windows(info.num_frames, window, stride, 1, _nominal_times(info)):
            flags = labels[win.indices]
            samples.append(
                VideoSample(
                    source=clip,
                    label=classes.index(anomaly_class if flags.any() else normal_class),
                    indices=tuple(int(i) for i in win.indices),
                    masks=masks,
                    frame_labels=tuple(int(f) for f in flags),
                    fps=fps,
                )
            )
    return samples
