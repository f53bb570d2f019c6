"""The contract every explanation method fulfils (captum's, adapted to clips).

``Method(model, **settings).attribute(clip, target=None)`` returns raw attributions of clips
``(B, T, 3, H, W)``: maps ``(B, T, h, w)`` for spatial methods, frame scores ``(B, T)`` for
temporal ones. With ``return_extras=True`` it returns the method's whole :class:`Output`, a
named pair ``(raw, extras)``, like captum's ``return_convergence_delta`` (Integrated Gradients'
convergence delta is its ``delta`` extra)::

    maps, extras = IntegratedGradients(model).attribute(clip, return_extras=True)
    extras["delta"]                                  # (B,) completeness error of each video

Inside :func:`vadx.explain.explain` many methods share one forward/backward: each declares
what it reads from the shared :class:`~vadx.explain.passes.Pass` (:meth:`need`) and computes
from it (:meth:`compute`), running extra passes of its own only when it must (perturbations,
guided backprop). The model is any :class:`~vadx.explain.protocol.ExplainableModel`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import ClassVar, Literal, NamedTuple, overload

import torch

from vadx.borrowed import eval_mode
from vadx.catalogue import MethodKind
from vadx.errors import ConfigError
from vadx.explain.passes import Need, Pass, run_pass
from vadx.explain.protocol import ExplainableModel, check_explainable
from vadx.explain.targets import TargetSpec
from vadx.progress import ProgressFn

#: one value of a method's settings table, as the manifest records it: the JSON scalars the
#: methods use (a layer's name, a count, a noise level, a flag, None for "the default")
SettingValue = str | int | float | bool | None
#: a method's settings by name (:meth:`Method.settings`), e.g. ``{"layer": "block4_conv4"}``
MethodSettings = Mapping[str, SettingValue]
#: a value given to a method's constructor through ``explain(options=...)``: a setting, or a
#: tensor (Integrated Gradients' ``baseline``)
OptionValue = SettingValue | torch.Tensor


class Output(NamedTuple):
    """What a method computes: raw attributions and any named extra arrays (a pair, so
    ``raw, extras = output`` unpacks it)."""

    raw: torch.Tensor
    extras: Mapping[str, torch.Tensor] = MappingProxyType({})


class Method:
    """Base class of explanation methods (see module doc).

    Class attributes say how results are read: ``kind`` is ``"spatial"`` (maps, a method of
    :data:`~vadx.explain.METHODS`) or ``"temporal"`` (frame scores, an estimator of
    :data:`~vadx.explain.TEMPORAL`) and decides how :func:`~vadx.explain.explain` presents the
    result; ``signed`` methods give evidence for (+) and against (−),
    displayed by magnitude; ``display_name`` is what reports print, ``description`` the
    sentence pages show beside it.
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[MethodKind] = "spatial"
    signed: ClassVar[bool] = False

    def __init__(self, model: ExplainableModel) -> None:
        check_explainable(model)
        self.model = model
        self.progress: ProgressFn | None = None

    # ------------------------------------------------------------ the contract
    def need(self) -> Need:
        """What this method reads from the shared pass."""
        return Need()

    def compute(self, shared: Pass) -> Output:
        """Attributions from the shared pass (and any passes of its own)."""
        raise NotImplementedError

    def settings(self) -> dict[str, SettingValue]:
        """Every setting that changes the result, for the manifest: a table by name, since
        each method has its own."""
        return {}

    @overload
    def attribute(
        self, clip: torch.Tensor, target: TargetSpec = None, *, return_extras: Literal[False] = ...
    ) -> torch.Tensor: ...

    @overload
    def attribute(
        self, clip: torch.Tensor, target: TargetSpec = None, *, return_extras: Literal[True]
    ) -> Output: ...

    def attribute(
        self, clip: torch.Tensor, target: TargetSpec = None, *, return_extras: bool = False
    ) -> torch.Tensor | Output:
        """Raw attributions of ``clip`` ``(B, T, 3, H, W)`` for ``target`` (see
        :mod:`vadx.explain.targets`): ``(B, T, h, w)`` maps or ``(B, T)`` frame scores; with
        ``return_extras``, the :class:`Output` :meth:`compute` produced — the same raw
        attributions and the method's extras (what :func:`~vadx.explain.explain` records as
        ``Attribution.extras``)."""
        with eval_mode(self.model):
            output = self.compute(run_pass(self.model, clip, target, self.need()))
        return output if return_extras else output.raw

    # ------------------------------------------------------------ helpers
    def resolve_layer(self, layer: str | None, fine: bool = False) -> str:
        """``layer`` checked against the backbone (default: its last conv block, or with
        ``fine`` its last layer at stride 8): explanations read per-frame layers, which see
        every frame of the clip."""
        name = layer or self.model.backbone.cam_layer(fine)
        self.model.backbone.get_layer(name)  # a per-frame layer, or ConfigError naming some
        return name

    def chunks(self, total: int, size: int) -> Iterator[slice]:
        """Slices of ``range(total)`` of at most ``size``, reporting progress."""
        size = max(1, size)
        for start in range(0, total, size):
            yield slice(start, min(total, start + size))
            if self.progress is not None:
                self.progress(self.name, min(total, start + size), total)


def check_positive(name: str, value: int | float, integer: bool = True) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive (integer) number."""
    wrong_type = integer and (not isinstance(value, int) or isinstance(value, bool))
    if wrong_type or not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
