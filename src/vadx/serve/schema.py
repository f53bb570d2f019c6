"""The HTTP API's contract: request and response bodies, the error body, the statuses each
route answers with, the media types of file responses and the links between operations.

:func:`openapi` builds the OpenAPI document from these and the routes, so that what
``/openapi.json`` says is what the server does (checked by fuzzing it with schemathesis in the
test suite).
"""

from __future__ import annotations

import functools
from typing import Any, Literal, TypedDict, get_type_hints

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from vadx.detect import DetectConfig, Event
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL
from vadx.video.decode import VideoInfo

ID_PATTERN = r"^[0-9a-f]{16}$"


class ApiError(BaseModel):
    """Every error the API answers with: what is wrong and what to do, in API terms."""

    error: str = Field(examples=["no video '0123456789abcdef'"])


#: what each error status means, as the document says it
ERRORS = {
    400: "The request cannot be carried out (e.g. frames outside the video, a target the model "
    "does not have, a window longer than the video, an empty upload) or its body cannot be "
    "read (not UTF-8 JSON)",
    401: "Missing or wrong API token: `Authorization: Bearer TOKEN` or `?token=TOKEN`",
    403: "A browser page of another site may not change anything here (`Sec-Fetch-Site` or "
    "`Origin` says so)",
    404: "No such video, job, model or file",
    409: "The job is in the wrong state: it has not finished (files) or has finished (cancel)",
    413: "The upload, or another request's body, is larger than the server's limit",
    429: "Too many jobs are queued or running: try again after `Retry-After` seconds",
    415: "The upload is not a video vadx can analyse (its container or its frames)",
    422: "The request does not match this document: the field and the rule it breaks",
    503: "The cameras' database cannot be written now (the disk is full, the database server "
    "is away): nothing was changed; try again later (`GET /api/recording` says why)",
}


class MediaDoc(TypedDict):
    """An OpenAPI media type entry: the JSON schema of a body of that type."""

    schema: dict[str, str]


class ResponseDoc(TypedDict, total=False):
    """A route's ``responses=`` entry of one status: its body's model or its content by media
    type, and what it means."""

    model: type[BaseModel]
    description: str
    content: dict[str, MediaDoc]


class LinkDoc(TypedDict):
    """An OpenAPI link: the operation that takes values of a response, and which."""

    operationId: str
    description: str
    parameters: dict[str, str]


def errors(*codes: int) -> dict[int | str, ResponseDoc]:
    """The ``responses=`` entries of error statuses ``codes``."""
    return {code: {"model": ApiError, "description": ERRORS[code]} for code in codes}


# ----------------------------------------------------------------------------- requests
def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: request models are strict (``"yes"`` is no boolean, ``"3"`` no integer), but an integer is
#: any number without a fraction, as JSON Schema says: ``3.0`` is the integer 3
whole_numbers = functools.partial(field_validator, mode="before")
#: detection's defaults: those of ``vadx detect`` (:class:`~vadx.detect.DetectConfig`)
DETECT = DetectConfig()


class DetectSettings(BaseModel):
    """Detection settings (defaults: those of ``vadx detect``). Rules across fields: ``off ≤
    on``; one window — the model's clip length × ``step`` frames — must fit in the video."""

    model_config = ConfigDict(extra="forbid", strict=True)
    stride: int | None = Field(
        None, ge=1, description="frames between windows (default: a quarter of a window's span)"
    )
    step: int | None = Field(
        None,
        ge=1,
        description="frames between a window's frames (default: the training clips' spacing)",
    )
    smooth: int = Field(
        DETECT.smooth, ge=1, le=10_000, description="frames of the score's moving average"
    )
    on: float = Field(
        DETECT.on, ge=0, le=1, description="an event starts when the score reaches this"
    )
    off: float = Field(DETECT.off, ge=0, le=1, description="…and ends below this (off ≤ on)")
    min_frames: int = Field(DETECT.min_frames, ge=1, description="shortest event kept, in frames")
    domain: Literal["flag", "suppress", "off"] = Field(
        DETECT.domain,
        description="windows outside the model's training domain: flag them, suppress "
        "their alerts (needs a calibrated model, else 400), or no check",
    )

    _whole = whole_numbers("stride", "step", "smooth", "min_frames")(_whole)


class JobRequest(BaseModel):
    """A job: ``detect`` a whole video, or ``explain`` the clip of frames ``start``…``end``
    (``0 ≤ start ≤ end < the video's frames``; default: the whole video). An explanation also
    runs detection (``detect``) for its report's timeline."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"kind": "detect", "video": "3f2a9c0d1b4e5f60"},
                {
                    "kind": "detect",
                    "video": "3f2a9c0d1b4e5f60",
                    "model": "best",
                    "detect": {"on": 0.6, "off": 0.4, "min_frames": 5, "domain": "suppress"},
                },
                {
                    "kind": "explain",
                    "video": "3f2a9c0d1b4e5f60",
                    "start": 120,
                    "end": 158,
                    "methods": ["gradcam", "integrated_gradients"],
                    "target": "predicted",
                    "view": "contour",
                },
            ]
        },
    )
    kind: Literal["detect", "explain"]
    video: str = Field(pattern=ID_PATTERN, description="an id from POST /api/videos")
    model: str | None = Field(
        None, max_length=200, description="a name from /api/models (default: the first)"
    )
    detect: DetectSettings = Field(default_factory=DetectSettings)
    start: int | None = Field(None, ge=0, description="explain: first frame (default 0)")
    end: int | None = Field(
        None, ge=0, description="explain: last frame, ≥ start (default: the video's last)"
    )
    methods: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METHODS),
        min_length=1,
        max_length=len(METHODS),
        description=f"explain: spatial methods, of {', '.join(METHODS)}",
    )
    temporal: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEMPORAL),
        max_length=len(TEMPORAL),
        description=f"explain: temporal estimators, of {', '.join(TEMPORAL)}",
    )
    target: str = Field(
        "predicted",
        max_length=200,
        description="explain: `predicted`, `anomaly`, one of the "
        "model's classes or a class index (ASCII digits)",
    )
    view: Literal["heatmap", "contour", "contours"] = "heatmap"
    trust: bool = Field(
        False,
        description="explain: give every map and frame curve its trust verdict (trustworthy, "
        "weak, contradictory; about 3.4× the explanation's time), shown in the report too",
    )
    exports: list[Literal["frames", "mp4", "gif", "sheets"]] = Field(
        default_factory=list,
        description="explain: pictures to render besides report.html (which draws every "
        "method, view and frame itself): frames/METHOD/NNNNNN.png, METHOD.mp4, METHOD.gif, "
        "contact sheets and figures",
    )

    _whole = whole_numbers("start", "end")(_whole)


class Review(BaseModel):
    """Whether a person has reviewed an event."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"reviewed": True}]}
    )
    reviewed: bool


# ---------------------------------------------------------------------------- responses
class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: list[str]
    jobs: dict[str, int] = Field(description="how many jobs are in each state")
    token_required: bool
    recording: Literal["recording", "stopped"] | None = Field(
        None,
        description="whether the cameras' events are stored (`GET /api/recording` says why "
        "not); null when the server watches no cameras",
    )


class ModelInfo(BaseModel):
    name: str
    id: str | None = Field(description="the checkpoint's model id (hash of its weights)")
    kind: Literal["classifier", "normality"] = Field(
        description="classifier: trained on labelled clips, explained by explain jobs; "
        "normality: one camera's normal (vadx learn-normal), whose detection draws its "
        "anomaly map over the video (unusual.mp4) and takes no explain job"
    )
    backbone: str
    classes: list[str]
    normal: str | None = Field(description="the class meaning no anomaly")
    frames: int = Field(description="frames per clip (1 for a normality model: frame by frame)")
    frame_size: list[int] = Field(description="height, width")


class MethodInfo(BaseModel):
    name: str = Field(description="what requests name it by (methods, temporal)")
    display_name: str
    description: str
    kind: Literal["spatial", "temporal"] = Field(
        description="spatial: maps in each frame (methods); temporal: which frames (temporal)"
    )
    default: bool = Field(description="explained when a request names none")


class VideoRecord(BaseModel):
    """An uploaded video as the server keeps it; the rest of :class:`Video` is its
    :class:`~vadx.video.decode.VideoInfo` (but its path)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(description="the client's file name (display only)")
    bytes: int
    sha256: str
    file: str = Field(description="the stored file's name, e.g. video.mp4")


Video = create_model(
    "Video",
    __base__=VideoRecord,
    **{k: (v, ...) for k, v in get_type_hints(VideoInfo).items() if k != "path"},
)


class DetectResult(BaseModel):
    events: list[Event]
    frames: int
    fps: float
    windows: int
    settings: dict[str, Any]
    domain: dict[str, Any] = Field(
        description="whether the model could check its domain, the "
        "verdict and a `message` for people"
    )


class ExplainResult(BaseModel):
    frames: list[int] = Field(description="the explained clip's frames")
    predicted: str
    probability: float
    target: str
    report: str = Field(description="the report's file name, under files/")
    trust: dict[str, str] | None = Field(
        None, description="each map's and curve's trust verdict, by method (when asked)"
    )


class JobParams(JobRequest):
    """A job's request as the server runs it (and keeps it, in ``job.json``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=None)
    model: str = Field(description="the model the job runs")  # type: ignore[assignment]

    @classmethod
    def of(cls, params: dict[str, Any]) -> JobParams:
        """The parameters a job keeps as JSON (jobs from before a field existed: its default)."""
        return cls.model_validate(params, strict=False)

    def detect_config(self) -> DetectConfig:
        """The detection settings, as :func:`vadx.detect.detect` takes them."""
        return DetectConfig(**self.detect.model_dump())


class Job(BaseModel):
    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["detect", "explain"]
    params: JobParams
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    stage: str
    error: str | None = Field(description="why the job failed, in API terms")
    result: DetectResult | ExplainResult | None
    files: list[str] = Field(description="what the job wrote, for files/{name} (once done)")
    reviews: dict[str, float] = Field(
        description="a detection's events marked reviewed: the event's index → when (seconds "
        "since the epoch)"
    )
    created: float
    started: float | None
    finished: float | None


class Scores(BaseModel):
    classes: list[str]
    times: list[float] = Field(description="seconds, per frame")
    anomaly: list[float] = Field(description="smoothed anomaly score, per frame")
    probabilities: list[list[float]] = Field(description="class probabilities, per frame")
    on: float
    off: float
    window: int
    step: int
    domain: list[float] | None = Field(
        description="domain score per frame (> 1: outside); null for an uncalibrated model"
    )


# ------------------------------------------------------------------------ files, links
#: the media type of each file a job writes or a video is stored as, by suffix
MEDIA_TYPES = {
    ".html": "text/html",
    ".json": "application/json",
    ".csv": "text/csv",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".npz": "application/octet-stream",
    ".txt": "text/plain",
}
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".mpg": "video/mpeg",
    ".ts": "video/mp2t",
}


def media_type(name: str, types: dict[str, str] = MEDIA_TYPES) -> str:
    """The media type a file called ``name`` is served as."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return types.get(suffix, "application/octet-stream")


def file_content(types: dict[str, str]) -> dict[str, MediaDoc]:
    """An OpenAPI ``content`` entry: any of ``types`` (JSON files: any JSON; others: bytes)."""
    media = sorted(set(types.values()) | {"application/octet-stream"})
    binary = {"type": "string", "format": "binary"}
    return {m: MediaDoc(schema={} if m == "application/json" else binary) for m in media}


def _link(operation: str, description: str, **parameters: str) -> LinkDoc:
    return LinkDoc(operationId=operation, description=description, parameters=parameters)


#: OpenAPI links: which response values later requests take (stateful clients and fuzzers)
LINKS = {
    ("upload", "201"): {
        "GetVideo": _link("video", "the uploaded video", video_id="$response.body#/id"),
        "GetVideoFile": _link("video_file", "its file", video_id="$response.body#/id"),
        "ListJobs": _link("jobs", "its jobs", video="$response.body#/id"),
        "DeleteVideo": _link("delete_video", "delete it", video_id="$response.body#/id"),
        "Detect": {
            "operationId": "submit",
            "description": "detect anomalies in it",
            "requestBody": {"kind": "detect", "video": "$response.body#/id"},
        },
        "Explain": {
            "operationId": "submit",
            "description": "explain it, one clip over the whole video",
            "requestBody": {
                "kind": "explain",
                "video": "$response.body#/id",
                "methods": ["gradcam"],
                "temporal": ["gradient_norm"],
            },
        },
    },
    ("submit", "202"): {
        "GetJob": _link("job", "the job's state", job_id="$response.body#/id"),
        "CancelJob": _link("cancel", "cancel it", job_id="$response.body#/id"),
        "DeleteJob": _link("delete_job", "delete it once finished", job_id="$response.body#/id"),
        "GetScores": _link("scores", "a detection's scores", job_id="$response.body#/id"),
    },
    ("job", "200"): {
        "GetFile": _link(
            "job_file",
            "the first file it wrote",
            job_id="$response.body#/id",
            name="$response.body#/files/0",
        ),
        "GetReport": _link(
            "job_file",
            "an explanation's report",
            job_id="$response.body#/id",
            name="$response.body#/result/report",
        ),
    },
}


def openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document: FastAPI's, with the links added and the ``detail``-style
    422 FastAPI adds to every route with parameters removed (this API answers 422 with
    :class:`ApiError`, and only where the document says so)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for item in document["paths"].values():
            for operation in item.values():
                responses = operation["responses"]
                if "HTTPValidationError" in str(responses.get("422", "")):
                    del responses["422"]
                for status, links in LINKS.items():
                    if operation["operationId"] == status[0] and status[1] in responses:
                        responses[status[1]]["links"] = links
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Scores"] = Scores.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema
