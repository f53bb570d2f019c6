"""Exceptions vadx raises for bad input.

Every error says what is wrong and what to do about it. The CLI prints the message of any
:class:`VadxError` and exits non-zero, without a traceback.

The library names its settings by their own names (``step``, ``start``, ``cache_features``);
an error carries the names its message mentions (:meth:`VadxError.worded`), so that each edge
words them its own way: the CLI as its options (``--step``), the HTTP API as its request fields
(``detect.step``).
"""

from __future__ import annotations

from collections.abc import Callable


class VadxError(Exception):
    """Base class of the errors vadx raises on purpose.

    A message may name settings, each of ``fields`` written ``{field}`` in it: ``str()`` gives
    the library's names, :meth:`worded` another edge's.

    >>> err = InputError("use a smaller {step} (at most 4)", "step")
    >>> str(err), err.worded(lambda field: "--" + field)
    ('use a smaller step (at most 4)', 'use a smaller --step (at most 4)')
    """

    def __init__(self, message: object = "", *fields: str) -> None:
        self.template, self.fields = str(message), fields
        super().__init__(self.worded())

    def worded(self, name: Callable[[str], str] = str) -> str:
        """The message with each of its fields named by ``name(field)``."""
        message = self.template
        for field in self.fields:
            message = message.replace("{" + field + "}", name(field))
        return message


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
