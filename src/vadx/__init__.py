"""vadx: video anomaly detection with a CNN+RNN that explains every decision."""

from typing import Any

from vadx._version import __version__
from vadx.errors import VadxError

#: imported on first use, so that ``import vadx`` (and ``vadx --help``) does not load torch
_FROM_MODELS = ("CRNN", "CRNNConfig", "load_model", "save_model")


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:
        from vadx import models

        return getattr(models, name)
    raise AttributeError(f"module 'vadx' has no attribute {name!r}")


__all__ = ["CRNN", "CRNNConfig", "VadxError", "__version__", "load_model", "save_model"]
