"""``vadx train`` as a function: a dataset path in, a training run directory out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.data.dataset import VideoDataset
from vadx.domain import calibrate, save_domain
from vadx.errors import InputError
from vadx.files import write_json
from vadx.models.checkpoint import load_model
from vadx.models.crnn import CRNN
from vadx.models.weights import load_backbone_weights
from vadx.train import distributed
from vadx.train.config import TrainConfig, preset
from vadx.train.data import training_samples
from vadx.train.loop import Progress, TrainResult, train
from vadx.video.preprocess import Augment


def train_from_path(
    data: str | Path,
    out: str | Path,
    preset_name: str = "cpu",
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
) -> TrainResult:
    """Train a CRNN on the dataset at ``data`` and write the run to ``out``.

    The model comes from ``preset_name`` (with ``model_changes``), or from the checkpoint
    ``start_from`` (fine-tuning), or — with ``resume`` — from ``out/last``.
    """
    out = Path(out)
    device = distributed.init()
    if resume:
        last = out / "last"
        if not last.is_dir():
            raise InputError(f"nothing to resume: {last} does not exist")
        model = load_model(last, device=device)
        saved = model.checkpoint.metadata
        config = TrainConfig(**saved["train_config"])
        val = saved.get("val_data") or val
        data = saved.get("data", data)
        classes = model.class_names
    else:
        if out.exists() and any(out.iterdir()):
            raise InputError(
                f"{out} already holds a training run; use --resume to continue it or choose "
                "another --out"
            )
        model_config, config, preset_weights = preset(preset_name, classes or ("x", "y"), None)
        config = config.replace(**(train_changes or {}))
        if (
            backbone_weights is None
            and start_from is None
            and "backbone" not in (model_changes or {})
        ):
            backbone_weights = preset_weights
    train_samples, val_samples, found = training_samples(
        data, classes, val=val, val_fraction=config.val_fraction, seed=config.seed
    )
    if not resume:
        normal = normal_class if normal_class in found else None
        torch.manual_seed(config.seed)
        if start_from is not None:
            model = load_model(start_from)
            if model.class_names != found:
                raise InputError(
                    f"the data's classes ({', '.join(found)}) are not those of {start_from} "
                    f"({', '.join(model.class_names)})"
                )
        else:
            model_config = model_config.replace(
                class_names=found, normal_class=normal, **(model_changes or {})
            )
            model = CRNN(model_config)
        if backbone_weights is not None:
            load_backbone_weights(model.backbone, backbone_weights, progress=True)
        elif start_from is None and model.config.freeze != "none":
            raise InputError(
                "the backbone is frozen but starts from random weights, so its frozen units "
                "would never learn: "
                "give pretrained weights (--weights PATH|URL|imagenet) or train it "
                "(--freeze none --no-cache-features, or --preset cpu-scratch)"
            )
        model = model.to(device)
    mc = model.config

    def dataset(samples, augment):
        return VideoDataset.for_model(
            mc, samples, found, augment=Augment() if augment else None, seed=config.seed,
            skip_bad=skip_bad,
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
        document = {"train": config.to_dict(), "model": mc.to_dict(), **metadata}
        write_json(out / "train_config.json", document)
    try:
        result = train(model, train_set, val_set, out, config, resume, progress, metadata)
        if distributed.rank() == 0:
            add_domain_statistics(result.best, train_set, val_set, progress)
        return result
    finally:
        distributed.shutdown()


def add_domain_statistics(
    checkpoint: Path, train_set: VideoDataset, val_set: VideoDataset, progress=None
) -> None:
    """Fit the domain check (:mod:`vadx.domain`) of the trained model on its training clips,
    un-augmented, and calibrate it on the validation clips; stored in the checkpoint."""
    if len(val_set) == 0 or not checkpoint.is_dir():
        return
    model = load_model(checkpoint)
    plain = replace(train_set, augment=None, check=False)
    report = None if progress is None else (lambda what, done, total: progress(
        f"domain statistics: {what}", done, total, {}))  # fmt: skip
    save_domain(checkpoint, calibrate(model, plain, val_set, progress=report))
