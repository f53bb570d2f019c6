"""Immutable results of :func:`vadx.explain.explain` and their audit-ready ``save()``."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np
import torch

from vadx._version import __version__
from vadx.explain.base import MethodSettings
from vadx.explain.protocol import JsonValue
from vadx.files import atomic_path, write_json


def frozen_array(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """A read-only numpy copy of ``tensor`` (float32 unless it holds integers)."""
    array = tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
    array = np.array(array, dtype=array.dtype if array.dtype.kind in "iub" else np.float32)
    array.setflags(write=False)
    return array


Tree = TypeVar("Tree")


def on_host(tree: Tree) -> Tree:
    """``tree`` with every tensor detached and on the CPU; a tree is a tensor, or a tuple,
    mapping or dataclass of trees (anything else is kept as it is). The floating tensors of a
    GPU travel to host memory in one transfer, as float32: one synchronisation instead of one
    per tensor."""
    tensors: list[torch.Tensor] = []
    _map_tensors(tree, tensors.append)
    moving = {
        id(t): t.detach() for t in tensors if t.is_floating_point() and t.device.type != "cpu"
    }
    moved: dict[int, torch.Tensor] = {}
    if moving:
        flat = torch.cat([t.float().reshape(-1) for t in moving.values()]).cpu()
        pieces = flat.split([t.numel() for t in moving.values()])
        for (key, tensor), piece in zip(moving.items(), pieces, strict=True):
            moved[key] = piece.view(tensor.shape)
    return _map_tensors(tree, lambda t: moved[id(t)] if id(t) in moved else t.detach().cpu())


def _map_tensors(tree: Any, function: Callable[[torch.Tensor], Any]) -> Any:
    """``tree`` rebuilt with ``function`` applied to each of its tensors, in order."""
    if isinstance(tree, torch.Tensor):
        return function(tree)
    if isinstance(tree, tuple):
        items = [_map_tensors(item, function) for item in tree]
        return type(tree)._make(items) if hasattr(tree, "_fields") else tuple(items)
    if isinstance(tree, Mapping):
        return {key: _map_tensors(value, function) for key, value in tree.items()}
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {
            f.name: _map_tensors(getattr(tree, f.name), function)
            for f in dataclasses.fields(tree)
            if f.init
        }
        return dataclasses.replace(tree, **changes)
    return tree


Key = TypeVar("Key")
Value = TypeVar("Value")


def frozen_mapping(items: Mapping[Key, Value]) -> Mapping[Key, Value]:
    """A read-only copy of ``items`` (later changes to ``items`` do not show through)."""
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class Attribution:
    """One spatial method's result for a batch of clips.

    Attributes:
        method, display_name: registry name (``gradcam``) and the name to print.
        raw: ``(B, T, h, w)`` as computed (``h, w`` of the layer, or of the frame).
        display: ``(B, T, H, W)`` upsampled to the frame, by magnitude, normalised.
        frame_scores: ``(B, T)`` each frame's raw mass.
        signed: whether raw values carry evidence for (+) and against (−).
        settings: everything that changes the result (layer, weighting, steps, …).
        extras: further arrays of the method (top channels, completeness delta, …).
        off_picture: ``(B,)`` share of the raw magnitude on letter-box padding (None when the
            explanation was not told where the picture is).
    """

    method: str
    display_name: str
    raw: np.ndarray
    display: np.ndarray
    frame_scores: np.ndarray
    signed: bool
    settings: MethodSettings
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    off_picture: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by the name it is saved under (``raw``, ``display``, ``frame_scores``,
        ``off_picture`` when known, then the extras)."""
        arrays = {"raw": self.raw, "display": self.display, "frame_scores": self.frame_scores}
        if self.off_picture is not None:
            arrays["off_picture"] = self.off_picture
        return {**arrays, **self.extras}


@dataclass(frozen=True)
class FrameImportance:
    """One temporal estimator's result: ``scores`` ``(B, T)``, how much each frame mattered."""

    estimator: str
    display_name: str
    scores: np.ndarray
    signed: bool
    settings: MethodSettings
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by the name it is saved under (``scores``, then the extras)."""
        return {"scores": self.scores, **self.extras}


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`~vadx.explain.explain` found about a batch of clips.

    Attributes:
        class_names: the model's classes.
        logits, probabilities: ``(B, K)`` of the unperturbed clips.
        targets: ``(B,)`` the explained class of each video (−1 for a callable target);
            ``target_names`` their names; ``target`` what was asked for.
        maps: spatial results by method name; ``temporal``: frame importance by estimator.
        normalisation: of the display maps (``clip``, ``frame`` or ``none``).
        clip: the explained clips ``(B, T, 3, H, W)`` (normalised, read-only), for rendering;
            :attr:`clip_sha256` hashes them for the audit record.
        seconds: wall time of the shared pass and of each method.
        model: the model's checkpoint id and configuration.
    """

    class_names: tuple[str, ...]
    logits: np.ndarray
    probabilities: np.ndarray
    targets: np.ndarray
    target_names: tuple[str, ...]
    target: str
    maps: Mapping[str, Attribution]
    temporal: Mapping[str, FrameImportance]
    normalisation: str
    clip: np.ndarray
    seconds: Mapping[str, float]
    model: Mapping[str, JsonValue]
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __getitem__(self, name: str) -> Attribution | FrameImportance:
        if name in self.maps:
            return self.maps[name]
        if name in self.temporal:
            return self.temporal[name]
        known = ", ".join([*self.maps, *self.temporal])
        raise KeyError(f"no method {name!r} in this explanation; it holds {known}")

    @functools.cached_property
    def clip_sha256(self) -> str:
        """sha256 of the clips' float32 bytes (C order), computed when first asked for."""
        return hashlib.sha256(np.ascontiguousarray(self.clip, np.float32).tobytes()).hexdigest()

    @property
    def predicted(self) -> tuple[str, ...]:
        """Each video's most probable class."""
        return tuple(self.class_names[i] for i in self.probabilities.argmax(1))

    def manifest(self) -> dict[str, Any]:
        """The audit record: predictions, targets, every setting, hashes and versions."""
        return {
            "created": self.created,
            "clip_shape": list(self.clip.shape),
            "clip_sha256": self.clip_sha256,
            "model": dict(self.model),
            "class_names": list(self.class_names),
            "predicted": list(self.predicted),
            "probabilities": self.probabilities.round(6).tolist(),
            "target": self.target,
            "target_names": list(self.target_names),
            "normalisation": self.normalisation,
            "maps": {
                name: {
                    "display_name": a.display_name,
                    "signed": a.signed,
                    "settings": dict(a.settings),
                    "raw_shape": list(a.raw.shape),
                    "off_picture_share": None
                    if a.off_picture is None
                    else a.off_picture.round(6).tolist(),
                }
                for name, a in self.maps.items()
            },
            "temporal": {
                name: {
                    "display_name": f.display_name,
                    "signed": f.signed,
                    "settings": dict(f.settings),
                }
                for name, f in self.temporal.items()
            },
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "versions": versions(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by a flat name (``gradcam/raw``, ``frame_occlusion/scores``, …)."""
        arrays = {
            "logits": self.logits,
            "probabilities": self.probabilities,
            "targets": self.targets,
        }
        for name, result in [*self.maps.items(), *self.temporal.items()]:
            arrays.update({f"{name}/{key}": value for key, value in result.arrays().items()})
        return arrays

    def save(self, out: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``explanation.npz`` (every array) and ``manifest.json`` (with ``extra`` entries,
        e.g. the source video) into ``out``; each file appears whole or not at all."""
        out = Path(out)
        with atomic_path(out / "explanation.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **self.arrays())
        write_json(out / "manifest.json", {**self.manifest(), **(extra or {})})
        return out


def versions() -> dict[str, str]:
    return {
        "vadx": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
