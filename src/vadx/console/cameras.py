"""The cameras of a site, declared in one YAML file, as Frigate's operators declare theirs::

    cameras:
      front-door:
        source: rtsp://10.0.0.5/stream1       # rtsp://, http(s)://, tcp://, a file, a webcam index
        model: models/street                  # a vadx checkpoint
        normal: models/front-door-normal      # beside it, the camera's normal (learn-normal)
        detect: {on: 0.6, smooth: 5}          # vadx detect's settings; the rest default
        domain: flag                          # flag, suppress or off
      loading-bay:
        source: recordings/bay.mp4
        loop: true                            # a file played again and again
        pace: true                            # at its own frame rate, like a camera (default)
        model: models/street
        footage: {pre_capture: 5, post_capture: 5}   # seconds kept around each event
        enabled: false

Everything is checked when the file is read: an unknown key, a bad camera name, a number out of
range or a missing model is one :class:`~vadx.errors.ConfigError` naming the file and the place
(``cameras.yaml: cameras.front-door.detect.on: …``). Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vadx import limits
from vadx.errors import ConfigError, InputError
from vadx.settings import DOMAIN_MODES, DetectConfig, DomainMode

#: camera names: what topics, folders and URLs are made of
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
#: the detection settings a camera may set (those of ``vadx detect``)
DETECT_FIELDS = ("stride", "step", "smooth", "on", "off", "min_frames", "per_class")
#: seconds of footage kept before an event's start and after its end (each)
ROLL_SECONDS = (0.0, 60.0)
#: seconds an event's footage may last at most, everything included
FOOTAGE_SECONDS = (1.0, 600.0)
#: the format in a normality model's config.json (``vadx.normality.FORMAT``, read without torch)
NORMALITY_FORMAT = "vadx-normality"


class FootageSettings(BaseModel):
    """What is kept of each event (its ``clip.mp4``), as Frigate's ``pre_capture`` /
    ``post_capture``: the ``pre_capture`` seconds before the event starts, the event, and the
    ``post_capture`` seconds after it ends; never more than ``max_seconds`` in all (it is cut
    there: a long event cannot fill the memory). The seconds are the stream's. A camera also
    checks that ``pre_capture + post_capture < max_seconds`` (:class:`CameraConfig`).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    pre_capture: float = Field(3.0, ge=ROLL_SECONDS[0], le=ROLL_SECONDS[1])
    post_capture: float = Field(3.0, ge=ROLL_SECONDS[0], le=ROLL_SECONDS[1])
    max_seconds: float = Field(20.0, ge=FOOTAGE_SECONDS[0], le=FOOTAGE_SECONDS[1])


class CameraConfig(BaseModel):
    """One camera: where its frames come from, which model watches it and how.

    Attributes:
        name: letters, digits, ``-`` and ``_`` (at most 64; it names the camera's topic and
            folder).
        source: a URL (``rtsp://``, ``http(s)://``, ``tcp://``, …), a video file or a webcam
            index.
        model: a vadx checkpoint folder; cameras that name the same one share one copy.
        normal: a normality model of this camera (``vadx learn-normal``) run beside ``model``
            (a classifier) on the same frames: a second signal, "unusual for this camera",
            with its own events.
        detect: ``vadx detect``'s settings (``stride``, ``step``, ``smooth``, ``on``, ``off``,
            ``min_frames``, ``per_class``); those not given take detect's defaults.
        domain: what the domain check does with unfamiliar scenes: ``flag``, ``suppress``,
            ``off``.
        enabled: a disabled camera is declared but not read.
        loop: a file starts again at its end (a new session, as a reconnection is).
        pace: a file is read at its own frame rate, like a camera (frames may then drop when
            analysis lags); ``False`` reads it as fast as analysis goes, dropping nothing.
        footage: the seconds kept around each event (:class:`FootageSettings`).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    source: str | int
    model: str = Field(min_length=1)
    normal: str | None = Field(None, min_length=1)
    detect: dict[str, int | float | bool] = Field(default_factory=dict)
    domain: DomainMode = "flag"
    enabled: bool = True
    loop: bool = False
    pace: bool = True
    footage: FootageSettings = Field(default_factory=FootageSettings)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 0 <= value <= 63:
            raise ValueError(f"a webcam index is 0 to 63, got {value}")
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give a URL, a video file or a webcam index")
        return value

    @field_validator("detect")
    @classmethod
    def _detect(cls, value: dict[str, int | float | bool]) -> dict[str, int | float | bool]:
        unknown = sorted(set(value) - set(DETECT_FIELDS))
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(DETECT_FIELDS)}")
        for name, number in value.items():
            if name == "per_class":
                if not isinstance(number, bool):
                    raise ValueError(f"per_class must be true or false, got {number!r}")
            elif name in ("on", "off"):
                limits.check_range(name, number, (0, 1), ValueError)
            else:  # frame counts
                limits.check_range(name, number, (1, limits.FRAMES[1]), ValueError, integer=True)
        try:
            DetectConfig(**value)
        except InputError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("footage")
    @classmethod
    def _room_for_the_event(cls, footage: FootageSettings) -> FootageSettings:
        rolls = footage.pre_capture + footage.post_capture
        if rolls >= footage.max_seconds:
            raise ValueError(
                f"pre_capture + post_capture ({rolls:g} s) must be less than max_seconds "
                f"({footage.max_seconds:g} s): the event itself needs room"
            )
        return footage

    @property
    def detection(self) -> DetectConfig:
        """The camera's :class:`~vadx.settings.DetectConfig` (its domain mode included)."""
        return DetectConfig(**self.detect, domain=self.domain)  # type: ignore[arg-type]

    @property
    def is_file(self) -> bool:
        """Whether the source is a video file (or frame folder) rather than a live stream."""
        from vadx.video.live import is_live

        return not is_live(self.source)


def camera_from(name: str, document: Any, where: str = "camera") -> CameraConfig:
    """A :class:`CameraConfig` from its JSON/YAML ``document`` (without its name), or a
    :class:`~vadx.errors.ConfigError` that names ``where`` and the place of each fault."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: a camera is a mapping of settings, got {_kind(document)}")
    try:
        return CameraConfig(name=name, **document)
    except ValidationError as error:
        raise ConfigError(_first_fault(error, where)) from None
    except TypeError as error:  # a key that is not a string
        raise ConfigError(f"{where}: {error}") from None


def read_cameras(path: str | os.PathLike[str]) -> list[CameraConfig]:
    """The cameras declared in the YAML file ``path`` (module doc), in the file's order;
    relative sources and models are taken from the file's folder (a model that is not there
    is a name: ``vadx serve`` gives the served model of that name)."""
    import yaml

    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), _loader())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file: give the cameras' YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file: give the cameras' YAML file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise ConfigError(f"{path}: not valid YAML{place}: {problem}") from None
    if not isinstance(document, dict) or set(document) != {"cameras"}:
        extra = sorted(set(document) - {"cameras"}) if isinstance(document, dict) else []
        detail = f"unknown key {extra[0]!r}" if extra else "it has no 'cameras' mapping"
        raise ConfigError(f"{path}: {detail}: the file holds 'cameras:', a camera per name")
    cameras = document["cameras"]
    if not isinstance(cameras, dict) or not cameras:
        raise ConfigError(f"{path}: cameras: give at least one camera, as name: settings")
    found = []
    for name, settings in cameras.items():
        camera = camera_from(str(name), settings, f"{path}: cameras.{name}")
        found.append(_resolved(camera, path.parent))
        _check_normal(found[-1], f"{path}: cameras.{name}")
    return found


def _check_normal(camera: CameraConfig, where: str) -> None:
    """A camera's ``normal`` beside its model: a normality model, beside a classifier (models
    given by name, not path, are checked when they load)."""
    if camera.normal is None:
        return
    if model_kind(camera.normal) == "classifier":
        raise ConfigError(
            f"{where}.normal: {camera.normal} is a classifier: give a normality model of this "
            "camera (vadx learn-normal)"
        )
    if model_kind(camera.model) == "normality":
        raise ConfigError(
            f"{where}.normal: the camera's model {camera.model} is a normality model already: "
            "normal goes beside a classifier"
        )


def model_kind(path: str) -> str | None:
    """``normality`` or ``classifier`` for a checkpoint folder, by its config.json (None:
    not a folder with one, e.g. a served model's name)."""
    import json

    config = Path(path) / "config.json"
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    normality = isinstance(document, dict) and document.get("format") == NORMALITY_FORMAT
    return "normality" if normality else "classifier"


def _loader():
    """YAML's safe loader with YAML 1.2's booleans — only ``true``/``false``; in YAML 1.1
    ``on``, ``off``, ``yes`` and ``no`` are booleans too, and ``detect: {on: 0.6}`` would set
    ``True`` — and no key given twice (YAML would keep the last: a camera silently lost)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    boolean = "tag:yaml.org,2002:bool"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != boolean]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        boolean, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

    def unique_keys(loader, node, deep=False):  # YAML keeps the last of two same keys: refuse
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", mark)
            seen.add(key)
        return loader.construct_mapping(node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, unique_keys)
    return Loader


def _resolved(camera: CameraConfig, folder: Path) -> CameraConfig:
    """``camera`` with its relative paths taken from ``folder`` (the YAML file's)."""
    model, normal, source = camera.model, camera.normal, camera.source
    if not Path(model).is_absolute() and (folder / model).exists():
        model = str(folder / model)  # else a served model's name
    if normal is not None and not Path(normal).is_absolute() and (folder / normal).exists():
        normal = str(folder / normal)
    if camera.is_file and isinstance(source, str) and not Path(source).is_absolute():
        source = str(folder / source)
    return camera.model_copy(update={"model": model, "normal": normal, "source": source})


def _first_fault(error: ValidationError, where: str) -> str:
    """pydantic's first error as one line: ``where.place: message``."""
    fault = error.errors()[0]
    location = fault["loc"][:1] if fault["loc"][:1] == ("source",) else fault["loc"]
    place = ".".join(str(p) for p in location)  # a union's member names left out
    message = fault["msg"].removeprefix("Value error, ")
    if fault["type"] == "missing":
        message = "missing: every camera needs a source and a model (a vadx checkpoint)"
    elif location == ("source",) and not fault["type"].startswith("value_error"):
        message = "give a URL, a video file or a webcam index"
    elif location[:1] == ("footage",) and fault["type"] in ("extra_forbidden", "model_type"):
        message = f"footage takes {', '.join(FootageSettings.model_fields)} (seconds)"
    elif fault["type"] == "extra_forbidden":
        known = ", ".join(n for n in CameraConfig.model_fields if n != "name")
        message = f"unknown setting; a camera has {known}"
    elif fault["type"] == "literal_error" and fault["loc"][-1] == "domain":
        message = f"must be {', '.join(DOMAIN_MODES)}"
    elif fault["type"] == "string_pattern_mismatch":
        message = "a camera's name is letters, digits, '-' and '_' (at most 64)"
    got = fault.get("input")
    shown = "" if isinstance(got, dict) or fault["type"] == "missing" else f" (got {got!r})"
    return f"{where}.{place}: {message}{shown}" if place else f"{where}: {message}{shown}"


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
