"""``vadx serve``: the HTTP API (OpenAPI at ``/docs``) and the web page at ``/``.

Every error is JSON — ``{"error": "what is wrong"}`` with a 4xx status — and nothing outside the
data folder is ever read or written. See ``docs/serve.md`` for the API.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from vadx._version import __version__
from vadx.detect import DetectConfig, Detection, check_domain_mode, detect, write_detection
from vadx.domain import missing_note, verdict_line
from vadx.errors import VadxError
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL
from vadx.explain_video import ExplainSettings, explain_video
from vadx.files import write_json
from vadx.models import load_model
from vadx.models.crnn import CRNN
from vadx.serve.jobs import Job, JobCancelled, JobFailed, JobStore
from vadx.serve.storage import ID, UploadError, VideoStore, without_paths

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
LOG = logging.getLogger("vadx.serve")


class DetectSettings(BaseModel):
    """Detection settings (defaults: those of ``vadx detect``)."""

    model_config = ConfigDict(extra="forbid")
    stride: int | None = Field(None, ge=1)
    step: int | None = Field(None, ge=1)
    smooth: int = Field(5, ge=1)
    on: float = Field(0.5, ge=0, le=1)
    off: float = Field(0.35, ge=0, le=1)
    min_frames: int = Field(3, ge=1)
    domain: Literal["flag", "suppress", "off"] = Field(
        "flag", description="windows outside the model's training domain: flag them, suppress "
        "their alerts (needs a calibrated model), or no check"
    )  # fmt: skip


class JobRequest(BaseModel):
    """A job: ``detect`` a whole video, or ``explain`` the clip of frames ``start``…``end``."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["detect", "explain"]
    video: str
    model: str | None = Field(None, description="a name from /api/models (default: the first)")
    detect: DetectSettings = Field(default_factory=DetectSettings)
    start: int | None = Field(None, ge=0, description="explain: first frame")
    end: int | None = Field(None, ge=0, description="explain: last frame")
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS))
    temporal: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPORAL))
    target: str = "predicted"
    view: Literal["heatmap", "contour", "contours"] = "heatmap"


class Server:
    """The state behind the app: models, videos, jobs."""

    def __init__(
        self,
        models: dict[str, CRNN],
        data: Path,
        token: str | None = None,
        max_upload_bytes: int = 200_000_000,
        workers: int = 1,
    ) -> None:
        if not models:
            raise VadxError("give at least one model to serve")
        self.models, self.token = models, token
        self.locks = {name: threading.Lock() for name in models}
        self.data = Path(data)
        self.videos = VideoStore(self.data, max_upload_bytes)
        self.jobs = JobStore(self.data, {"detect": self._detect, "explain": self._explain},
                             workers)  # fmt: skip

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
            yield
        except VadxError as err:
            video = self.videos.get(job.params["video"])
            raise JobFailed(api_message(str(err), self.videos.path(job.params["video"]),
                                        video["name"])) from err  # fmt: skip
        except (JobCancelled, JobFailed):
            raise
        except Exception as err:
            LOG.exception("job %s (%s) failed", job.id, job.kind)
            raise JobFailed("the job failed on an internal error; the server's log has the "
                            "details") from err  # fmt: skip

    def _detect(self, job: Job, out: Path, progress) -> dict[str, Any]:
        with self._client_errors(job):
            return self._run_detect(job, out, progress)

    def _explain(self, job: Job, out: Path, progress) -> dict[str, Any]:
        with self._client_errors(job):
            return self._run_explain(job, out, progress)

    def _run_detect(self, job: Job, out: Path, progress) -> dict[str, Any]:
        p = job.params
        model, path = self.models[p["model"]], self.videos.path(p["video"])
        with self.locks[p["model"]]:
            found = detect(model, path, DetectConfig(**p["detect"]), progress)
        write_detection(out, found, path, _model_id(model), annotate=False)
        names = list(found.class_names)
        write_json(out / "scores.json", {
            "classes": names, "times": found.timestamps.round(4).tolist(),
            "anomaly": found.smoothed_score.round(4).tolist(),
            "probabilities": found.frame_probabilities.round(4).tolist(),
            "on": found.settings["on"], "off": found.settings["off"],
            "window": found.settings["window"], "step": found.settings["step"],
            "domain": None if found.frame_domain is None else found.frame_domain.round(3).tolist(),
        }, indent=0)  # fmt: skip
        return {"events": [e.__dict__ for e in found.events], "frames": found.info.num_frames,
                "fps": found.info.fps, "windows": len(found.windows),
                "settings": found.settings, "domain": domain_report(found, model)}  # fmt: skip

    def _run_explain(self, job: Job, out: Path, progress) -> dict[str, Any]:
        p = job.params
        model, path = self.models[p["model"]], self.videos.path(p["video"])
        settings = _explain_settings(p)
        with self.locks[p["model"]]:
            summary = explain_video(model, path, out, settings, p["start"], p["end"],
                                    detect_config=DetectConfig(**p["detect"]),
                                    progress=progress)  # fmt: skip
        clip = summary["clips"][0]
        return {"frames": clip["frames"], "predicted": clip["predicted"],
                "probability": clip["probability"], "target": clip["target"],
                "report": "report.html"}  # fmt: skip


#: command-line options named in library messages → the API fields that set the same thing
API_FIELDS = {"--step": "detect.step", "--stride": "detect.stride", "--start": "start",
              "--end": "end", "--domain": "detect.domain", "--target": "target"}  # fmt: skip


def api_message(message: str, path: Path, name: str) -> str:
    """A library message for the API's client: the stored video's path replaced by its name,
    command-line options by the request fields that set them."""
    message = without_paths(message, path, name)
    for option, field in API_FIELDS.items():
        message = re.sub(rf"{option}\b", field, message)
    return message


def _explain_settings(params: dict[str, Any]) -> ExplainSettings:
    target = params["target"]
    return ExplainSettings(methods=tuple(params["methods"]), temporal=tuple(params["temporal"]),
                           target=int(target) if re.fullmatch(r"[0-9]+", target) else target,
                           view=params["view"])  # fmt: skip


def check_target(target: str, model: CRNN) -> None:
    """Refuse a target the model cannot explain: ``predicted``, ``anomaly``, one of its classes
    or a class index (ASCII digits)."""
    names = model.class_names
    if target in ("predicted", "anomaly") or target in names:
        return
    if re.fullmatch(r"[0-9]+", target) and int(target) < len(names):
        return
    raise VadxError(f"target must be predicted, anomaly, one of the model's classes "
                    f"({', '.join(names)}) or a class index 0–{len(names) - 1}; "
                    f"got {target!r}")  # fmt: skip


def domain_report(found: Detection, model: CRNN) -> dict[str, Any]:
    """The detection's domain verdict with the sentence the page shows (no server paths)."""
    if not found.domain.get("checked"):
        off = found.settings.get("domain") == "off"
        return {**found.domain, "message": None if off else missing_note(model, False)}
    return {**found.domain, "message": verdict_line(found.domain)}


def _model_id(model: CRNN) -> str | None:
    return model.checkpoint.model_id if model.checkpoint is not None else None


def _describe(name: str, model: CRNN) -> dict[str, Any]:
    c = model.config
    return {"name": name, "id": _model_id(model), "backbone": c.backbone,
            "classes": list(model.class_names), "normal": c.normal_class,
            "frames": c.num_frames, "frame_size": list(c.frame_size)}  # fmt: skip


class UploadLimit:
    """Stops reading an upload's body beyond ``limit`` bytes and answers 413, whatever the
    client declared (a chunked body has no Content-Length): nothing past the limit is
    spooled to disk."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/videos":
            await self.app(scope, receive, send)
            return
        state = {"seen": 0, "over": False, "answered": False}

        async def limited() -> dict:
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: dict) -> None:
            if not state["over"]:
                await send(message)
            elif not state["answered"]:  # replace whatever the app answers with a 413
                state["answered"] = True
                error = JSONResponse({"error": f"the upload is larger than the limit of "
                                               f"{self.limit / 1e6:.0f} MB"}, 413)  # fmt: skip
                await error(scope, receive, send)

        await self.app(scope, limited, guarded)


def create_app(server: Server) -> FastAPI:
    """The FastAPI application of ``server``."""
    app = FastAPI(title="vadx", version=__version__,
                  description="Detect and explain anomalies in video.")  # fmt: skip
    app.state.server = server
    app.add_middleware(UploadLimit, limit=server.videos.max_bytes + 65536)  # + multipart framing

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail)}, err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        LOG.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the server's log has the details"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e['loc'] if x != 'body')}: {e['msg']}"
                 for e in err.errors()]  # fmt: skip
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, 422)

    def authorised(request: Request, token: Annotated[str | None, Query()] = None) -> None:
        if server.token is None:
            return
        given = token or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), server.token.encode()):
            raise HTTPException(401, "missing or wrong API token (Authorization: Bearer …, "
                                     "or ?token=…)", {"WWW-Authenticate": "Bearer"})  # fmt: skip

    api = [Depends(authorised)]

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

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Liveness, version, models, and how many jobs are in each state."""
        states: dict[str, int] = {}
        for job in server.jobs.jobs.values():
            states[job.state] = states.get(job.state, 0) + 1
        return {"status": "ok", "version": __version__, "models": list(server.models),
                "jobs": states, "token_required": server.token is not None}  # fmt: skip

    @app.get("/api/models", dependencies=api)
    def models() -> list[dict[str, Any]]:
        """The served models: classes, clip length, frame size."""
        return [_describe(name, model) for name, model in server.models.items()]

    @app.post("/api/videos", status_code=201, dependencies=api)
    def upload(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        """Upload a video (multipart field ``file``); it is checked by its content."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > server.videos.max_bytes + 65536:
            raise HTTPException(413, f"the upload is larger than the limit of "
                                     f"{server.videos.max_bytes / 1e6:.0f} MB")  # fmt: skip
        try:
            return server.videos.save(file.file, file.filename)
        except UploadError as err:
            raise HTTPException(err.status, str(err)) from None

    @app.get("/api/videos", dependencies=api)
    def videos() -> list[dict[str, Any]]:
        """Every uploaded video."""
        return server.videos.all()

    @app.get("/api/videos/{video_id}", dependencies=api)
    def video(video_id: str) -> dict[str, Any]:
        """One video: name, size, frames, fps, codec, sha256."""
        return video_or_404(video_id)

    @app.get("/api/videos/{video_id}/file", dependencies=api)
    def video_file(video_id: str) -> FileResponse:
        """The video itself."""
        video_or_404(video_id)
        return FileResponse(server.videos.path(video_id))

    @app.delete("/api/videos/{video_id}", status_code=204, dependencies=api)
    def delete_video(video_id: str) -> Response:
        """Delete a video (its jobs' results stay)."""
        video_or_404(video_id)
        server.videos.delete(video_id)
        return Response(status_code=204)

    @app.post("/api/jobs", status_code=202, dependencies=api)
    def submit(request: JobRequest) -> dict[str, Any]:
        """Start detection or an explanation in the background; poll ``/api/jobs/{id}``."""
        video = video_or_404(request.video)
        params = request.model_dump()
        params["model"] = server.model_name(request.model)
        try:
            check_domain_mode(server.models[params["model"]],
                              DetectConfig(**params["detect"]).domain, show_path=False)  # fmt: skip
            if request.kind == "explain":
                _explain_settings(params)
                check_target(request.target, server.models[params["model"]])
                last = video["num_frames"] - 1
                start, end = request.start or 0, last if request.end is None else request.end
                if not start <= end <= last:
                    raise VadxError(f"frames {start}–{end} are not inside the video's "
                                    f"{video['num_frames']} frames (0–{last})")  # fmt: skip
        except VadxError as err:
            raise HTTPException(400, str(err)) from None
        return server.jobs.submit(request.kind, params).public()

    @app.get("/api/jobs", dependencies=api)
    def jobs(video: str | None = None) -> list[dict[str, Any]]:
        """Every job (of one video with ``?video=ID``), newest first."""
        found = [
            j for j in server.jobs.jobs.values() if video is None or j.params["video"] == video
        ]
        return [j.public() for j in sorted(found, key=lambda j: -j.created)]

    @app.get("/api/jobs/{job_id}", dependencies=api)
    def job(job_id: str) -> dict[str, Any]:
        """A job's state (queued, running, done, failed, cancelled), progress and result."""
        return job_or_404(job_id).public()

    @app.delete("/api/jobs/{job_id}", dependencies=api)
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job."""
        job = job_or_404(job_id)
        if job.state in ("done", "failed", "cancelled"):
            raise HTTPException(409, f"job {job_id} has already finished ({job.state})")
        return server.jobs.cancel(job_id).public()

    @app.get("/api/jobs/{job_id}/scores", dependencies=api)
    def scores(job_id: str) -> FileResponse:
        """A detection's per-frame times, smoothed anomaly score and class probabilities."""
        return job_file(job_id, "scores.json")

    @app.get("/api/jobs/{job_id}/files/{name:path}", dependencies=api)
    def job_file(job_id: str, name: str) -> FileResponse:
        """A file a job wrote: ``report.html``, ``events.json``, ``gradcam.mp4``, frames, …"""
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}, it has no results yet")
        folder = server.jobs.folder(job_id).resolve()
        missing = HTTPException(404, f"job {job_id} has no file {name!r}")
        if any(not c.isprintable() for c in name):  # NUL and control characters: no such file
            raise missing
        try:
            path = (folder / name).resolve()
        except (OSError, ValueError):
            raise missing from None
        if not path.is_relative_to(folder) or not path.is_file() or path.name == "job.json":
            raise missing
        download = path.name if name.endswith(".html") else None
        return FileResponse(path, filename=download, content_disposition_type="inline")

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

    web = uvicorn.Server(uvicorn.Config(create_app(server), host=host, port=port,
                                        log_level="warning"))  # fmt: skip
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
