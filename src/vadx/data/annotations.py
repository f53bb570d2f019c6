"""Boxes users annotated, turned into the per-frame masks vadx reads beside a video.

Two formats are read:

* **CVAT for video 1.1** (XML, CVAT's "CVAT for video" export): ``<track label=…>`` elements
  holding ``<box frame=… xtl=… ytl=… xbr=… ybr=… outside=…>`` (and ``<polygon points=…>``)
  shapes. A track's shapes between two listed frames are interpolated linearly (boxes) or held
  (polygons), as CVAT does; ``outside="1"`` ends the object until a later shape. The frame size
  is ``<original_size>`` in ``<meta>``;
* **a per-frame box CSV** with a header ``frame,x1,y1,x2,y2`` and optionally ``label``: one box
  per row, in the video's pixels (``x1, y1`` top left, ``x2, y2`` bottom right, exclusive).

Frame numbers are the video's frame indices from 0. :func:`import_boxes` writes the masks as
``<video stem>.masks.npz`` beside the video (the sidecar every vadx dataset layout finds), where
``vadx xai-eval`` scores how well the maps point at them. Anything
wrong in a file — not the format, a box outside the frame count, a non-finite or inverted
coordinate, another frame size than the video's — is an :class:`AnnotationError` naming the
file and the place.
"""

from __future__ import annotations

import csv
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadx.data.layouts import MASK_SUFFIX
from vadx.errors import InputError
from vadx.video.decode import probe

#: the box CSV's columns (``label`` may follow)
CSV_COLUMNS = ("frame", "x1", "y1", "x2", "y2")
MAX_BYTES = 256 * 1024 * 1024


class AnnotationError(InputError):
    """An annotation file is not what it should be."""


@dataclass(frozen=True)
class Shape:
    """One annotated region in one frame: a box ``(x1, y1, x2, y2)`` or a polygon's points."""

    frame: int
    label: str
    box: tuple[float, float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Annotations:
    """The shapes of one video, and the frame size they were drawn on (None: not stated)."""

    source: Path
    shapes: tuple[Shape, ...]
    size: tuple[int, int] | None = None  # (height, width)

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.shapes})

    def masks(
        self, frames: int, height: int, width: int, labels: Iterable[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks ``(frames, height, width)`` — the union of the shapes of ``labels``
        (default: all) — and frame labels ``(frames,)``: 1 where a mask is not empty."""
        import cv2

        if self.size is not None and self.size != (height, width):
            raise AnnotationError(
                f"{self.source} was drawn on {self.size[1]}×{self.size[0]} frames, the video's "
                f"are {width}×{height}: annotate the video itself, or give its original"
            )
        chosen = set(self.labels if labels is None else labels)
        unknown = chosen - set(self.labels)
        if unknown:
            raise AnnotationError(
                f"{self.source} has no shapes labelled {', '.join(sorted(unknown))}; its labels: "
                f"{', '.join(self.labels) or 'none'}"
            )
        masks = np.zeros((frames, height, width), np.uint8)
        for shape in self.shapes:
            if shape.label not in chosen:
                continue
            if shape.frame >= frames:
                raise AnnotationError(
                    f"{self.source}: a {shape.label!r} shape in frame {shape.frame}, but the video "
                    f"has {frames} frames (0 … {frames - 1})"
                )
            if shape.box is not None:
                x1, y1, x2, y2 = shape.box
                left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
                right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
                masks[shape.frame, top:bottom, left:right] = 1
            else:
                points = np.round(np.asarray(shape.polygon)).astype(np.int32)
                cv2.fillPoly(masks[shape.frame], [points], 1)
        masks = masks.astype(bool)
        return masks, masks.reshape(frames, -1).any(1).astype(np.int64)


def read_annotations(path: str | os.PathLike[str]) -> Annotations:
    """Read a CVAT for video XML (``.xml``) or a per-frame box CSV (``.csv``) (module doc)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise AnnotationError(f"{path} is over {MAX_BYTES >> 20} MiB: not an annotation file")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return read_cvat_video(path)
    if suffix == ".csv":
        return read_box_csv(path)
    raise AnnotationError(
        f"{path}: unknown annotation format {suffix or '(no extension)'}; give a CVAT for video "
        "export (.xml) or a box CSV (.csv)"
    )


def read_box_csv(path: str | os.PathLike[str]) -> Annotations:
    """A CSV with a header ``frame,x1,y1,x2,y2[,label]`` (module doc)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise AnnotationError(f"cannot read {path} as CSV: {err}") from err
    if not rows:
        raise AnnotationError(f"{path} is empty; expected a header {','.join(CSV_COLUMNS)}")
    header = [name.strip().lower() for name in rows[0]]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise AnnotationError(
            f"{path}: the header {','.join(header)!r} lacks {', '.join(missing)}; expected "
            f"{','.join(CSV_COLUMNS)}[,label]"
        )
    column = {name: header.index(name) for name in (*CSV_COLUMNS, "label") if name in header}
    shapes = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}, line {line}"
        if len(row) < len(header):
            raise AnnotationError(f"{where}: {len(row)} values for {len(header)} columns")
        frame = _frame(row[column["frame"]], where)
        box = tuple(_number(row[column[c]], c, where) for c in ("x1", "y1", "x2", "y2"))
        label = row[column["label"]].strip() if "label" in column else "box"
        shapes.append(Shape(frame, label or "box", box=_box(box, where)))
    if not shapes:
        raise AnnotationError(f"{path} has a header but no boxes")
    return Annotations(path, tuple(shapes))


def read_cvat_video(path: str | os.PathLike[str]) -> Annotations:
    """A "CVAT for video 1.1" XML export (module doc)."""
    path = Path(path)
    data = path.read_bytes()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise AnnotationError(f"{path} declares a DTD or entities; CVAT exports have none")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise AnnotationError(f"{path} is not well-formed XML: {err}") from err
    if root.tag != "annotations":
        raise AnnotationError(
            f"{path} is not a CVAT export: its root is <{root.tag}>, not <annotations>"
        )
    if root.find("image") is not None and root.find("track") is None:
        raise AnnotationError(
            f"{path} is a 'CVAT for images' export; export the task as 'CVAT for video 1.1'"
        )
    size = None
    original = root.find("meta").find(".//original_size") if root.find("meta") is not None else None
    if original is not None:
        where = f"{path}, <original_size>"
        size = (
            _frame(original.findtext("height", ""), where),
            _frame(original.findtext("width", ""), where),
        )
    shapes: list[Shape] = []
    for track in root.iter("track"):
        label = track.get("label") or "object"
        listed = []
        for element in track:
            if element.tag not in ("box", "polygon"):
                continue
            where = f"{path}, track {track.get('id', '?')}, <{element.tag}>"
            frame = _frame(element.get("frame", ""), where)
            outside = element.get("outside", "0") == "1"
            if element.tag == "box":
                values = [
                    _number(element.get(k, ""), k, where) for k in ("xtl", "ytl", "xbr", "ybr")
                ]
                listed.append((frame, outside, _box(tuple(values), where), None))
            else:
                listed.append((frame, outside, None, _points(element.get("points", ""), where)))
        shapes += _track_shapes(sorted(listed, key=lambda s: s[0]), label)
    if not shapes:
        raise AnnotationError(f"{path} holds no box or polygon tracks")
    return Annotations(path, tuple(shapes), size)


def _track_shapes(listed: Sequence[tuple], label: str) -> list[Shape]:
    """Every frame of a track: listed shapes, and between two of them the interpolated box
    (or the held polygon), unless the earlier one is ``outside``."""
    shapes = []
    for k, (frame, outside, box, polygon) in enumerate(listed):
        if outside:
            continue
        shapes.append(Shape(frame, label, box=box, polygon=polygon))
        if k + 1 == len(listed):
            continue
        following, _, next_box, _ = listed[k + 1]
        for between in range(frame + 1, following):
            if box is not None and next_box is not None:
                share = (between - frame) / (following - frame)
                value = tuple(a + share * (b - a) for a, b in zip(box, next_box, strict=True))
                shapes.append(Shape(between, label, box=value))
            else:
                shapes.append(Shape(between, label, box=box, polygon=polygon))
    return shapes


def _frame(text: str, where: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise AnnotationError(f"{where}: {text!r} is not a frame number") from None
    if value < 0:
        raise AnnotationError(f"{where}: frame {value} is negative")
    return value


def _number(text: str | None, name: str, where: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise AnnotationError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise AnnotationError(f"{where}: {name} is {value}, not a finite number")
    return value


def _box(box: tuple[float, ...], where: str) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise AnnotationError(
            f"{where}: the box ({x1:g}, {y1:g}) – ({x2:g}, {y2:g}) is empty or inverted; "
            "x2 and y2 must exceed x1 and y1"
        )
    return x1, y1, x2, y2


def _points(text: str, where: str) -> tuple[tuple[float, float], ...]:
    try:
        points = tuple(
            (_number(x, "x", where), _number(y, "y", where))
            for x, y in (pair.split(",") for pair in text.split(";") if pair.strip())
        )
    except ValueError:
        raise AnnotationError(f"{where}: points {text!r} are not x,y;x,y;…") from None
    if len(points) < 3:
        raise AnnotationError(f"{where}: a polygon needs at least 3 points, got {len(points)}")
    return points


def mask_sidecar(video: str | os.PathLike[str]) -> Path:
    """Where vadx looks for a video's masks: ``<video stem>.masks.npz`` beside it."""
    video = Path(video)
    return video.with_name(video.stem + MASK_SUFFIX)


def import_boxes(
    annotations: str | os.PathLike[str],
    video: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    labels: Iterable[str] | None = None,
    force: bool = False,
) -> tuple[Path, np.ndarray]:
    """Write ``annotations``' shapes (of ``labels``, default all) as the masks of ``video``
    (default: its sidecar, :func:`mask_sidecar`); returns the path and the frame labels."""
    from vadx.data.masks import write_masks

    found = read_annotations(annotations)
    target = Path(out) if out is not None else mask_sidecar(video)
    if target.exists() and not force:
        raise AnnotationError(f"{target} exists; give {{force}} to replace it", "force")
    info = probe(video)
    masks, frame_labels = found.masks(info.num_frames, info.height, info.width, labels)
    write_masks(target, masks, frame_labels)
    return target, frame_labels
