"""The API's jobs: submit (refused at once when it cannot succeed), list, poll, cancel,
review a detection's events, delete, and read what a job wrote."""

from __future__ import annotations

import functools

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from vadx.errors import VadxError
from vadx.serve import schema
from vadx.serve.checks import check_job
from vadx.serve.job_store import FINISHED, TooLate
from vadx.serve.routing import Routes
from vadx.serve.runners import api_words
from vadx.serve.schema import (
    DetectResult,
    JobParams,
    JobRequest,
    MediaDoc,
    file_content,
    media_type,
)

SCORES = MediaDoc(schema={"$ref": "#/components/schemas/Scores"})


def jobs_router(routes: Routes) -> APIRouter:
    router = APIRouter()
    route = functools.partial(routes.add, router)
    server, video_or_404, job_or_404 = routes.server, routes.video_or_404, routes.job_or_404

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
    def submit(request: JobRequest) -> schema.Job:
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
        params = JobParams.of({**request.model_dump(), "model": server.model_name(request.model)})
        try:
            check_job(params, video, server.models[params.model])
        except VadxError as err:
            raise HTTPException(400, api_words(err)) from None
        return server.jobs.submit(request.kind, params.model_dump()).public()

    @route("get", "/api/jobs", "jobs", response_model=list[schema.Job])
    def jobs(video: str | None = None) -> list[schema.Job]:
        """Every job (of one video with ``?video=ID``), newest first."""
        found = [
            j
            for j in server.jobs.jobs.values()
            if video is None or JobParams.of(j.params).video == video
        ]
        return [j.public() for j in sorted(found, key=lambda j: -j.created)]

    @route("get", "/api/jobs/{job_id}", "job", 404, response_model=schema.Job)
    def job(job_id: str) -> schema.Job:
        """A job's state (queued, running, done, failed, cancelled), progress and result; once
        done, the files it wrote."""
        return job_or_404(job_id).public()

    @route("post", "/api/jobs/{job_id}/cancel", "cancel", 404, 409, response_model=schema.Job)
    def cancel(job_id: str) -> schema.Job:
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
    def review_event(job_id: str, event: int, review: schema.Review) -> schema.Job:
        """Mark a detection's event (its index in ``result.events``) reviewed, or not: kept
        with the job, for everyone who opens it."""
        job = job_or_404(job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}, it has no events yet")
        events = job.result.events if isinstance(job.result, DetectResult) else []
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
        file=("A detection's per-frame scores", {"application/json": SCORES}),
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

    return router
