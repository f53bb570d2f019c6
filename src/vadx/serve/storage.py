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
import re
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from vadx.files import atomic_path, write_json
from vadx.video.decode import VideoError, VideoReader

#: container signatures: (offset, bytes) → extension
SIGNATURES = (
    (4, b"ftyp", "mp4"),  # MP4, MOV, M4V, 3GP
    (0, b"\x1a\x45\xdf\xa3", "mkv"),  # Matroska, WebM
    (0, b"RIFF", "avi"),  # checked further below
    (0, b"\x00\x00\x01\xba", "mpg"),  # MPEG program stream
)
ID = re.compile(r"^[0-9a-f]{16}$")


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

    def save(self, stream: BinaryIO, filename: str | None) -> dict[str, Any]:
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
        record = {
            "id": video_id,
            "name": _display_name(filename),
            "bytes": size,
            "sha256": digest.hexdigest(),
            "file": path.name,
            **info,
        }
        write_json(folder / "video.json", record)
        return record

    def get(self, video_id: str) -> dict[str, Any]:
        """The record of video ``video_id``; KeyError if there is none."""
        if not ID.match(video_id):
            raise KeyError(video_id)
        path = self.root / video_id / "video.json"
        if not path.exists():
            raise KeyError(video_id)
        return json.loads(path.read_text(encoding="utf-8"))

    def path(self, video_id: str) -> Path:
        return self.root / video_id / self.get(video_id)["file"]

    def all(self) -> list[dict[str, Any]]:
        records = [
            json.loads(p.read_text(encoding="utf-8")) for p in self.root.glob("*/video.json")
        ]
        return sorted(records, key=lambda r: r["id"])

    def delete(self, video_id: str) -> None:
        self.get(video_id)
        shutil.rmtree(self.root / video_id)


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
            pairs += [(written, name), (json.dumps(written)[1:-1], name),
                      (html.escape(written), name)]  # fmt: skip
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
