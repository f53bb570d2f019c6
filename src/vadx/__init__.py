"""vadx: video anomaly detection with a CNN+RNN that explains every decision."""

from vadx._version import __version__
from vadx.errors import VadxError
from vadx.models import CRNN, CRNNConfig, load_model, save_model

__all__ = ["CRNN", "CRNNConfig", "VadxError", "__version__", "load_model", "save_model"]
