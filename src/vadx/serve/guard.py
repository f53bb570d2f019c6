"""What stands between the network and the app: checks made on a request's headers before
any of its body is read, limits on the body while it is read, and the headers every answer
carries. One ASGI middleware, :class:`Guard`, in this order:

1. **Host.** Only the host names the server was started for (``vadx serve --host``, plus
   ``--allowed-host``): a page on another site that rebinds its DNS name to 127.0.0.1 gets 421.
2. **Cross-origin writes.** A browser marks a request another site's page makes
   (``Sec-Fetch-Site: cross-site``, or an ``Origin`` that is not this server's): such a
   request that changes something (POST, PUT, PATCH, DELETE) gets 403, with or without a
   token. Clients that are not browsers send neither header and are not affected.
3. **Token.** With a token set, every ``/api/`` route but ``/api/health`` needs it; it is checked
   on the headers, so an unauthorised body is never read (401).
4. **Body size.** An upload (``POST /api/videos``) up to the server's upload limit, any other
   body up to :attr:`Limits.json_bytes`: 413 on the declared length before reading, or as soon
   as more arrives than declared or allowed.
5. **Body time.** A body that stalls for :attr:`Limits.body_seconds` gets 408.
6. **JSON is UTF-8.** A JSON body in another encoding (UTF-16, a byte-order mark) gets 400.
7. **Answers** carry ``Content-Security-Policy`` (nothing from other origins; framed by this
   server's own page only, which shows reports in a frame), ``X-Frame-Options: SAMEORIGIN``,
   ``X-Content-Type-Options: nosniff`` and
   ``Referrer-Policy: no-referrer``.

Request headers that never complete are the HTTP server's to time out: :func:`uvicorn_config`
closes a connection whose request line and headers take longer than
:attr:`Limits.header_seconds`.
"""

from __future__ import annotations

import asyncio
import codecs
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: methods that change something: refused when a browser sends them from another origin
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: host names a server on this machine answers to, whatever its --host
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: a page may use what this server serves, and nothing else; no other site may frame it
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "connect-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class Limits:
    """The server's limits on requests (``docs/serve.md`` lists them).

    Attributes:
        hosts: host names (``Host`` header, port aside) the server answers to; empty: any
            (a library user's choice; ``vadx serve`` always names them).
        json_bytes: the largest body of a request other than an upload.
        body_seconds: the longest a request body may stall between two of its parts.
        header_seconds: the longest a request line and headers may take to arrive.
        queue: the most jobs queued or running at once; more get 429 with ``Retry-After``.
    """

    hosts: tuple[str, ...] = ()
    json_bytes: int = 65_536
    body_seconds: float = 30.0
    header_seconds: float = 10.0
    queue: int = 32


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The host names ``vadx serve --host HOST`` answers to: this machine's names, HOST and
    ``extra``; a wildcard HOST (``0.0.0.0``, ``::``) with no ``extra``: any (empty)."""
    if host in ("0.0.0.0", "::", "") and not extra:
        return ()
    return tuple(dict.fromkeys((*LOCAL_HOSTS, host.strip("[]"), *extra)))


def host_name(value: str) -> str:
    """The name in a ``Host`` header: ``[::1]:8000`` → ``::1``, ``Example:80`` → ``example``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The ASGI middleware of this module's checks (see the module's documentation)."""

    def __init__(self, app: Any, limits: Limits, token: str | None, upload_bytes: int) -> None:
        self.app, self.limits, self.token, self.upload_bytes = app, limits, token, upload_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(secured, *refusal)
            return
        upload = scope["method"] == "POST" and scope["path"] == "/api/videos"
        limit = self.upload_bytes + 65_536 if upload else self.limits.json_bytes  # + framing
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(secured, 413, _too_large(upload, limit))
            return
        json_body = headers.get("content-type", "").split(";")[0].strip().lower() in (
            "application/json",
            "",
        )
        state = {"seen": 0, "failed": None, "answered": False}
        utf8 = codecs.getincrementaldecoder("utf-8")()

        async def limited() -> dict:
            if state["failed"] is not None:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), self.limits.body_seconds)
            except TimeoutError:
                return self._fail(state, 408, "the request body stalled; send it whole")
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            state["seen"] += len(chunk)
            if state["seen"] > limit:
                return self._fail(state, 413, _too_large(upload, limit))
            if json_body and not upload and _not_utf8(utf8, chunk, state["seen"] == len(chunk)):
                return self._fail(state, 400, "a JSON body must be UTF-8 (RFC 8259)")
            return message

        async def guarded(message: dict) -> None:
            if state["failed"] is None:
                await secured(message)
            elif not state["answered"]:  # the app's answer is replaced by the failure's
                state["answered"] = True
                await _answer(secured, *state["failed"])

        await self.app(scope, limited, guarded)

    def _refusal(self, scope: dict, headers: dict[str, str]) -> tuple[int, str, dict] | None:
        """Why a request is refused on its headers alone (status, message, headers), or None."""
        hosts = self.limits.hosts
        if hosts and host_name(headers.get("host", "")) not in hosts:
            return 400, f"this server answers to {', '.join(hosts)} only", {}
        if scope["method"] in UNSAFE and _cross_origin(headers):
            return 403, "a page of another site may not change anything here", {}
        path = scope["path"]
        if self.token is not None and path.startswith("/api/") and path != "/api/health":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            bearer = headers.get("authorization", "")
            given = [*query.get("token", []), bearer[7:] if bearer[:7].lower() == "bearer " else ""]
            if not token_matches(given, self.token):
                message = "Missing or wrong API token: Authorization: Bearer TOKEN or ?token=TOKEN"
                return 401, message, {"www-authenticate": "Bearer"}
        return None

    @staticmethod
    def _fail(state: dict, status: int, message: str) -> dict:
        state["failed"] = (status, message, {})
        return {"type": "http.disconnect"}


def token_matches(given: list[str], token: str) -> bool:
    """Whether one of the tokens ``given`` is ``token`` (compared in constant time)."""
    expected = token.encode()
    return any(hmac.compare_digest(g.encode(), expected) for g in given)


def _cross_origin(headers: dict[str, str]) -> bool:
    """Whether a browser says the request comes from a page of another origin."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    parts = urlsplit(origin)
    return origin == "null" or parts.netloc.lower() != headers.get("host", "").lower()


def _not_utf8(decoder: codecs.IncrementalDecoder, chunk: bytes, first: bool) -> bool:
    """Whether ``chunk`` (the next part of a body) breaks UTF-8 JSON text: invalid UTF-8, a
    byte-order mark at the start, or a NUL (UTF-16 text reads as ASCII with NULs)."""
    if (first and chunk.startswith(codecs.BOM_UTF8)) or b"\0" in chunk:
        return True
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError:
        return True
    return False


def _too_large(upload: bool, limit: int) -> str:
    if upload:
        return f"the upload is larger than the limit of {(limit - 65_536) / 1e6:g} MB"
    return f"the request body is larger than the limit of {limit:,} bytes"


async def _answer(send: Any, status: int, message: str, headers: dict | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def uvicorn_config(app: Any, host: str, port: int, limits: Limits, **options: Any) -> Any:
    """uvicorn's configuration for ``app``: its h11 protocol with a deadline on request headers
    (:class:`HeaderDeadline`), headers of at most 16 KiB, idle connections closed after 5 s."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_deadline_protocol(limits.header_seconds),
        h11_max_incomplete_event_size=16_384,
        timeout_keep_alive=5,
        log_level="warning",
        **options,
    )


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request line and headers have not
    all arrived ``seconds`` after the connection opened or its last answer ended (a client
    that trickles headers would otherwise hold the connection open for ever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # before: a pipelined request's headers, complete already, disarm it
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline
