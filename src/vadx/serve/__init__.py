"""``vadx serve``: a web page and an HTTP API to detect, explain and review anomalies."""

from vadx.serve.app import JobRequest, Server, create_app, load_models, serving

__all__ = ["JobRequest", "Server", "create_app", "load_models", "serving"]
