"""The API's videos: upload (checked by content), list, read, play, thumbnails, delete."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, Response

from vadx.serve import schema
from vadx.serve.routing import Routes
from vadx.serve.schema import file_content, media_type
from vadx.serve.storage import UploadError


def videos_router(routes: Routes) -> APIRouter:
    router = APIRouter()
    route = functools.partial(routes.add, router)
    server, video_or_404 = routes.server, routes.video_or_404

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
    def upload(request: Request, file: Annotated[UploadFile, File()]) -> schema.Video:
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
    def videos() -> list[schema.Video]:
        """Every uploaded video."""
        return server.videos.all()

    @route("get", "/api/videos/{video_id}", "video", 404, response_model=schema.Video)
    def video(video_id: str) -> schema.Video:
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
        if not 0 <= frame < record.num_frames:
            raise HTTPException(
                404, f"video {video_id} has no frame {frame} (0–{record.num_frames - 1})"
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

    return router
