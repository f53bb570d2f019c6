"""The videos of a batch: files, folders (searched recursively) and list files, each given a
key — its path relative to the inputs' common folder — that names its outputs.

``cam1/2026-11-30.mp4`` under ``vadx detect MODEL archive/`` has the key
``cam1/2026-11-30.mp4``, its outputs go to ``OUT/videos/cam1/2026-11-30.mp4/`` and its camera
is ``cam1`` (the folder it lies in; videos directly in the common folder take that folder's
name). Keys are unique because paths are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vadx import distributed
from vadx.errors import InputError
from vadx.files import footprint, path_text
from vadx.video.decode import is_video_path


@dataclass(frozen=True)
class Video:
    """One video of a batch (``size``/``mtime_ns`` None: the file is missing)."""

    path: Path
    key: str
    camera: str
    size: int | None
    mtime_ns: int | None

    @property
    def weight(self) -> int:
        """What sharding balances: the file's size (1 for a missing file: it costs little)."""
        return self.size or 1


def is_batch(
    paths: Sequence[str | os.PathLike[str]], list_file: str | os.PathLike[str] | None = None
) -> bool:
    """Whether the inputs make a batch: several paths, a folder of videos (not a frame
    folder), a list file, or one process of several under torchrun. A single video is not
    one; no video at all is an error."""
    if not paths and list_file is None:
        raise InputError(
            "give a {video}: a file, several, a folder of videos, or {list} FILE", "video", "list"
        )
    if list_file is not None or len(paths) != 1 or distributed.launched():
        return True
    only = Path(paths[0])
    return only.is_dir() and not is_video_path(only)


def gather_videos(
    paths: Sequence[str | os.PathLike[str]],
    list_file: str | None = None,
    exclude: str | os.PathLike[str] | None = None,
) -> list[Video]:
    """The videos named by ``paths`` (files, frame folders, or folders searched recursively
    for both, hidden entries skipped) and by ``list_file`` (one path per line, relative to
    the list's folder; blank lines and ``#`` comments ignored), in key order, each once.
    Folders are not searched below ``exclude`` (the batch's own outputs, when they lie among
    its inputs: a re-run would take its annotated videos for footage).

    A path on the command line that does not exist is an error (a typo); one in the list is
    kept, and its video fails in the batch (archives change under their lists).
    """
    given = [(Path(p), True) for p in paths]
    if list_file is not None:
        given += [(path, False) for path in _read_list(Path(list_file))]
    if not given:
        raise InputError("no video given: name video files or folders, or {list} FILE", "list")
    files: dict[Path, None] = {}
    roots: list[Path] = []
    for path, strict in given:
        path = _absolute(path)
        if path.is_dir() and not is_video_path(path):
            found = _videos_under(path, None if exclude is None else _absolute(Path(exclude)))
            if not found and strict:
                raise InputError(f"{path} holds no video file ({_extensions_hint()})")
            roots.append(path)
            files.update(dict.fromkeys(found))
        elif path.exists() or not strict:
            roots.append(path.parent)
            files[path] = None
        else:
            raise InputError(f"video not found: {path}")
    if not files:
        raise InputError("no video found in the folders given")
    root = Path(os.path.commonpath(roots))
    videos = sorted((_video(path, root) for path in files), key=lambda v: v.key)
    _check_nesting(videos)
    return videos


def _read_list(path: Path) -> list[Path]:
    if path.exists() and not path.is_file():  # a FIFO with no writer would block for ever
        raise InputError(
            f"{{list}} {path} is not a regular file: give a file naming the videos", "list"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{{list}} {path} cannot be read ({err})", "list") from None
    lines = (line.strip() for line in text.splitlines())
    entries = [Path(line) for line in lines if line and not line.startswith("#")]
    if not entries:
        raise InputError(f"{{list}} {path} names no video (one path per line)", "list")
    return [entry if entry.is_absolute() else path.parent / entry for entry in entries]


def _absolute(path: Path) -> Path:
    """An absolute, normalised path that keeps symbolic links' names (the user's names)."""
    return Path(os.path.normpath(path.absolute()))


def _videos_under(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Video files and frame folders (folders of images: one video each) under ``folder``,
    following links to folders but never into a folder twice (a link loop) or ``exclude``."""
    found, seen = [], set()
    for top, dirs, names in os.walk(folder, followlinks=True):
        stat = os.stat(top)
        if (stat.st_dev, stat.st_ino) in seen or (exclude and Path(top) == exclude):
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        frame_folders = [d for d in dirs if not d.startswith(".") and is_video_path(Path(top, d))]
        found += [Path(top, d) for d in frame_folders]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in frame_folders)
        found += [
            Path(top, n) for n in names if not n.startswith(".") and is_video_path(Path(top, n))
        ]
    return sorted(found)


def _extensions_hint() -> str:
    from vadx.video.decode import VIDEO_EXTENSIONS

    return "looked for " + ", ".join(sorted(VIDEO_EXTENSIONS))


def _video(path: Path, root: Path) -> Video:
    key = path_text(path.relative_to(root).as_posix())  # names its output folder too
    folder = Path(key).parent.as_posix()
    camera = root.name if folder == "." else folder
    try:
        size, mtime = footprint(path)
    except OSError:
        return Video(path, key, camera or "/", None, None)
    return Video(path, key, camera or "/", size, mtime)


def _check_nesting(videos: list[Video]) -> None:
    """A video whose output folder would hold another's (``a.mp4`` and ``a.mp4/b.mp4``)."""
    keys = {v.key for v in videos}
    for video in videos:
        for parent in Path(video.key).parents:
            if parent.as_posix() in keys:
                raise InputError(
                    f"{parent} is both a video and a folder holding {video.key}: their outputs "
                    "would mix; give them in separate batches"
                )
