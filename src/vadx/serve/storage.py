"""Uploaded videos: stored under names the server makes, checked by their content.

An upload streams to ``DATA/videos/<id>/upload.tmp`` while its size is counted (over the limit:
refused, the partial file removed), its first bytes must be those of a known container, and
every frame of its video stream must decode as detection will read it (the same
:class:`~vadx.video.VideoReader`, frame by frame); only then does it become
``DATA/videos/<id>/video.<ext>`` with ``video.json`` (the client's file name as metadata only,
size, sha256, frames, fps, size in pixels). File names from clients never become paths, and no
message names a path on the server: the upload is called by its client's file name.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import shutil
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import cv2

from vadx.files import atomic_path, write_json
from vadx.serve.schema import Video
from vadx.video.decode import VideoError, VideoReader
from vadx.video.encode import Mp4Writer

#: container signatures: (offset, bytes) → extension
SIGNATURES = (
    (4, b"ftyp", "mp4"),  # MP4, MOV, M4V, 3GP
    (0, b"\x1a\x45\xdf\xa3", "mkv"),  # Matroska, WebM
    (0, b"RIFF", "avi"),  # checked further below
    (0, b"\x00\x00\x01\xba", "mpg"),  # MPEG program stream
)
ID = re.compile(r"^[0-9a-f]{16}$")
LOG = logging.getLogger("vadx.serve")
#: width of the events' thumbnails on the page
THUMBNAIL_WIDTH = 160


class UploadError(Exception):
    """An upload was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def container_of(head: bytes) -> str | None:
    """The extension of the container whose signature starts ``head``, or None."""
    for offset, magic, extension in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if extension == "avi" and head[8:12] != b"AVI ":
                return None
            return extension
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "ts"  # MPEG transport stream: a sync byte every 188 bytes
    return None


class VideoStore:
    """Videos under ``root/videos``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root / "videos"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._copying = threading.Lock()
        self.removed_partial = remove_partial_uploads(self.root)

    def __contains__(self, video_id: object) -> bool:
        try:
            self.get(str(video_id))
        except KeyError:
            return False
        return True

    def save(self, stream: BinaryIO, filename: str | None) -> Video:
        """Store an uploaded file; returns its record. Raises :class:`UploadError`."""
        video_id = uuid.uuid4().hex[:16]
        folder = self.root / video_id
        folder.mkdir()
        staging = folder / "upload.tmp"
        digest, size = hashlib.sha256(), 0
        try:
            with open(staging, "wb") as out:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadError(
                            413,
                            f"the upload is larger than the limit of {self.max_bytes / 1e6:.0f} MB",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise UploadError(400, "the uploaded file is empty")
            with open(staging, "rb") as fh:
                extension = container_of(fh.read(512))
            if extension is None:
                raise UploadError(
                    415,
                    "not a video: accepted are MP4/MOV, MKV/WebM, AVI and "
                    "MPEG (program or transport stream) files",
                )
            path = folder / f"video.{extension}"
            staging.rename(path)
            try:
                with VideoReader(path) as video:
                    video.verify()  # every frame, as detection will decode it
                    info = asdict(video.info)
            except VideoError as err:
                why = without_paths(str(err), path, _display_name(filename))
                raise UploadError(
                    415,
                    f"the file looks like a video but cannot be decoded "
                    f"as vadx will analyse it: {why}",
                ) from err
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        info.pop("path", None)
        record = Video(
            id=video_id,
            name=_display_name(filename),
            bytes=size,
            sha256=digest.hexdigest(),
            file=path.name,
            **info,
        )
        write_json(folder / "video.json", record.model_dump())
        return record

    def get(self, video_id: str) -> Video:
        """The record of video ``video_id``; KeyError if there is none."""
        if not ID.match(video_id):
            raise KeyError(video_id)
        path = self.root / video_id / "video.json"
        if not path.exists():
            raise KeyError(video_id)
        return _read_record(path)

    def path(self, video_id: str) -> Path:
        """Where video ``video_id``'s file is stored; KeyError if there is none."""
        return self.root / video_id / self.get(video_id).file

    def playable(self, video_id: str) -> Path:
        """The video as a browser plays it: the upload itself when it is H.264 in MP4, else
        an H.264 copy made on first use (``play.mp4``, every frame as vadx reads it)."""
        record, path = self.get(video_id), self.path(video_id)
        if record.file == "video.mp4" and record.codec == "h264":
            return path
        copy = path.with_name("play.mp4")
        with self._copying:
            if not copy.is_file():
                with (
                    VideoReader(path) as video,
                    Mp4Writer(
                        copy,
                        video.info.fps,
                        (video.info.height, video.info.width),
                        reproducible=False,
                    ) as out,
                ):
                    for _, _, frame in video:
                        out.write(frame)
        return copy

    def thumbnail(self, video_id: str, frame: int, width: int = THUMBNAIL_WIDTH) -> bytes:
        """Frame ``frame`` of the video as a JPEG ``width`` pixels wide (at most its own)."""
        with VideoReader(self.path(video_id)) as video:
            picture = video.read([frame]).data[0]
        height, full = picture.shape[:2]
        if full > width:
            picture = cv2.resize(
                picture, (width, max(1, round(height * width / full))), interpolation=cv2.INTER_AREA
            )
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        assert ok
        return encoded.tobytes()

    def all(self) -> list[Video]:
        """Every stored video, by id."""
        records = [_read_record(p) for p in self.root.glob("*/video.json")]
        return sorted(records, key=lambda r: r.id)

    def delete(self, video_id: str) -> None:
        self.get(video_id)
        shutil.rmtree(self.root / video_id)


def _read_record(path: Path) -> Video:
    """A video's record as ``video.json`` keeps it."""
    return Video.model_validate(json.loads(path.read_text(encoding="utf-8")))


def remove_partial_uploads(root: Path) -> list[str]:
    """Remove the folders of uploads a stopped server never finished (no ``video.json``: a
    ``kill -9`` mid-upload); returns their names. A video is listed only once its record is
    written, so nothing listed is removed."""
    removed = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and ID.match(folder.name) and not (folder / "video.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        LOG.warning("removed %d unfinished upload(s): %s", len(removed), ", ".join(removed))
    return removed


def without_paths(message: str, path: Path, name: str) -> str:
    """``message`` with the stored file's path (and any folder of it) replaced by ``name``."""
    for server_path in (path.resolve(), path):
        message = message.replace(str(server_path), name)
        for folder in server_path.parents:
            if len(folder.parts) > 1:
                message = message.replace(str(folder) + "/", "")
    return message


#: the files a job writes that may name server paths (text)
TEXT_SUFFIXES = (".json", ".html", ".csv", ".txt")


def redact_paths(folder: Path, names: dict[Path, str]) -> None:
    """Replace, in the text files under ``folder``, each server path of ``names`` (as written
    plain, in JSON and in HTML) by its name for clients: what a job wrote is served as it is,
    and a client never learns where the server keeps things. Names must be :func:`label`-safe."""
    pairs = []
    for path, name in names.items():
        for written in {str(path), str(path.resolve())}:
            pairs += [
                (written, name),
                (json.dumps(written)[1:-1], name),
                (html.escape(written), name),
            ]
    pairs.sort(key=lambda pair: -len(pair[0]))  # a path before its folders
    for file in folder.rglob("*"):
        if file.suffix in TEXT_SUFFIXES and file.is_file():
            text = original = file.read_text(encoding="utf-8")
            for written, name in pairs:
                text = text.replace(written, name)
            if text != original:
                with atomic_path(file) as tmp:
                    tmp.write_text(text, encoding="utf-8")


def label(name: str) -> str:
    """``name`` with anything but letters, digits, space and ``._-()`` replaced by ``_``: safe
    to put as it is in JSON, HTML, CSV and a file name."""
    return re.sub(r"[^\w .()-]", "_", name, flags=re.ASCII)


def _display_name(filename: str | None) -> str:
    """The client's file name, for display only: its last part, printable, at most 120 chars."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:120] or "video"
