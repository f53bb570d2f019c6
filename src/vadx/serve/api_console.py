"""The console's API (``vadx serve --cameras cameras.yaml``): the cameras with their live
status (list, add, change, remove), their events (filter, review, the kept clip and
thumbnail), whether the events are being stored (``/api/recording``), and ``/api/live``,
Server-Sent Events of every new, updated and ended event and of the cameras' and the
recording's status. Served only when the server runs a console. A change the database cannot
take now (the disk full) is a 503 that says why."""

from __future__ import annotations

import asyncio
import functools
import json
import queue
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from vadx.console.cameras import NAME_PATTERN, CameraConfig, FootageSettings, camera_from
from vadx.console.engine import CameraStatus
from vadx.console.recording import RecordingStatus, describe
from vadx.console.service import EXPLAIN_SETTINGS, Console
from vadx.console.store import Source, StoredEvent
from vadx.errors import VadxError
from vadx.serve.routing import Routes
from vadx.serve.schema import MediaDoc, file_content

#: seconds between keep-alive comments on an idle live stream
KEEP_ALIVE = 15.0
CLIP_FILES = {
    "clip.mp4": "video/mp4",
    "thumb.png": "image/png",
    "explanation.mp4": "video/mp4",
    "explanation.png": "image/png",
    "map.mp4": "video/mp4",
    "map.png": "image/png",
}
EventFile = Literal[
    "clip.mp4", "thumb.png", "explanation.mp4", "explanation.png", "map.mp4", "map.png"
]
#: each file's name in its folder (the footage's or the explanation's)
EVENT_FILES = {
    "clip.mp4": "clip.mp4",
    "thumb.png": "thumb.png",
    "explanation.mp4": f"{EXPLAIN_SETTINGS.methods[0]}.mp4",
    "explanation.png": "strip.png",
    "map.mp4": "map.mp4",
    "map.png": "map.png",
}
FRAME_DOC = MediaDoc(schema={"type": "string", "format": "binary"})
EVENT_STREAM = {"text/event-stream": MediaDoc(schema={"type": "string"})}


EventId = Annotated[int, PathParameter(ge=1, le=2**62)]


class CameraSettings(BaseModel):
    """A camera's settings as the API takes them (those of the cameras' YAML file; ``model``
    and ``normal`` are served models' names or models another camera uses)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: str | int
    model: str = Field(min_length=1)
    normal: str | None = Field(None, min_length=1)
    detect: dict[str, int | float | bool] = Field(default_factory=dict)
    domain: Literal["flag", "suppress", "off"] = "flag"
    enabled: bool = True
    loop: bool = False
    pace: bool = True
    footage: FootageSettings = Field(default_factory=FootageSettings)


class NewCamera(CameraSettings):
    """A camera to add: its name and settings."""

    name: str = Field(pattern=NAME_PATTERN)


class Camera(BaseModel):
    """A camera: its name, its settings and its live status."""

    name: str
    settings: CameraSettings
    status: CameraStatus


class EventReview(BaseModel):
    """The review state to set: reviewed or not, and (a camera's event) whether an operator
    judged it normal for its camera, not an incident (``vadx update-normal --console`` then
    teaches the camera's normal its clip; omitted: as it was). Not reviewed, an event is not
    judged either."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reviewed: bool
    judged_normal: bool | None = None


def console_router(routes: Routes, console: Console) -> APIRouter:
    router = APIRouter()
    route = functools.partial(routes.add, router)
    served = routes.server.models

    def camera_view(name: str) -> Camera:
        config = console.hub.config(name)
        status = next(s for s in console.hub.status() if s.name == name)
        settings = config.model_dump(exclude={"name"})
        return Camera(name=name, settings=CameraSettings(**settings), status=status)

    def checked(name: str, settings: CameraSettings) -> CameraConfig:
        document = settings.model_dump()
        configs = [console.hub.config(n) for n in console.hub.names]
        known = {c.model for c in configs} | {c.normal for c in configs if c.normal}
        for key in ("model", "normal"):
            if document[key] is not None and document[key] not in {*served, *known}:
                choices = ", ".join([*served, *sorted(known - set(served))])
                raise HTTPException(
                    400, f"{key}: give a served model's name or one in use: {choices}"
                )
        try:
            return camera_from(name, document, "camera")
        except VadxError as err:  # a rule the schema cannot state (off ≤ on, a known setting,
            # pre_capture + post_capture < max_seconds)
            raise HTTPException(400, str(err).removeprefix("camera.")) from None

    def exists(name: str) -> None:
        if name not in console.hub.names:
            raise HTTPException(404, f"no camera {name!r}")

    @route("get", "/api/cameras", "cameras", response_model=list[Camera])
    def cameras() -> list[Camera]:
        """Every camera with its settings and live status (connected, analysed frames per
        second, dropped frames, last frame, reconnections, last error)."""
        return [camera_view(name) for name in console.hub.names]

    def run(action: Any, *args: Any) -> Any:
        """A console change: library errors as 400 (a model that cannot load, a source that
        does not exist…), a database that cannot be written now as 503."""
        try:
            return action(*args)
        except VadxError as err:
            raise HTTPException(400, str(err)) from None
        except sa.exc.OperationalError as err:
            why = describe(err, console.store.database)
            raise HTTPException(503, f"the change cannot be stored now: {why}") from None

    @route(
        "post",
        "/api/cameras",
        "add_camera",
        400,
        409,
        422,
        503,
        status_code=201,
        response_model=Camera,
    )
    def add_camera(camera: NewCamera) -> Camera:
        """Add a camera; it starts at once and is kept for restarts. 409 if the name is
        taken."""
        if camera.name in console.hub.names:
            raise HTTPException(409, f"there is already a camera {camera.name!r}")
        config = checked(camera.name, CameraSettings(**camera.model_dump(exclude={"name"})))
        run(console.add_camera, config)
        return camera_view(camera.name)

    @route("get", "/api/cameras/{name}", "camera", 404, response_model=Camera)
    def camera(name: str) -> Camera:
        """One camera with its settings and live status."""
        exists(name)
        return camera_view(name)

    @route(
        "get",
        "/api/cameras/{name}/frame.jpg",
        "camera_frame",
        404,
        file=("The camera's last analysed frame", {"image/jpeg": FRAME_DOC}),
    )
    def camera_frame(name: str) -> Response:
        """The camera's last analysed frame as a JPEG (at most 640 pixels wide): the live
        grid's picture. Until the camera has delivered a frame (or while it is disabled), a
        grey picture with ``X-Vadx-Frame: none``."""
        exists(name)
        frame = console.hub.latest_frame(name)
        headers = {"Cache-Control": "no-store", "X-Vadx-Frame": "none" if frame is None else "live"}
        picture = _jpeg(frame) if frame is not None else _placeholder()
        return Response(picture, media_type="image/jpeg", headers=headers)

    @route("put", "/api/cameras/{name}", "change_camera", 400, 404, 422, 503, response_model=Camera)
    def change_camera(name: str, settings: CameraSettings) -> Camera:
        """Run a camera with new settings (its open events end first); kept for restarts."""
        exists(name)
        run(console.change_camera, checked(name, settings))
        return camera_view(name)

    @route("delete", "/api/cameras/{name}", "remove_camera", 404, 503, status_code=204)
    def remove_camera(name: str) -> Response:
        """Stop a camera and forget it (its open events end; its events stay)."""
        exists(name)
        run(console.remove_camera, name)
        return Response(status_code=204)

    @route("get", "/api/events", "console_events", 422, response_model=list[StoredEvent])
    def events(
        camera: str | None = None,
        class_name: Annotated[str | None, Query(alias="class")] = None,
        reviewed: bool | None = None,
        since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
        until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        source: Source | None = None,
        judged_normal: bool | None = None,
    ) -> list[StoredEvent]:
        """The events of the cameras and of the uploads' detections, newest first: by
        camera (an upload's: its video's name), class, review state (``judged_normal``: judged
        normal for its camera or not), start time (``since``
        ≤ start < ``until``, seconds since 1970; an upload's: when its job found it) and
        source (``camera`` or ``upload``); ``before``: ids below it (the next page)."""
        found = console.store.events(
            camera=camera,
            class_name=class_name,
            reviewed=reviewed,
            since=since,
            until=until,
            limit=limit,
            before_id=before,
            source=source,
            judged_normal=judged_normal,
        )
        return found

    @route("get", "/api/events/{event_id}", "console_event", 404, 422, response_model=StoredEvent)
    def event(event_id: EventId) -> StoredEvent:
        """One event."""
        return _stored(console, event_id)

    @route(
        "post",
        "/api/events/{event_id}/review",
        "review_console_event",
        400,
        404,
        422,
        503,
        response_model=StoredEvent,
    )
    def review(event_id: EventId, body: EventReview) -> StoredEvent:
        """Mark an event reviewed, or not (an upload's through its job: the uploads' page
        shows it reviewed too)."""
        stored = _stored(console, event_id)
        mirror = routes.server.mirror
        if body.judged_normal and not body.reviewed:
            raise HTTPException(400, "an event judged normal is reviewed: send reviewed true")
        if stored.source == "upload" and body.judged_normal:
            raise HTTPException(
                400,
                "an uploaded video's event has no camera whose normal could learn it: "
                "give the video to vadx update-normal",
            )
        if stored.source == "upload" and mirror is not None:
            return run(mirror.review, stored, body.reviewed)
        return run(console.review, event_id, body.reviewed, body.judged_normal)

    @route("get", "/api/recording", "recording", response_model=RecordingStatus)
    def recording() -> RecordingStatus:
        """Whether the cameras' events are being stored: ``recording``, or ``stopped`` while
        the disk or the database cannot take them, with the ``reason`` (``disk full —
        PATH: No space left on device``); the writes ``waiting`` in memory, which are stored
        when writing works again; and those ``lost``."""
        return console.recording.status

    @route(
        "get",
        "/api/events/{event_id}/files/{name}",
        "console_event_file",
        404,
        422,
        file=(
            "The event's clip, its thumbnail or its explanation",
            file_content(CLIP_FILES),
        ),
    )
    def event_file(event_id: EventId, name: EventFile) -> FileResponse:
        """The event's clip (``clip.mp4``: the window that decided it, replaced by the seconds
        around the event once they are there, as its ``footage_*`` say), ``thumb.png`` or, once
        explained, its explanation: ``explanation.mp4`` (the window with the map over it) and
        ``explanation.png`` (the frames above the frame importance curves). A normality event
        (``signal`` ``normality``) has its anomaly maps instead: ``map.mp4``, the clip with the
        camera's map over every frame, and ``map.png``, its most unusual frame (also its
        ``thumb.png``), once its ``maps`` says so."""
        stored = _stored(console, event_id)
        kept = (
            stored.explanation
            if name.startswith("explanation")
            else stored.maps
            if name.startswith("map")
            else stored.footage
        )
        path = console.store.folder / (kept or "none") / EVENT_FILES[name]
        if kept is None or not path.is_file():
            raise HTTPException(404, f"event {event_id} has no {name} (yet)")
        return FileResponse(path, media_type=CLIP_FILES[name])

    @route(
        "get",
        "/api/live",
        "live",
        file=("Server-Sent Events: new, update, end and status", EVENT_STREAM),
    )
    async def live(request: Request) -> StreamingResponse:
        """Server-Sent Events: each camera event as it is ``new``, ``update``d (its clip
        kept) and ``end``s, and every few seconds the cameras' ``status``; a comment line
        keeps an idle connection open."""
        return StreamingResponse(_stream(console, request), media_type="text/event-stream")

    return router


async def _stream(console: Console, request: Request):
    """The listener's messages as Server-Sent Events, polled without a thread per client (so
    that many open pages never wait on each other), a comment every ``KEEP_ALIVE`` seconds."""
    with console.listen() as inbox:
        yield ": vadx live events\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            try:
                message = inbox.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.1)
                quiet += 0.1
                if quiet >= KEEP_ALIVE:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                continue
            quiet = 0.0
            yield f"event: {message.kind}\ndata: {json.dumps(message.to_json())}\n\n"


def _stored(console: Console, event_id: int) -> StoredEvent:
    try:
        return console.store.event(event_id)
    except VadxError:
        raise HTTPException(404, f"no event {event_id}") from None


def _jpeg(frame: Any, width: int = 640, quality: int = 80) -> bytes:
    """An RGB frame as JPEG bytes, scaled down to ``width`` when wider."""
    import cv2

    if frame.shape[1] > width:
        height = round(frame.shape[0] * width / frame.shape[1])
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise HTTPException(500, "the frame could not be encoded")
    return data.tobytes()


@functools.cache
def _placeholder() -> bytes:
    """A grey 16:9 picture for a camera without a frame yet."""
    import numpy as np

    return _jpeg(np.full((180, 320, 3), 64, np.uint8))
