"""``vadx serve``: a web page and an HTTP API to detect, explain and review anomalies."""

from vadx.serve.app import JobRequest, Server, create_app, load_models, serving
from vadx.serve.listen import listening_socket

__all__ = ["JobRequest", "Server", "create_app", "listening_socket", "load_models", "serving"]
