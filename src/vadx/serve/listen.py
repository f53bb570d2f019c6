"""The server's socket, bound before anything loads: a port in use is one ``error:`` line,
not a server that loads its models, starts, and then exits."""

from __future__ import annotations

import errno
import socket

from vadx.errors import VadxError


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 where ``host`` has a colon), for uvicorn to
    listen on; a port out of range, in use or not ours to bind is a :class:`VadxError`."""
    if not 0 <= port <= 65535:
        raise VadxError(f"{{port}} must be between 0 and 65535, got {port}", "port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as err:
        listening.close()
        if err.errno == errno.EADDRINUSE:
            raise VadxError(
                f"{{port}} {port} on {host} is in use: stop what listens there or "
                "choose another {port}",
                "port",
            ) from err
        raise VadxError(
            f"cannot listen on {{host}} {host} {{port}} {port}: {err.strerror or err}",
            "host",
            "port",
        ) from err
    return listening
