"""Checkpoints: a directory with ``model.safetensors`` and ``config.json``. Nothing is pickled.

``config.json`` records the model configuration (architecture, classes, preprocessing), the
sha256 of the weights file, the versions that wrote it and free-form ``metadata`` (training
settings, metrics …). :func:`save_model` writes the directory atomically: a reader sees the
previous checkpoint or the new one, never a mix. :func:`load_model` validates everything and
says precisely what is wrong with a bad checkpoint.

>>> from vadx.models import CRNN, save_model, load_model
>>> model = CRNN(backbone_args={"width": 0.0625}, rnn_hidden=32)         # doctest: +SKIP
>>> save_model(model, "runs/tiny")                                        # doctest: +SKIP
>>> same = load_model("runs/tiny")                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from vadx._version import __version__
from vadx.errors import CheckpointError, ConfigError
from vadx.files import read_json, write_safetensors
from vadx.models.config import CRNNConfig
from vadx.models.crnn import CRNN
from vadx.models.domain_stats import load_domain
from vadx.models.state_dict import state_dict_mismatch
from vadx.models.weights import file_sha256

FORMAT = "vadx.checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's ``config.json`` says, validated."""

    path: Path
    config: CRNNConfig
    weights_sha256: str
    num_parameters: int
    vadx_version: str
    torch_version: str
    created: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the ``domain`` section of config.json (see :mod:`vadx.detect.domain`), None if uncalibrated
    domain: dict[str, Any] | None = None
    #: the ``explanation_layers`` section (see :mod:`vadx.quality.layers`), None if none chosen
    explanation_layers: dict[str, Any] | None = None
    #: the ``trust_calibration`` section (see :mod:`vadx.quality.trust_prior`), None if none
    trust_calibration: dict[str, Any] | None = None

    @property
    def model_id(self) -> str:
        """Short, stable identifier of the weights: ``sha256:<first 16 hex digits>``."""
        return f"sha256:{self.weights_sha256[:16]}"


def save_model(
    model: CRNN,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write ``model`` to the checkpoint directory ``path`` atomically; returns ``path``.

    ``extra_files`` maps file names to writers called with the file's staging path; they land
    in the same atomic swap (a trainer's state beside the model it belongs to). An existing
    checkpoint at ``path`` is replaced; any other existing file or non-empty directory is left
    alone and raises :class:`CheckpointError`.
    """
    target = Path(path)
    bad = non_finite_tensors(model.state_dict())
    if bad:
        raise CheckpointError(
            f"refusing to save a model with NaN or infinite weights ({', '.join(bad[:3])}) to "
            f"{target}"
        )
    _refuse_to_clobber(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        weights = write_safetensors(
            staging / WEIGHTS_FILE, tensors, {"format": "pt", "writer": f"vadx {__version__}"}
        )
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vadx_version": __version__,
            "torch_version": torch.__version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": model.config.to_dict(),
            "weights": {
                "file": WEIGHTS_FILE,
                "sha256": file_sha256(weights),
                "num_parameters": sum(p.numel() for p in model.parameters()),
            },
            "metadata": _json_ready(metadata or {}),
        }
        config = staging / CONFIG_FILE
        config.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        _fsync(config)
        for name, write in (extra_files or {}).items():
            write(staging / name)
            _fsync(staging / name)
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_checkpoint(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Validate a checkpoint's ``config.json`` (not yet the weights) and return what it says.

    ``path`` is the checkpoint directory, or its ``config.json`` or ``model.safetensors``.
    """
    directory = _checkpoint_dir(Path(path))
    config_path = directory / CONFIG_FILE
    document = read_json(config_path, CheckpointError)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(
            f"{config_path} is not a vadx checkpoint config (no format {FORMAT!r})"
        )
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has checkpoint format version {version!r}; this vadx "
            f"({__version__}) reads up to {FORMAT_VERSION}: upgrade vadx"
        )
    try:
        config = CRNNConfig.from_dict(document["model"])
        weights = document["weights"]
        sha = weights["sha256"]
        if weights["file"] != WEIGHTS_FILE or not isinstance(sha, str):
            raise ConfigError(f"weights must name {WEIGHTS_FILE} and its sha256")
        info = CheckpointInfo(
            path=directory,
            config=config,
            weights_sha256=sha,
            num_parameters=int(weights["num_parameters"]),
            vadx_version=str(document["vadx_version"]),
            torch_version=str(document["torch_version"]),
            created=str(document["created"]),
            metadata=dict(document.get("metadata") or {}),
            domain=document.get("domain"),
            explanation_layers=document.get("explanation_layers"),
            trust_calibration=document.get("trust_calibration"),
        )
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise CheckpointError(f"invalid checkpoint config {config_path}: {detail}") from err
    return info


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", verify: bool = True
) -> CRNN:
    """Rebuild the model saved at ``path``, in eval mode, on ``device``.

    The weights' sha256 is checked against ``config.json`` (``verify=False`` skips it, for very
    large files), then every tensor's name and shape against the architecture. The returned
    model carries the :class:`CheckpointInfo` as ``model.checkpoint`` and its domain
    statistics (:class:`~vadx.detect.domain.DomainStats`, or None) as ``model.domain``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = read_checkpoint(path)
    weights = info.path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {info.path} has no {WEIGHTS_FILE}")
    if verify:
        actual = file_sha256(weights)
        if actual != info.weights_sha256:
            raise CheckpointError(
                f"{weights} is corrupt or was changed: its sha256 is {actual}, config.json "
                f"records {info.weights_sha256}"
            )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {weights}: {err}") from err
    try:
        model = CRNN(info.config)
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {info.path} describes an invalid model: {err}") from err
    _load_state_exactly(model, state, weights)
    model.checkpoint = info
    model.domain = load_domain(info.path, info.domain, info.weights_sha256)
    model.explanation_layers = _chosen_layers(model, info)
    _check_trust_calibration(info)
    return model.to(device).eval()


def _check_trust_calibration(info: CheckpointInfo) -> None:
    """Refuse a trust calibration (``vadx calibrate-trust``) measured on other weights: its
    match rates describe another model."""
    if info.trust_calibration is not None:
        _check_weights_section(
            info,
            info.trust_calibration,
            f"the trust calibration in {info.path / CONFIG_FILE}",
            "is",
            "was measured on other weights; calibrate again: "
            f"vadx calibrate-trust {info.path} DATA",
        )


def _check_weights_section(
    info: CheckpointInfo, section: Any, where: str, verb: str, stale: str
) -> None:
    """Refuse a ``config.json`` section measured on the model's weights (``weights_sha256``
    and ``methods``), named ``where`` (``verb``: "is" or "are"), that is malformed or was
    measured on other weights (then the message goes on with ``stale``)."""
    if not isinstance(section, dict) or not isinstance(section.get("methods"), dict):
        raise CheckpointError(f"{where} {verb} invalid: expected weights_sha256 and methods")
    if section.get("weights_sha256") != info.weights_sha256:
        raise CheckpointError(f"{where} {stale}")


def _chosen_layers(model: CRNN, info: CheckpointInfo) -> dict[str, str]:
    """The layers chosen for the CAM methods (``vadx choose-layer``), checked against the
    weights and the backbone."""
    section = info.explanation_layers
    if not section:
        return {}
    where = f"the explanation layers in {info.path / CONFIG_FILE}"
    _check_weights_section(
        info,
        section,
        where,
        "are",
        f"were chosen for other weights; choose them again: vadx choose-layer {info.path} DATA",
    )
    chosen = {}
    for method, entry in section["methods"].items():
        layer = entry.get("layer") if isinstance(entry, dict) else None
        try:
            model.backbone.get_layer(str(layer))
        except ConfigError as err:
            raise CheckpointError(f"{where}: {method}: {err}") from err
        chosen[str(method)] = str(layer)
    return chosen


def _load_state_exactly(model: CRNN, state: dict[str, torch.Tensor], source: Path) -> None:
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{source} does not match the architecture in config.json: {problems}"
        )
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{source} holds NaN or infinite weights ({', '.join(bad[:3])}"
            f"{', …' if len(bad) > 3 else ''}): such a model gives no meaningful output; restore "
            "another checkpoint or train again"
        )
    model.load_state_dict(state, strict=True)


def non_finite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors that hold NaN or infinite values."""
    return [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def _checkpoint_dir(path: Path) -> Path:
    if path.is_file() and path.name in {CONFIG_FILE, WEIGHTS_FILE}:
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist")
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is a file; a vadx checkpoint is a directory with {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}"
        )
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(f"{path} is not a vadx checkpoint: it has no {CONFIG_FILE}")
    return path


def _refuse_to_clobber(target: Path) -> None:
    if not target.exists():
        return
    if target.is_dir() and (not any(target.iterdir()) or is_checkpoint(target)):
        return
    raise CheckpointError(
        f"will not overwrite {target}: it exists and is not a vadx checkpoint; choose another path"
    )


def is_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a vadx checkpoint (its config.json says so)."""
    directory = Path(directory)
    try:
        document = read_json(directory / CONFIG_FILE, CheckpointError)
    except CheckpointError:
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
    else:
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "previous")
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_ready(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"metadata must be JSON-serialisable: {err}") from err
