"""Exceptions vadx raises for bad input.

Every error says what is wrong and what to do about it. The CLI prints the message of any
:class:`VadxError` and exits non-zero, without a traceback.
"""


class VadxError(Exception):
    """Base class of the errors vadx raises on purpose."""


class ConfigError(VadxError, ValueError):
    """A model configuration or argument is invalid."""


class CheckpointError(VadxError):
    """A checkpoint directory is missing, incomplete, corrupt or inconsistent."""


class WeightsError(VadxError):
    """Pretrained weights cannot be found, read, verified or loaded."""


class NonFiniteError(VadxError, ValueError):
    """A model's weights or outputs hold NaN or infinite values."""


class InputError(VadxError, ValueError):
    """A tensor given to a model does not have the expected layout."""


class OutputError(VadxError):
    """An output path cannot be written: a file where a folder is wanted, read-only, …"""


class ModelImportError(VadxError):
    """A model from another framework cannot be read or has a layer vadx does not support."""
