"""The pages: the web app at ``/`` with its static files, and the API's documentation
(Swagger UI at ``/docs``, ReDoc at ``/redoc``) from files served here, so that both work offline."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from vadx.explanations.report import VIEWER

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


def pages_router() -> APIRouter:
    router = APIRouter()

    @router.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI on this document, from files served here: works offline."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="vadx API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
        )

    @router.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        """ReDoc on this document, from files served here: works offline."""
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="vadx API",
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        )

    @router.get("/docs/{name}", include_in_schema=False)
    def docs_file(name: str) -> Response:
        if name not in DOCS_FILES:
            raise HTTPException(404, f"no docs file {name!r}")
        return Response(docs_asset(name), media_type=DOCS_FILES[name][1])

    @router.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @router.get("/console", include_in_schema=False)
    def console_page() -> HTMLResponse:
        """The live cameras (``vadx serve --cameras``): grid, events, review."""
        return HTMLResponse(_static("console.html"))

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        kinds = {".js": "text/javascript", ".css": "text/css"}
        suffix = Path(name).suffix
        if suffix not in kinds or not re.fullmatch(r"[a-z]+\.(js|css)", name):
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_static(name), media_type=kinds[suffix])

    return router


def _static(name: str) -> str:
    if name == "viewer.js":  # the report's viewer: the page draws the same overlays
        return VIEWER.read_text(encoding="utf-8")
    return resources.files("vadx.serve").joinpath("static", name).read_text(encoding="utf-8")
