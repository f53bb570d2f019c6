"""``vadx train`` as a function: a dataset path in, a training run directory out."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx import distributed
from vadx.borrowed import random_kept
from vadx.data.dataset import VideoDataset, VideoSample
from vadx.data.splits import training_samples
from vadx.detect.domain import calibrate, save_domain
from vadx.errors import InputError
from vadx.files import read_json, write_json
from vadx.models.checkpoint import load_model
from vadx.models.config import CRNNConfig
from vadx.models.crnn import CRNN
from vadx.models.weights import load_backbone_weights
from vadx.train.config import TrainConfig, preset
from vadx.train.loop import Progress, TrainResult, train
from vadx.video.preprocess import Augment

#: the file of a run folder that records how the run was started (written before epoch 0)
RUN_FILE = "train_config.json"
#: what ``--resume --override`` may change in a run, and what the change does; every other
#: setting (the model, its weights, the optimizer, the schedule, the seed, augmentation,
#: feature caching) is fixed by the run's checkpoints: start a new run to change it
OVERRIDABLE = {
    "epochs": "more epochs continue a finished run; a cosine schedule is stretched to the new end",
    "patience": "a larger patience continues a run that stopped early",
    "lr": "every rate from the resumed epoch on is scaled by new / old (the schedule keeps its "
    "shape)",
    "batch_size": "clips per step from the resumed epoch on",
    "workers": "decoding processes (results do not depend on them)",
    "data": "the dataset moved: the same classes are needed",
    "val": "the validation data moved",
}


@random_kept()  # the run is seeded; the caller's generators come back as they were
def train_from_path(
    data: str | Path,
    out: str | Path,
    preset_name: str | None = None,
    *,
    model_changes: dict[str, Any] | None = None,
    train_changes: dict[str, Any] | None = None,
    classes: tuple[str, ...] | None = None,
    normal_class: str | None = "normal",
    start_from: str | Path | None = None,
    backbone_weights: str | None = None,
    val: str | Path | None = None,
    resume: bool = False,
    skip_bad: bool = False,
    progress: Progress | None = None,
    override: bool = False,
) -> TrainResult:
    """Train a CRNN on the dataset at ``data`` and write the run to ``out``.

    The model comes from ``preset_name`` (default ``cpu``, with ``model_changes``), or from
    the checkpoint ``start_from`` (fine-tuning). A folder holding a run stopped before its
    first checkpoint is started over.

    With ``resume`` the run in ``out`` continues with its own settings: from ``out/last``, or
    from epoch 0 when it was stopped before its first checkpoint. Settings given again must
    equal the run's; with ``override`` those in :data:`OVERRIDABLE` may differ.
    """
    out = Path(out)
    device = distributed.init()
    asked = {
        "data": data,
        "val": val,
        "preset": preset_name,
        "start_from": start_from,
        "backbone_weights": backbone_weights,
        **(model_changes or {}),
        **(train_changes or {}),
    }
    if resume:
        run = _recorded_run(out)
        _check_resumed_settings(out, run, asked, override)
        config = run.train.replace(
            **{k: v for k, v in (train_changes or {}).items() if k in OVERRIDABLE}
        )
        data = data if override else run.recorded["data"]
        val = val if val is not None and override else run.val_data
        model_config = run.model
        classes, normal_class, model_changes = model_config.class_names, None, None
        start_from = run.recorded.get("start_from")
        backbone_weights = run.recorded.get("backbone_weights")
        preset_name = run.recorded.get("preset")
    else:
        _refuse_a_run_with_checkpoints(out)
        model_config, config, preset_weights = preset(preset_name or "cpu", ("x", "y"), None)
        if "backbone" in (model_changes or {}) and "backbone_args" not in model_changes:
            # the preset's backbone arguments are its backbone's (a VGG width): a backbone
            # named without its own arguments takes its defaults
            model_changes = {**model_changes, "backbone_args": {}}
        config = config.replace(**(train_changes or {}))
        if (
            backbone_weights is None
            and start_from is None
            and "backbone" not in (model_changes or {})
        ):
            backbone_weights = preset_weights
    from_checkpoint = resume and (out / "last").is_dir()
    train_samples, val_samples, found = training_samples(
        data, classes, val=val, val_fraction=config.val_fraction, seed=config.seed
    )
    if from_checkpoint:
        model = load_model(out / "last", device=device)
    else:
        normal = model_config.normal_class if resume else normal_class
        model = _new_model(
            model_config, model_changes, found, normal, config.seed, start_from, backbone_weights
        ).to(device)
    mc = model.config

    def dataset(samples, augment):
        return VideoDataset.for_model(
            mc,
            samples,
            found,
            seed=config.seed,
            skip_bad=skip_bad,
            augment=Augment() if augment else None,
        )

    train_set = dataset(train_samples, config.augment)
    val_set = dataset(val_samples, False)
    steps = [(span - 1) / max(mc.num_frames - 1, 1) for span in train_set.spans]
    metadata = {
        "data": str(data),
        "val_data": None if val is None else str(val),
        "train_clips": len(train_set),
        "val_clips": len(val_set),
        "skipped": train_set.skipped + val_set.skipped,
        # how far apart a training clip's frames were: detection samples windows alike
        "sampling_step": float(np.median(steps)) if steps else 1.0,
    }
    if distributed.rank() == 0:
        _remove_unfinished_run(out)
        document = {
            "train": config.to_dict(),
            "model": mc.to_dict(),
            "preset": preset_name or "cpu",
            "start_from": None if start_from is None else str(start_from),
            "backbone_weights": backbone_weights,
            **metadata,
        }
        write_json(out / RUN_FILE, document)
    try:
        result = train(
            model,
            train_set,
            val_set,
            out,
            config,
            resume=from_checkpoint,
            progress=progress,
            metadata=metadata,
        )
        if distributed.rank() == 0:
            add_domain_statistics(result.best, train_set, val_set, progress)
        return result
    finally:
        distributed.shutdown()


def _new_model(
    model_config: CRNNConfig,
    model_changes: dict[str, Any] | None,
    found: tuple[str, ...],
    normal_class: str | None,
    seed: int,
    start_from: str | Path | None,
    backbone_weights: str | None,
) -> CRNN:
    """The model a run starts from: ``start_from``'s, or a new one of ``model_config`` (with
    the data's classes), seeded, with ``backbone_weights`` loaded."""
    torch.manual_seed(seed)
    if start_from is not None:
        model = load_model(start_from)
        if model.class_names != found:
            raise InputError(
                f"the data's classes ({', '.join(found)}) are not those of {start_from} "
                f"({', '.join(model.class_names)})"
            )
    else:
        normal = normal_class if normal_class in found else None
        model = CRNN(
            model_config.replace(class_names=found, normal_class=normal, **(model_changes or {}))
        )
    if backbone_weights is not None:
        load_backbone_weights(model.backbone, backbone_weights, progress=True)
    elif start_from is None and model.config.freeze != "none":
        raise InputError(
            "the backbone is frozen but starts from random weights, so its frozen units "
            "would never learn: "
            "give pretrained weights ({weights} PATH|URL|imagenet) or train it "
            "({freeze} none {no_cache_features}, or {preset} cpu-scratch)",
            "weights",
            "freeze",
            "no_cache_features",
            "preset",
        )
    return model


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A training run as its :data:`RUN_FILE` records it: its settings, its model's, its
    validation data, and ``recorded``: its training settings, dataset, preset, starting
    checkpoint and backbone weights as the file holds them (a run recorded before vadx
    recorded a setting lacks it), which a resumed run's settings are compared with."""

    train: TrainConfig
    model: CRNNConfig
    val_data: str | None
    recorded: dict[str, Any]


#: the settings of a run that :class:`RecordedRun` keeps as recorded
_RECORDED = ("preset", "start_from", "data", "backbone_weights")


def _recorded_run(out: Path) -> RecordedRun:
    """The run ``out`` records in :data:`RUN_FILE`, or InputError where there is none."""
    path = out / RUN_FILE
    if not path.is_file():
        raise InputError(
            f"nothing to resume: {out} holds no training run (no {RUN_FILE}); start one "
            "without {resume}",
            "resume",
        )
    try:
        run = read_json(path, InputError)
        return RecordedRun(
            train=TrainConfig(**run["train"]),
            model=CRNNConfig.from_dict(run["model"]),
            val_data=run.get("val_data"),
            recorded={**run["train"], **{k: run[k] for k in _RECORDED if k in run}},
        )
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"cannot resume {out}: {path} is damaged ({err}); start the run over in another "
            "{out}",
            "out",
        ) from err


_MODEL_SETTINGS = frozenset(f.name for f in fields(CRNNConfig))


def resumed_differences(run: RecordedRun, asked: dict[str, Any]) -> dict[str, tuple]:
    """``{setting: (the run's value, the value asked)}`` for every setting ``asked`` (None:
    not given) that differs from what the ``run`` (its :data:`RUN_FILE`) records (a run
    recorded before vadx recorded a setting is not compared on it)."""
    model = run.model
    recorded = {**run.recorded, "val": run.val_data}
    differences = {}
    for key, value in asked.items():
        if value is None or not (key in _MODEL_SETTINGS or key in recorded):
            continue
        old = getattr(model, key) if key in _MODEL_SETTINGS else recorded[key]
        same = _same_path(old, value) if key in ("data", "val", "start_from") else old == value
        if not same:
            differences[key] = (old, value)
    return differences


def _same_path(old: Any, new: Any) -> bool:
    return old is not None and Path(old).resolve() == Path(new).resolve()


def _check_resumed_settings(
    out: Path, run: RecordedRun, asked: dict[str, Any], override: bool
) -> None:
    differences = resumed_differences(run, asked)
    fixed = {k: v for k, v in differences.items() if k not in OVERRIDABLE}
    named = [_field(k) for k in differences]
    listed = "; ".join(
        f"{{{_field(k)}}} {new} (the run: {old})" for k, (old, new) in differences.items()
    )
    if fixed:
        raise InputError(
            f"cannot resume {out} with other {', '.join('{' + _field(k) + '}' for k in fixed)}: "
            f"the run's checkpoints fix them ({listed}); leave them out, or start a new run in "
            f"another {{out}} ({{start_from}} {out / 'last'} fine-tunes it)",
            *named,
            "out",
            "start_from",
        )
    if differences and not override:
        raise InputError(
            f"{{resume}}: settings differ from the run in {out}: {listed}; give {{override}} "
            "to change them, or leave them out",
            *named,
            "resume",
            "override",
        )


def _field(setting: str) -> str:
    """The name a run's setting goes by where people give it (the CLI's options)."""
    names = {
        "backbone_weights": "weights",
        "num_frames": "frames",
        "frame_size": "size",
        "backbone_args": "width",
    }
    return names.get(setting, setting)


#: what a run folder holds before its first checkpoint (and the staging of its files)
_UNFINISHED = ("best", "history.json", RUN_FILE)
_STAGING_PREFIXES = tuple(f".{name}." for name in ("last", *_UNFINISHED))


def _left_by_a_run(name: str) -> bool:
    """Whether a file named ``name`` in a run folder is one a run writes before ``last/``."""
    return name in _UNFINISHED or name.startswith(_STAGING_PREFIXES)


def _refuse_a_run_with_checkpoints(out: Path) -> None:
    if (out / "last").is_dir():
        raise InputError(
            f"{out} already holds a training run; use {{resume}} to continue it or choose "
            "another {out}",
            "resume",
            "out",
        )
    other = (
        sorted(p.name for p in out.iterdir() if not _left_by_a_run(p.name))
        if (out.is_dir())
        else []
    )
    if other:
        raise InputError(
            f"{out} is not empty and holds no training run ({', '.join(other[:3])}"
            f"{', …' if len(other) > 3 else ''}): choose another {{out}}",
            "out",
        )


def _remove_unfinished_run(out: Path) -> None:
    """Clear what a run stopped before its first checkpoint left (it starts over)."""
    if not out.is_dir() or (out / "last").is_dir():
        return
    for entry in out.iterdir():
        if _left_by_a_run(entry.name):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def add_domain_statistics(
    checkpoint: Path, train_set: VideoDataset, val_set: VideoDataset, progress=None
) -> None:
    """Fit the domain check (:mod:`vadx.detect.domain`) of the trained model on its training clips,
    un-augmented, and calibrate it on the validation clips; stored in the checkpoint."""
    if len(val_set) == 0 or not checkpoint.is_dir():
        return
    model = load_model(checkpoint)
    plain = replace(train_set, augment=None, check=False)
    report = (
        None
        if progress is None
        else (lambda what, done, total: progress(f"domain statistics: {what}", done, total, {}))
    )
    save_domain(checkpoint, calibrate(model, plain, val_set, progress=report))


def training_sets(
    model: CRNN, data: str | Path, val: str | Path | None = None
) -> tuple[VideoDataset, VideoDataset]:
    """The clips ``model`` was trained and validated on, as it sees them: ``data``'s training
    clips, and ``val``'s — by default ``data``'s val/ split, else the share its training run
    held out (that run's fraction and seed, read from the checkpoint; 20 % and 0 without)."""
    train_samples, val_samples, classes = _training_samples(model, data, val)
    train_set = VideoDataset.for_model(model.config, train_samples, classes)
    return train_set, VideoDataset.for_model(model.config, val_samples, classes)


def held_out_samples(
    model: CRNN, data: str | Path, val: str | Path | None = None
) -> list[VideoSample]:
    """The clips ``model`` was validated on (those of :func:`training_sets`), unread."""
    return _training_samples(model, data, val)[1]


def _training_samples(
    model: CRNN, data: str | Path, val: str | Path | None
) -> tuple[list[VideoSample], list[VideoSample], tuple[str, ...]]:
    checkpoint = model.checkpoint
    saved = (checkpoint.metadata.get("train_config") if checkpoint else None) or {}
    return training_samples(
        data,
        model.class_names,
        val=val,
        val_fraction=saved.get("val_fraction", 0.2),
        seed=saved.get("seed", 0),
    )
