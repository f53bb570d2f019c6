"""How the API's routes are declared (:class:`Routes`): the token required when the server
has one, each route's error statuses documented in the OpenAPI document, file responses typed;
and the lookups every resource shares (a video or a job, else 404)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from vadx.serve.guard import token_matches
from vadx.serve.job_store import Job
from vadx.serve.schema import ERRORS, MediaDoc, ResponseDoc, Video, errors

if TYPE_CHECKING:
    from vadx.serve.server import Server

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
#: the two ways to give the token (``Server(token=…)``); documented as security schemes
BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="the token the server was started with"
)
QUERY_TOKEN = APIKeyQuery(
    name="token", auto_error=False, scheme_name="token", description="the token in the query"
)


class Routes:
    """The routes of ``server``'s API, declared by resource (:meth:`add` on each router)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.guarded = server.token is not None
        self._auth = (401,) if self.guarded else ()
        self._dependencies = [Depends(self._authorised)] if self.guarded else []

    def _authorised(
        self,
        header: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        query: Annotated[str | None, Depends(QUERY_TOKEN)],
    ) -> None:
        """The token, as the OpenAPI document states it (the guard checked it already, on
        the headers: this documents the security schemes and checks again)."""
        given = [query or "", header.credentials if header is not None else ""]
        if not token_matches(given, str(self.server.token)):
            raise HTTPException(401, ERRORS[401].replace("`", ""), {"WWW-Authenticate": "Bearer"})

    def add(
        self,
        router: APIRouter,
        method: str,
        path: str,
        name: str,
        *statuses: int,
        file: tuple[str, dict[str, MediaDoc]] | None = None,
        **options: Any,
    ) -> Any:
        """A route on ``router``: the token required when set, its error statuses documented
        (403 on those that change something); ``file=(description, content)``: it answers
        with a file of one of those types."""
        unsafe = (403,) if method in ("post", "put", "delete") else ()
        responses = errors(*self._auth, *unsafe, *statuses)
        if file is not None:
            options["response_class"] = FileResponse
            responses[200] = ResponseDoc(description=file[0], content=file[1])
        add = getattr(router, method)
        return add(
            path, operation_id=name, dependencies=self._dependencies, responses=responses, **options
        )

    def video_or_404(self, video_id: str) -> Video:
        """The record of video ``video_id``, else 404."""
        try:
            return self.server.videos.get(video_id)
        except KeyError:
            raise HTTPException(404, f"no video {video_id!r}") from None

    def job_or_404(self, job_id: str) -> Job:
        """Job ``job_id``, else 404."""
        job = self.server.jobs.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job
