"""A dataset path's splits: the samples of one split, the names of its folders, and the training
and validation sets of a training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vadx.data.dataset import VideoSample
from vadx.data.layouts import available_splits, folder_samples, list_file_samples
from vadx.errors import InputError


def load_samples(
    path: str | Path, class_names: tuple[str, ...] | None, split: str | None = None
) -> tuple[list[VideoSample], tuple[str, ...]]:
    """Samples of a folder layout (optionally one split) or a list file."""
    path = Path(path)
    if path.is_file():
        return list_file_samples(path, class_names)
    return folder_samples(path, class_names, split)


def split_names(path: Path) -> dict[str, str]:
    """The dataset's split folders by lower-case name (train/val/test)."""
    if not path.is_dir():
        return {}
    return {name.lower(): name for name in available_splits(path)}


def training_samples(
    path: str | Path,
    class_names: tuple[str, ...] | None,
    val: str | Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[VideoSample], list[VideoSample], tuple[str, ...]]:
    """Training and validation samples, and the classes.

    A folder with ``train/`` and ``val/`` splits uses them; ``val`` names another dataset (a
    folder or list file); otherwise ``val_fraction`` of the training data is held out,
    stratified by class and seeded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"dataset not found: {path}")
    splits = split_names(path)
    train_split = splits.get("train") if splits else None
    if splits and train_split is None:
        raise InputError(f"{path} has splits {', '.join(splits.values())} but no train split")
    train, classes = load_samples(path, class_names, train_split)
    if len(classes) < 2:
        raise InputError(
            f"{path} has clips of one class only ({', '.join(classes)}); training needs at "
            "least two classes"
        )
    if val is not None:
        held_out, _ = load_samples(val, classes)
    elif "val" in splits:
        held_out, _ = load_samples(path, classes, splits["val"])
    else:
        from sklearn.model_selection import train_test_split

        labels = np.array([s.label for s in train])
        if min(np.bincount(labels)[np.unique(labels)]) < 2:
            raise InputError(
                f"{path}: every class needs at least 2 clips to hold some out for validation; "
                "add clips or give a validation set"
            )
        keep, held = train_test_split(
            np.arange(len(train)), test_size=val_fraction, stratify=labels, random_state=seed
        )
        train, held_out = [train[i] for i in sorted(keep)], [train[i] for i in sorted(held)]
    if not held_out:
        raise InputError(f"the validation set of {path} is empty")
    return train, held_out, classes
