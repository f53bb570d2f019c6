"""``vadx serve``: the HTTP API (OpenAPI at ``/docs``) and the web page at ``/``.

Every error is JSON — ``{"error": "what is wrong"}`` with a 4xx status — and nothing outside the
data folder is ever read or written. See ``docs/serve.md`` for the API.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from vadx._version import __version__
from vadx.clip import ExplainSettings, parse_target
from vadx.detect import DetectConfig, Detection, check_domain_mode, detect, window_spacing
from vadx.detect.files import write_detection
from vadx.errors import VadxError
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL
from vadx.explain.targets import check_target as check_model_target
from vadx.explain_video import explain_video
from vadx.files import write_json
from vadx.models import load_model
from vadx.models.crnn import CRNN
from vadx.models.domain_stats import missing_note, verdict_line
from vadx.report import VIEWER
from vadx.serve import schema
from vadx.serve.guard import Guard, Limits, uvicorn_config
from vadx.serve.jobs import FINISHED, Job, JobCancelled, JobFailed, JobStore, TooLate
from vadx.serve.schema import ERRORS, JobRequest, errors, file_content, media_type
from vadx.serve.storage import (
    ID,
    UploadError,
    VideoStore,
    label,
    redact_paths,
    without_paths,
)

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
#: detections kept in memory for the explanations that follow them
KEPT_DETECTIONS = 16
SCORES = {"$ref": "#/components/schemas/Scores"}
#: Swagger UI's and ReDoc's files, from the fastapi-offline package (no CDN: /docs and /redoc
#: work offline)
_SWAGGER = Path(fastapi_offline.__file__).parent / "static"
DOCS_FILES = {
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css"),
    "redoc.standalone.js": (_SWAGGER / "redoc.standalone.js", "text/javascript"),
    "favicon.png": (_SWAGGER / "favicon.png", "image/png"),
}


@functools.cache
def docs_asset(name: str) -> bytes:
    """A file of :data:`DOCS_FILES`; ReDoc's sidebar logo comes from here, not its CDN."""
    content = DOCS_FILES[name][0].read_bytes()
    return content.replace(b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/docs/favicon.png")


#: the two ways to give the token (``vadx serve --token``); documented as security schemes
BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="the token the server was started with"
)
QUERY_TOKEN = APIKeyQuery(
    name="token", auto_error=False, scheme_name="token", description="the token in the query"
)
LOG = logging.getLogger("vadx.serve")


class Server:
    """The state behind the app: models, videos, jobs."""

    def __init__(
        self,
        models: dict[str, CRNN],
        data: Path,
        token: str | None = None,
        max_upload_bytes: int = 200_000_000,
        workers: int = 1,
        limits: Limits | None = None,
    ) -> None:
        if not models:
            raise VadxError("give at least one model to serve")
        if token is not None and not token.strip():
            raise VadxError(
                "the token is empty: every request would pass as authorised; give a token "
                "of at least one character, or none for a server on this machine only"
            )
        self.models, self.token, self.limits = models, token, limits or Limits()
        self.locks = {name: threading.Lock() for name in models}
        self.data = Path(data)
        self.videos = VideoStore(self.data, max_upload_bytes)
        #: recent detections by (video, model, settings), oldest first (see _detection)
        self.detections: dict[tuple[str, str, str], Detection] = {}
        self.jobs = JobStore(self.data, {"detect": self._detect, "explain": self._explain}, workers)

    def model_name(self, name: str | None) -> str:
        if name is None:
            return next(iter(self.models))
        if name not in self.models:
            raise HTTPException(404, f"no model {name!r}; served: {', '.join(self.models)}")
        return name

    # ------------------------------------------------------------------------- runners
    @contextlib.contextmanager
    def _client_errors(self, job: Job) -> Iterator[None]:
        """A job's failure as the API's client should read it: no server path, API fields
        instead of command-line options; anything unexpected logged here, not shown there."""
        try:
            self.videos.get(job.params["video"])
        except KeyError:
            raise JobFailed(f"video {job.params['video']} was deleted before the job ran") from None
        try:
            yield
        except (JobCancelled, JobFailed):
            raise
        except Exception as err:
            if job.params["video"] not in self.videos:  # its file went from under it
                raise JobFailed(
                    f"video {job.params['video']} was deleted while the job ran"
                ) from err
            if not isinstance(err, VadxError):
                LOG.exception("job %s (%s) failed", job.id, job.kind)
                raise JobFailed(
                    "the job failed on an internal error; the server's log has the details"
                ) from err
            video = self.videos.get(job.params["video"])
            raise JobFailed(
                api_message(err, self.videos.path(job.params["video"]), video["name"])
            ) from err

    def _detect(self, job: Job, out: Path, progress) -> dict[str, Any]:
        with self._client_errors(job):
            result = self._run_detect(job, out, progress)
            self._redact(job, out)
        return result

    def _explain(self, job: Job, out: Path, progress) -> dict[str, Any]:
        with self._client_errors(job):
            result = self._run_explain(job, out, progress)
            self._redact(job, out)
        return result

    def _redact(self, job: Job, out: Path) -> None:
        """Server paths in what a job wrote → names clients know: the video's uploaded name,
        the model's served name, the job's folder as ``.``."""
        p, model = job.params, self.models[job.params["model"]]
        names = {self.videos.path(p["video"]): label(self.videos.get(p["video"])["name"]), out: "."}
        if model.checkpoint is not None:
            names[model.checkpoint.path] = label(p["model"])
        redact_paths(out, names)

    def _detection(self, job: Job, progress) -> Detection:
        """The detection of the job's video with its model and settings: run once, then kept
        (the last few) for the explanations of the same video."""
        p = job.params
        key = (p["video"], p["model"], json.dumps(p["detect"], sort_keys=True))
        found = self.detections.pop(key, None)
        if found is None:
            model, path = self.models[p["model"]], self.videos.path(p["video"])
            found = detect(model, path, DetectConfig(**p["detect"]), progress)
        self.detections[key] = found
        while len(self.detections) > KEPT_DETECTIONS:
            self.detections.pop(next(iter(self.detections)))
        return found

    def _run_detect(self, job: Job, out: Path, progress) -> dict[str, Any]:
        p = job.params
        model, path = self.models[p["model"]], self.videos.path(p["video"])
        with self.locks[p["model"]]:
            found = self._detection(job, progress)
        write_detection(out, found, path, model.model_id, annotate=False)
        write_scores(out / "scores.json", found)
        return {
            "events": [e.__dict__ for e in found.events],
            "frames": found.info.num_frames,
            "fps": found.info.fps,
            "windows": len(found.windows),
            "settings": found.settings,
            "domain": domain_report(found, model),
        }

    def _run_explain(self, job: Job, out: Path, progress) -> dict[str, Any]:
        p = job.params
        model, path = self.models[p["model"]], self.videos.path(p["video"])
        with self.locks[p["model"]]:
            found = self._detection(job, progress)  # the video's, when it was detected already
            summary = explain_video(
                model,
                path,
                out,
                _explain_settings(p),
                start=p["start"],
                end=p["end"],
                progress=progress,
                detection=found,
            )
        write_scores(out / "scores.json", found)  # the report's timeline, as a detection's
        clip = summary["clips"][0]
        return {
            "frames": clip["frames"],
            "predicted": clip["predicted"],
            "probability": clip["probability"],
            "target": clip["target"],
            "report": "report.html",
        }


def shown(message: str, most: int = 600) -> str:
    """An error message as the API sends it: at most ``most`` characters, however much of
    the client's own input it quotes."""
    return message if len(message) <= most else message[: most - 1] + "…"


def write_scores(path: Path, found: Detection) -> None:
    """A detection's per-frame scores as ``GET /api/jobs/{job_id}/scores`` serves them."""
    domain = found.frame_domain
    write_json(
        path,
        {
            "classes": list(found.class_names),
            "times": found.timestamps.round(4).tolist(),
            "anomaly": found.smoothed_score.round(4).tolist(),
            "probabilities": found.frame_probabilities.round(4).tolist(),
            "on": found.settings["on"],
            "off": found.settings["off"],
            "window": found.settings["window"],
            "step": found.settings["step"],
            "domain": None if domain is None else domain.round(3).tolist(),
        },
        indent=0,
    )


#: command-line options named in library messages → the API fields that set the same thing
#: the request fields that set the library's settings, where their names differ
API_FIELDS = {"step": "detect.step", "stride": "detect.stride", "domain": "detect.domain"}


def api_words(err: VadxError) -> str:
    """A library error as the API's client reads it: its settings named by request fields."""
    return err.worded(lambda field: API_FIELDS.get(field, field))


def api_message(err: VadxError, path: Path, name: str) -> str:
    """A library error for the API's client: settings named by request fields, the stored
    video's path replaced by its name."""
    return without_paths(api_words(err), path, name)


def check_job(params: dict[str, Any], video: dict[str, Any], model: CRNN) -> None:
    """Refuse, before it runs, a job that cannot succeed on ``video`` with ``model``: bad
    detection settings, a window longer than the video, an explanation's frames, target or
    method names. Raises :class:`VadxError` worded for the API's client."""
    config = DetectConfig(**params["detect"])
    check_domain_mode(model, config.domain, show_path=False)
    step, span, _ = window_spacing(model, config)
    frames = video["num_frames"]
    if frames < span:
        fix = "choose a smaller detect.step" if step > 1 else "upload a longer video"
        raise VadxError(
            f"the video has {frames} frames, fewer than one window of the model "
            f"({model.config.num_frames} frames {step} apart = {span}); {fix}"
        )
    if params["kind"] == "explain":
        _explain_settings(params)
        check_target(params["target"], model)
        start = params["start"] or 0
        end = frames - 1 if params["end"] is None else params["end"]
        if not start <= end <= frames - 1:
            raise VadxError(
                f"frames {start}–{end} are not inside the video's {frames} frames "
                f"(0–{frames - 1}); give 0 ≤ start ≤ end ≤ {frames - 1}"
            )
        clip = model.config.num_frames
        if end - start + 1 < clip:
            raise VadxError(
                f"frames {start}–{end} are {end - start + 1}, fewer than the model's clip of "
                f"{clip} frames; give end ≥ start + {clip - 1}"
            )


def _explain_settings(params: dict[str, Any]) -> ExplainSettings:
    target = params["target"]
    return ExplainSettings(
        methods=tuple(params["methods"]),
        temporal=tuple(params["temporal"]),
        target=parse_target(target),
        view=params["view"],
        exports=tuple(params.get("exports", ())),  # jobs from before exports existed: none
    )


def check_target(target: str, model: CRNN) -> None:
    """Refuse a target the model cannot explain (:func:`vadx.explain.targets.check_target`),
    worded for the API: ``predicted``, ``anomaly``, one of its classes or a class index."""
    try:
        check_model_target(model, parse_target(target))
    except VadxError:
        names = model.class_names
        raise VadxError(
            f"target must be predicted, anomaly, one of the model's classes "
            f"({', '.join(names)}) or a class index 0–{len(names) - 1}; got {target!r}"
        ) from None


def domain_report(found: Detection, model: CRNN) -> dict[str, Any]:
    """The detection's domain verdict with the sentence the page shows (no server paths)."""
    if not found.domain.get("checked"):
        off = found.settings.get("domain") == "off"
        return {**found.domain, "message": None if off else missing_note(model, False)}
    return {**found.domain, "message": verdict_line(found.domain)}


def methods_catalogue() -> list[dict[str, Any]]:
    """Every explanation method and temporal estimator, the defaults first (in their order):
    names, description, default or not."""
    catalogue = []
    for registry, defaults, kind in (
        (METHODS, DEFAULT_METHODS, "spatial"),
        (TEMPORAL, DEFAULT_TEMPORAL, "temporal"),
    ):
        for name in [*defaults, *(n for n in registry if n not in defaults)]:
            cls = registry[name]
            catalogue.append(
                {
                    "name": name,
                    "display_name": cls.display_name,
                    "kind": kind,
                    "description": cls.description,
                    "default": name in defaults,
                }
            )
    return catalogue


def _describe(name: str, model: CRNN) -> dict[str, Any]:
    c = model.config
    return {
        "name": name,
        "id": model.model_id,
        "backbone": c.backbone,
        "classes": list(model.class_names),
        "normal": c.normal_class,
        "frames": c.num_frames,
        "frame_size": list(c.frame_size),
    }


DESCRIPTION = """Detect and explain anomalies in video.

Upload a video (`POST /api/videos`), start a job on it (`POST /api/jobs`: `detect` or
`explain`), poll the job (`GET /api/jobs/{job_id}`) until it is `done`, then read what it wrote
(`result`, `files`, `GET /api/jobs/{job_id}/files/{name}`). Every error is JSON,
`{"error": "…"}`, with the status each operation lists. When the server runs with a token,
every operation but `GET /api/health` needs it: `Authorization: Bearer TOKEN` or
`?token=TOKEN`."""


def allowed_methods(app: FastAPI, scope: dict) -> list[str]:
    """Every method some route of ``app`` answers at the path of ``scope``."""
    methods: set[str] = set()
    for route in app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def create_app(server: Server) -> FastAPI:
    """The FastAPI application of ``server``."""
    app = FastAPI(
        title="vadx", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.openapi = lambda: schema.openapi(app)  # type: ignore[method-assign]
    app.state.server = server
    app.add_middleware(
        Guard, limits=server.limits, token=server.token, upload_bytes=server.videos.max_bytes
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        if err.status_code == 405:
            allow = allowed_methods(app, request.scope)
            return JSONResponse(
                {"error": f"{request.method} is not allowed here; use {', '.join(allow)}"},
                405,
                headers={"Allow": ", ".join(allow)},
            )
        return JSONResponse({"error": shown(str(err.detail))}, err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        LOG.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the server's log has the details"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(x) for x in e['loc'] if x != 'body')}: {e['msg']}" for e in err.errors()
        ]
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, 422)

    guarded = server.token is not None
    auth = (401,) if guarded else ()

    def authorised(
        header: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        query: Annotated[str | None, Depends(QUERY_TOKEN)],
    ) -> None:
        given = [query or "", header.credentials if header is not None else ""]
        if not any(hmac.compare_digest(g.encode(), str(server.token).encode()) for g in given):
            raise HTTPException(401, ERRORS[401].replace("`", ""), {"WWW-Authenticate": "Bearer"})

    api = [Depends(authorised)] if guarded else []

    def route(
        method: str, path: str, name: str, *statuses: int, file: tuple | None = None, **options: Any
    ) -> Any:
        """A route of the API: the token required when set, its error statuses documented;
        ``file=(description, content)``: it answers with a file of one of those types."""
        unsafe = (403,) if method in ("post", "put", "delete") else ()
        responses = errors(*auth, *unsafe, *statuses)
        if file is not None:
            options["response_class"] = FileResponse
            responses[200] = {"description": file[0], "content": file[1]}
        add = getattr(app, method)
        return add(path, operation_id=name, dependencies=api, responses=responses, **options)

    def video_or_404(video_id: str) -> dict[str, Any]:
        try:
            return server.videos.get(video_id)
        except KeyError:
            raise HTTPException(404, f"no video {video_id!r}") from None

    def job_or_404(job_id: str) -> Job:
        job = server.jobs.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @app.get("/api/health", operation_id="health", response_model=schema.Health)
    def health() -> dict[str, Any]:
        """Liveness, version, models, and how many jobs are in each state (no token needed)."""
        states: dict[str, int] = {}
        for job in server.jobs.jobs.values():
            states[job.state] = states.get(job.state, 0) + 1
        return {
            "status": "ok",
            "version": __version__,
            "models": list(server.models),
            "jobs": states,
            "token_required": guarded,
        }

    @route("get", "/api/models", "models", response_model=list[schema.ModelInfo])
    def models() -> list[dict[str, Any]]:
        """The served models: classes, clip length, frame size."""
        return [_describe(name, model) for name, model in server.models.items()]

    @route("get", "/api/methods", "methods", response_model=list[schema.MethodInfo])
    def methods() -> list[dict[str, Any]]:
        """The explanation methods (spatial) and estimators (temporal) a request may name."""
        return methods_catalogue()

    @route(
        "post",
        "/api/videos",
        "upload",
        400,
        413,
        415,
        422,
        status_code=201,
        response_model=schema.Video,
    )
    def upload(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        """Upload a video (multipart field ``file``; MP4/MOV, MKV/WebM, AVI, MPEG-PS/TS). It is
        checked by its content — every frame must decode as detection will read it — and
        refused with 415 otherwise; the file name is kept for display only."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > server.videos.max_bytes + 65536:
            raise HTTPException(
                413,
                f"the upload is larger than the limit of {server.videos.max_bytes / 1e6:.0f} MB",
            )
        try:
            return server.videos.save(file.file, file.filename)
        except UploadError as err:
            raise HTTPException(err.status, str(err)) from None

    @route("get", "/api/videos", "videos", response_model=list[schema.Video])
    def videos() -> list[dict[str, Any]]:
        """Every uploaded video."""
        return server.videos.all()

    @route("get", "/api/videos/{video_id}", "video", 404, response_model=schema.Video)
    def video(video_id: str) -> dict[str, Any]:
        """One video: name, size, frames, fps, codec, sha256."""
        return video_or_404(video_id)

    @route(
        "get",
        "/api/videos/{video_id}/file",
        "video_file",
        404,
        file=("The video as uploaded", file_content(schema.VIDEO_TYPES)),
    )
    def video_file(video_id: str) -> FileResponse:
        """The video itself."""
        video_or_404(video_id)
        path = server.videos.path(video_id)
        return FileResponse(path, media_type=media_type(path.name, schema.VIDEO_TYPES))

    @route(
        "get",
        "/api/videos/{video_id}/play",
        "video_play",
        404,
        file=("The video as browsers play it (H.264 MP4)", file_content({".mp4": "video/mp4"})),
    )
    def video_play(video_id: str) -> FileResponse:
        """The video as a browser plays it: the upload when it is H.264 in MP4, else an H.264
        copy made on the first request (then kept)."""
        video_or_404(video_id)
        return FileResponse(server.videos.playable(video_id), media_type="video/mp4")

    @route(
        "get",
        "/api/videos/{video_id}/frames/{frame}",
        "video_frame",
        404,
        422,
        file=("The frame, 160 px wide at most", file_content({".jpg": "image/jpeg"})),
    )
    def video_frame(video_id: str, frame: int) -> Response:
        """One frame of the video as a small JPEG (the events' thumbnails)."""
        record = video_or_404(video_id)
        if not 0 <= frame < record["num_frames"]:
            raise HTTPException(
                404, f"video {video_id} has no frame {frame} (0–{record['num_frames'] - 1})"
            )
        return Response(server.videos.thumbnail(video_id, frame), media_type="image/jpeg")

    @route(
        "delete",
        "/api/videos/{video_id}",
        "delete_video",
        404,
        status_code=204,
        response_class=Response,
    )
    def delete_video(video_id: str) -> Response:
        """Delete a video (its jobs' results stay)."""
        video_or_404(video_id)
        server.videos.delete(video_id)
        return Response(status_code=204)

    @route(
        "post",
        "/api/jobs",
        "submit",
        400,
        404,
        413,
        422,
        429,
        status_code=202,
        response_model=schema.Job,
    )
    def submit(request: JobRequest) -> dict[str, Any]:
        """Start detection or an explanation in the background; poll ``/api/jobs/{job_id}``.
        A job that cannot succeed on this video and model is refused here (400), never
        accepted and failed later; with too many jobs waiting, 429."""
        waiting = sum(j.state not in FINISHED for j in server.jobs.jobs.values())
        if waiting >= server.limits.queue:
            raise HTTPException(
                429,
                f"{waiting} jobs are queued or running, the most this server takes; "
                "try again later",
                {"Retry-After": "10"},
            )
        video = video_or_404(request.video)
        params = request.model_dump()
        params["model"] = server.model_name(request.model)
        try:
            check_job(params, video, server.models[params["model"]])
        except VadxError as err:
            raise HTTPException(400, api_words(err)) from None
        return server.jobs.submit(request.kind, params).public()

    @route("get", "/api/jobs", "jobs", response_model=list[schema.Job])
    def jobs(video: str | None = None) -> list[dict[str, Any]]:
        """Every job (of one video with ``?video=ID``), newest first."""
        found = [
            j for j in server.jobs.jobs.values() if video is None or j.params["video"] == video
        ]
        return [j.public() for j in sorted(found, key=lambda j: -j.created)]

    @route("get", "/api/jobs/{job_id}", "job", 404, response_model=schema.Job)
    def job(job_id: str) -> dict[str, Any]:
        """A job's state (queued, running, done, failed, cancelled), progress and result; once
        done, the files it wrote."""
        return job_or_404(job_id).public()

    @route("post", "/api/jobs/{job_id}/cancel", "cancel", 404, 409, response_model=schema.Job)
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job: once this answers 200, the job ends ``cancelled``
        (409 when it had already finished: too late)."""
        job_or_404(job_id)
        try:
            return server.jobs.cancel(job_id).public()
        except TooLate as err:
            raise HTTPException(409, str(err)) from None

    @route(
        "put",
        "/api/jobs/{job_id}/events/{event}/review",
        "review_event",
        400,
        404,
        409,
        422,
        response_model=schema.Job,
    )
    def review_event(job_id: str, event: int, review: schema.Review) -> dict[str, Any]:
        """Mark a detection's event (its index in ``result.events``) reviewed, or not: kept
        with the job, for everyone who opens it."""
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}, it has no events yet")
        events = (job.result or {}).get("events", [])
        if job.kind != "detect" or not 0 <= event < len(events):
            raise HTTPException(404, f"job {job_id} has no event {event} ({len(events)} event(s))")
        return server.jobs.review(job_id, event, review.reviewed).public()

    @route(
        "delete",
        "/api/jobs/{job_id}",
        "delete_job",
        404,
        409,
        status_code=204,
        response_class=Response,
    )
    def delete_job(job_id: str) -> Response:
        """Delete a finished job and the files it wrote (409 while it is queued or running:
        cancel it first)."""
        job = job_or_404(job_id)
        if job.state not in FINISHED:
            raise HTTPException(
                409,
                f"job {job_id} is {job.state}; cancel it first (POST /api/jobs/{job_id}/cancel)",
            )
        server.jobs.delete(job_id)
        return Response(status_code=204)

    @route(
        "get",
        "/api/jobs/{job_id}/scores",
        "scores",
        404,
        409,
        file=("A detection's per-frame scores", {"application/json": {"schema": SCORES}}),
    )
    def scores(job_id: str) -> FileResponse:
        """A detection's per-frame times, smoothed anomaly score, class probabilities and
        domain scores (an explanation's: those of the detection behind its timeline)."""
        return job_file(job_id, "scores.json")

    @route(
        "get",
        "/api/jobs/{job_id}/files/{name:path}",
        "job_file",
        404,
        409,
        file=("The file, by its type", file_content(schema.MEDIA_TYPES)),
    )
    def job_file(job_id: str, name: str) -> FileResponse:
        """A file a job wrote (see the job's ``files``): ``report.html``, ``events.json``,
        ``scores.csv``, ``gradcam.mp4``, frames, …"""
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}, it has no results yet")
        folder = server.jobs.folder(job_id).resolve()
        missing = HTTPException(404, f"job {job_id} has no file {name!r}")
        if any(not c.isprintable() for c in name):  # NUL and control characters: no such file
            raise missing
        try:
            path = (folder / name).resolve()
            if not path.is_relative_to(folder) or not path.is_file() or path.name == "job.json":
                raise missing
        except (OSError, ValueError):  # a name too long for the file system, …
            raise missing from None
        download = path.name if name.endswith(".html") else None
        return FileResponse(
            path,
            media_type=media_type(path.name),
            filename=download,
            content_disposition_type="inline",
        )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI on this document, from files served here: works offline."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="vadx API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        """ReDoc on this document, from files served here: works offline."""
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="vadx API",
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_file(name: str) -> Response:
        if name not in DOCS_FILES:
            raise HTTPException(404, f"no docs file {name!r}")
        return Response(docs_asset(name), media_type=DOCS_FILES[name][1])

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        kinds = {".js": "text/javascript", ".css": "text/css"}
        suffix = Path(name).suffix
        if suffix not in kinds or not re.fullmatch(r"[a-z]+\.(js|css)", name):
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_static(name), media_type=kinds[suffix])

    return app


def _static(name: str) -> str:
    if name == "viewer.js":  # the report's viewer: the page draws the same overlays
        return VIEWER.read_text(encoding="utf-8")
    return resources.files("vadx.serve").joinpath("static", name).read_text(encoding="utf-8")


def load_models(paths: list[Path]) -> dict[str, CRNN]:
    """Checkpoints by name (the folder's name; ``run/best`` → ``run-best`` when needed)."""
    models: dict[str, CRNN] = {}
    for path in paths:
        name = path.name if path.name not in ("best", "last") else f"{path.parent.name}-{path.name}"
        while name in models:
            name += "+"
        models[name] = load_model(path)
    return models


@contextlib.contextmanager
def serving(server: Server, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``server`` with uvicorn in a background thread (``port`` 0: a free one) for the
    ``with`` block; yields the base URL. For tests, benchmarks and embedding."""
    import uvicorn

    web = uvicorn.Server(uvicorn_config(create_app(server), host, port, server.limits))
    thread = threading.Thread(target=web.run, name="vadx-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not web.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise VadxError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = web.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/"
    finally:
        web.should_exit = True
        thread.join(30)


__all__ = ["ID", "JobRequest", "Server", "create_app", "load_models", "serving"]
