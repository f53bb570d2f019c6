"""``vadx serve``: the HTTP API (OpenAPI at ``/docs``) and the web page at ``/``.

Every error is JSON — ``{"error": "what is wrong"}`` with a 4xx status — and nothing outside the
data folder is ever read or written. See ``docs/serve.md`` for the API. The app is assembled
here from one router per resource — :mod:`~vadx.serve.api_meta`, :mod:`~vadx.serve.api_videos`,
:mod:`~vadx.serve.api_jobs`, :mod:`~vadx.serve.pages` — behind the guard of
:mod:`~vadx.serve.guard`; the state is a :class:`~vadx.serve.server.Server`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from vadx._version import __version__
from vadx.errors import VadxError
from vadx.serve import schema
from vadx.serve.api_jobs import jobs_router
from vadx.serve.api_meta import meta_router
from vadx.serve.api_videos import videos_router
from vadx.serve.guard import Guard, uvicorn_config
from vadx.serve.pages import pages_router
from vadx.serve.routing import Routes
from vadx.serve.schema import JobRequest
from vadx.serve.served import load_models
from vadx.serve.server import Server
from vadx.serve.storage import ID

LOG = logging.getLogger("vadx.serve")

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
    for route in _every_route(app.router.routes):
        if route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _every_route(routes: list) -> Iterator:
    """The routes of an app, those of its included routers too (no prefixes here)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _every_route(included.routes) if included is not None else (route,)


def shown(message: str, most: int = 600) -> str:
    """An error message as the API sends it: at most ``most`` characters, however much of
    the client's own input it quotes."""
    return message if len(message) <= most else message[: most - 1] + "…"


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

    routes = Routes(server)
    routers = [meta_router(routes), videos_router(routes), jobs_router(routes), pages_router()]
    if server.console is not None:  # the live cameras' API
        from vadx.serve.api_console import console_router

        routers.insert(3, console_router(routes, server.console))
    for router in routers:
        app.include_router(router)
    return app


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
