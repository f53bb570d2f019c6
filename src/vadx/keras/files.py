"""Reading Keras model files with h5py alone: the model config and every layer's weights.

Three forms are read (``describe_file`` says which one a path is):

* a Keras 3 archive ``.keras``: a zip of ``config.json`` and ``model.weights.h5``, whose groups
  are named after layer classes (``layers/conv2d_3``) and whose ``vars`` carry the layer's name
  and its variables by creation index (``vars/0`` kernel, ``vars/1`` bias …);
* a legacy HDF5 model ``.h5`` (tf.keras 2 layout, also what Keras 3 writes for ``.h5``): the
  config in the ``model_config`` attribute, the weights under ``model_weights/<layer>`` with
  their names in the ``weight_names`` attribute (``block1_conv1/kernel:0``);
* a weights file in either layout (``.weights.h5`` or a legacy ``.h5`` from ``save_weights``)
  plus the model config as JSON (``model.to_json()``, or a ``.keras`` archive's
  ``config.json``).

:class:`KerasWeights` answers one question for both layouts: the arrays of the layer named
``leaf`` inside the top-level layer ``top``, in Keras' creation order.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np

from vadx.errors import ModelImportError
from vadx.files import parse_json

KERAS_CONFIG = "config.json"
KERAS_WEIGHTS = "model.weights.h5"


class KerasObject(TypedDict):
    """A serialised Keras object (a model, a layer) as Keras' JSON holds it: its class and its
    ``config``, whose settings are each class's own (Keras' format, read as it is, not vadx's);
    a layer of a functional model also says what feeds it (``inbound_nodes``)."""

    class_name: str
    config: dict[str, Any]
    name: NotRequired[str]
    inbound_nodes: NotRequired[list[Any]]


@dataclass
class KerasModelFile:
    """A Keras model read from disk: its config (``{"class_name", "config"}``) and weights."""

    config: KerasObject
    weights: KerasWeights
    format: str
    source: str


class KerasWeights:
    """Arrays per layer, keyed ``(top-level layer name, leaf layer name)``.

    The leaf is the layer that owns variables: the top-level layer itself, or a layer nested in
    it (a conv inside ``TimeDistributed(vgg19)``; ``forward_gru`` inside ``Bidirectional``). An
    RNN cell's variables belong to its RNN layer.
    """

    def __init__(self, by_index: dict, by_name: dict, source: str) -> None:
        self._by_index = by_index  # Keras 3: (top, leaf) -> [arrays in creation order]
        self._by_name = by_name  # legacy: (top, leaf) -> {variable name: array}
        self.source = source

    def arrays(self, top: str, leaf: str, names: Sequence[str]) -> list[np.ndarray]:
        """The variables ``names`` (Keras' creation order) of layer ``leaf`` in ``top``."""
        key = (top, leaf)
        if key in self._by_index:
            found = self._by_index[key]
            if len(found) != len(names):
                raise ModelImportError(
                    f"{self.source}: layer {leaf!r} has {len(found)} weight arrays, expected "
                    f"{len(names)} ({', '.join(names)})"
                )
            return found
        named = self._by_name.get(key, {})
        missing = [name for name in names if name not in named]
        if missing:
            have = ", ".join(sorted(named)) or "none"
            raise ModelImportError(
                f"{self.source}: no weights {', '.join(missing)} for layer {leaf!r} "
                f"(in {top!r}); found: {have}"
            )
        return [named[name] for name in names]


def read_keras_file(path: str | Path, config_path: str | Path | None = None) -> KerasModelFile:
    """Read a ``.keras`` archive, a legacy ``.h5`` model, or a weights file + ``config_path``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"no Keras model at {path}: the file does not exist")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {KERAS_CONFIG, KERAS_WEIGHTS} <= names:
                raise ModelImportError(
                    f"{path} is a zip but not a Keras archive (no {KERAS_CONFIG} and "
                    f"{KERAS_WEIGHTS})"
                )
            config = _parse_json(archive.read(KERAS_CONFIG), f"{path}:{KERAS_CONFIG}")
            blob = io.BytesIO(archive.read(KERAS_WEIGHTS))
        with h5py.File(blob, "r") as h5:
            weights = _read_h5_weights(h5, str(path))
        return KerasModelFile(_override(config, config_path), weights, "keras", str(path))
    if not h5py.is_hdf5(path):
        raise ModelImportError(f"{path} is neither a Keras archive (.keras) nor an HDF5 file (.h5)")
    with h5py.File(path, "r") as h5:
        weights = _read_h5_weights(h5, str(path))
        embedded = h5.attrs.get("model_config")
    if embedded is not None:
        config = _parse_json(embedded, f"{path} (model_config)")
        return KerasModelFile(_override(config, config_path), weights, "h5", str(path))
    if config_path is None:
        raise ModelImportError(
            f"{path} holds weights only: give the model's config too ({{config}} model.json, "
            "from model.to_json() or a .keras archive's config.json)",
            "config",
        )
    return KerasModelFile(_override(None, config_path), weights, "weights", str(path))


def _override(config: KerasObject | None, config_path: str | Path | None) -> KerasObject:
    """The model config of the file given apart (``config_path``), else ``config``."""
    if config_path is None and config is not None:
        return config
    config_path = Path(config_path)
    try:
        text = config_path.read_bytes()
    except OSError as err:
        raise ModelImportError(f"cannot read the model config {config_path}: {err}") from err
    return _parse_json(text, str(config_path))


def _parse_json(text: bytes | str, where: str) -> KerasObject:
    config = parse_json(text, where, ModelImportError)
    if isinstance(config, dict) and "class_name" not in config and "config" in config:
        config = config["config"]  # a wrapper such as {"config": {...}}
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ModelImportError(f"{where} is not a Keras model config (no class_name/config)")
    return config


def _read_h5_weights(h5: Any, source: str) -> KerasWeights:
    if "layers" in h5 and "vars" in h5:  # Keras 3 layout
        by_index: dict = {}
        for group in h5["layers"].values():
            top = _object_name(group)
            _collect_keras3(group, top, top, by_index)
        return KerasWeights(by_index, {}, source)
    root = h5.get("model_weights", h5)
    if "layer_names" not in root.attrs:
        raise ModelImportError(f"{source} holds no Keras weights (no layers / layer_names)")
    by_name: dict = {}
    for top in _strings(root.attrs["layer_names"]):
        group = root[top]
        for name in _strings(group.attrs.get("weight_names", [])):
            leaf, variable = _legacy_leaf(name)
            by_name.setdefault((top, leaf), {})[variable] = np.asarray(group[name])
    return KerasWeights({}, by_name, source)


def _collect_keras3(group: Any, top: str, leaf: str, found: dict) -> None:
    """Arrays of ``group`` (a layer's h5 group) and of the layers nested in it."""
    arrays = _variables(group)
    if "cell" in group:  # an RNN cell's variables are its layer's
        arrays += _variables(group["cell"])
    if arrays:
        found[(top, leaf)] = arrays
    for key, child in group.items():
        if key in ("vars", "cell") or not hasattr(child, "items"):
            continue
        nested = [child] if "vars" in child else list(child.values())  # a layer, or "layers/…"
        for layer in nested:
            if "vars" in layer:
                _collect_keras3(layer, top, _object_name(layer), found)


def _variables(group: Any) -> list[np.ndarray]:
    """A Keras 3 object's variables, in creation order (``vars/0``, ``vars/1`` …)."""
    return [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]


def _object_name(group: Any) -> str:
    name = group["vars"].attrs.get("name", "")
    return name.decode() if isinstance(name, bytes) else str(name)


def _legacy_leaf(weight_name: str) -> tuple[str, str]:
    """``(leaf layer, variable)`` of a legacy weight name such as ``gru/gru_cell/kernel:0``."""
    parts = weight_name.split(":")[0].split("/")
    variable = parts[-1]
    owners = [part for part in parts[:-1] if not part.endswith("_cell")] or parts[:-1]
    return (owners[-1] if owners else ""), variable


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]
