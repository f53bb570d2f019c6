"""Element-wise activations by their Keras names, for imported conv stacks and heads.

Keras layers carry an ``activation`` string; :func:`activation` returns the PyTorch module that
computes the same function (``"linear"`` is the identity).

>>> activation("relu")
ReLU()
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vadx.errors import ConfigError

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
}

ACTIVATION_NAMES = tuple(_ACTIVATIONS)


def check_activation(name: object) -> str:
    """``name`` if it is a supported activation, else a :class:`ConfigError` listing them."""
    if name not in _ACTIVATIONS:
        raise ConfigError(
            f"unsupported activation {name!r}; supported: {', '.join(ACTIVATION_NAMES)}"
        )
    return str(name)


def activation(name: str) -> nn.Module:
    """The module computing activation ``name`` (see :data:`ACTIVATION_NAMES`)."""
    return _ACTIVATIONS[check_activation(name)]()
