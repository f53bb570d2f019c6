"""The contract every per-frame CNN of vadx fulfils, and the registry that names them.

A backbone maps a batch of frames ``(N, 3, H, W)`` to feature maps ``(N, C, h, w)``. The CRNN
folds time into the batch before calling it, so a backbone never sees the time axis.

What explanation methods and training need from a backbone, beyond ``forward``:

* ``out_channels`` — ``C`` of the last feature map (the per-frame feature size after pooling);
* ``layer_names()`` — the hookable layers in forward order, by canonical module name;
* ``aliases`` — friendlier names (``block5_conv4`` for VGG19) mapped to canonical names;
* ``default_layer`` — the layer Grad-CAM uses when none is given (the last conv block);
* ``fine_layer`` — the last layer at stride 8, where LayerCAM looks by default (optional: the
  default layer when a backbone does not name one);
* ``freeze_units()`` — the trainable units in forward order, for "freeze all but the last N";
* ``load_pretrained(state_dict)`` — strict, shape-checked loading of a reference state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import torch
from torch import nn

from vadx.errors import ConfigError, WeightsError
from vadx.models.state_dict import state_dict_mismatch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """Base class of per-frame CNNs: ``(N, 3, H, W) -> (N, out_channels, h, w)``."""

    #: registry name, set by :func:`register_backbone`
    name: ClassVar[str] = ""
    #: smallest frame side the architecture accepts (it downsamples by this factor)
    min_input_size: ClassVar[int] = 1
    #: per-channel normalisation of RGB in [0, 1] that the pretrained weights expect
    input_mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    input_std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    out_channels: int
    aliases: dict[str, str]
    default_layer: str
    #: the last layer at stride 8 (None: ``default_layer``)
    fine_layer: str | None = None

    def cam_layer(self, fine: bool = False) -> str:
        """A CAM method's default layer: the last conv block, or with ``fine`` the last layer
        at stride 8 (the last conv block when the backbone names none)."""
        return (self.fine_layer if fine else None) or self.default_layer

    def layer_names(self) -> list[str]:
        """Canonical names of the hookable layers, in forward order."""
        raise NotImplementedError

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        """Trainable units in forward order: ``(name, modules)``; conv layers for VGG19."""
        raise NotImplementedError

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        """Load a reference-layout state dict; unrelated keys (a classifier) are ignored."""
        raise NotImplementedError

    def split(self, trainable: int) -> tuple[nn.Module, nn.Module]:
        """``(prefix, suffix)`` whose composition is ``forward``, cut before the last
        ``trainable`` units of :meth:`freeze_units`: training caches the frozen prefix's maps
        once and runs only the suffix (and the RNN and head) every epoch."""
        raise ConfigError(
            f"backbone {self.name!r} cannot be split for caching; train it with "
            "cache_features off, or freeze it entirely"
        )

    def builtin_weights(self) -> tuple[Mapping[str, torch.Tensor], str]:
        """Pretrained weights available offline (state dict, source); raises if there are none."""
        raise WeightsError(
            f"backbone {self.name!r} ships no built-in pretrained weights; "
            "give the path or URL of a weights file instead"
        )

    def resolve_layer(self, name: str) -> str:
        """Canonical module name of ``name`` (an alias or a canonical name)."""
        canonical = self.aliases.get(name, name)
        modules = dict(self.named_modules())
        if canonical not in modules or canonical == "":
            known = ", ".join(list(self.aliases)[:8])
            raise ConfigError(
                f"unknown layer {name!r} in backbone {self.name!r}; use an alias such as "
                f"{known}, … or a module name from layer_names()"
            )
        return canonical

    def get_layer(self, name: str) -> nn.Module:
        """The module called ``name`` (alias or canonical name)."""
        return dict(self.named_modules())[self.resolve_layer(name)]


BackboneFactory = Callable[..., Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory under ``name`` so configs and the CLI can build it.

    >>> @register_backbone("my_cnn")  # doctest: +SKIP
    ... class MyCNN(Backbone): ...
    """

    def decorate(factory: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ConfigError(f"a backbone named {name!r} is already registered")
        if isinstance(factory, type):
            factory.name = name
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs: object) -> Backbone:
    """Build the backbone registered as ``name`` with its keyword arguments."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown backbone {name!r}; available: {', '.join(available_backbones())}"
        )
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as err:
        raise ConfigError(f"bad arguments for backbone {name!r}: {err}") from err


def load_matching_state_dict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    prefix: str,
    source: str,
    hint: str,
) -> None:
    """Strictly load the ``prefix``-ed entries of ``state_dict`` into ``module``.

    Keys outside ``prefix`` are ignored (e.g. a classifier head); every parameter and buffer
    of ``module`` must be present with the right shape, or a :class:`WeightsError` lists
    what is missing or mismatched.
    """
    where = f" in {source}" if source else ""
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not given:
        raise WeightsError(f"no '{prefix}*' entries{where}; {hint}")
    problems = state_dict_mismatch(own, given)
    if problems:
        raise WeightsError(f"cannot load weights{where}: {problems}. {hint}")
    with torch.no_grad():
        for key, tensor in own.items():
            tensor.copy_(given[key].to(dtype=tensor.dtype))
