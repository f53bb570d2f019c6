"""``import_keras``: a Keras video classifier file → a vadx model with the same outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vadx.errors import ModelImportError
from vadx.keras.convert import build, plan
from vadx.keras.files import read_keras_file
from vadx.keras.graph import read_chain
from vadx.models.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from vadx.models.config import CRNNConfig
from vadx.models.crnn import CRNN
from vadx.models.weights import file_sha256

#: BGR means of ImageNet in 0–255 (Keras' "caffe" preprocess_input), in RGB order
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class Preprocessing:
    """How the Keras model wants its pixels, as vadx's normalisation of RGB values in [0, 1]."""

    description: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool = False


#: the value conventions a Keras model may have been trained with
PREPROCESSING = {
    "caffe": Preprocessing(
        "keras.applications VGG16/VGG19 preprocess_input: BGR, the ImageNet mean subtracted in "
        "0–255, no scaling",
        tuple(m / 255 for m in _CAFFE_MEAN_RGB),  # type: ignore[arg-type]
        (1 / 255,) * 3,  # type: ignore[arg-type]
        bgr=True,
    ),
    "unit": Preprocessing("RGB in [0, 1] (frames / 255)", (0.0,) * 3, (1.0,) * 3),  # type: ignore[arg-type]
    "raw": Preprocessing("RGB in 0–255, unchanged", (0.0,) * 3, (1 / 255,) * 3),  # type: ignore[arg-type]
    "tf": Preprocessing("RGB in [-1, 1] (frames / 127.5 − 1)", (0.5,) * 3, (0.5,) * 3),  # type: ignore[arg-type]
    "torch": Preprocessing("RGB in [0, 1], ImageNet mean and std", IMAGENET_MEAN, IMAGENET_STD),
}


@dataclass(frozen=True)
class KerasImport:
    """An imported model and what to record about where it came from."""

    model: CRNN
    metadata: dict[str, Any]


def import_keras(
    path: str | os.PathLike[str],
    *,
    classes: tuple[str, ...] | None = None,
    normal: str | None = "normal",
    preprocess: str = "caffe",
    config_path: str | os.PathLike[str] | None = None,
    num_frames: int | None = None,
    fit: str = "stretch",
) -> KerasImport:
    """Read a Keras model (``.keras``, legacy ``.h5``, or weights + ``config_path``) as a CRNN.

    Args:
        classes: class names in output order (default ``class_0`` …; a one-unit sigmoid gives
            two classes, ``1 − p`` then ``p``).
        normal: the "no anomaly" class, if it is one of ``classes`` (else none).
        preprocess: one of :data:`PREPROCESSING`, how the model's training frames were scaled.
        num_frames: clip length when the model does not fix it (default 20).
        fit: how frames reach the model's size (``stretch``, as Keras generators resize).

    The model's outputs (softmax probabilities) equal Keras' on the same frames.
    """
    if preprocess not in PREPROCESSING:
        raise ModelImportError(
            f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESSING)}"
        )
    keras_file = read_keras_file(path, config_path)
    chain = read_chain(keras_file.config)
    steps, height, width, channels = chain.input_shape
    if channels != 3:
        raise ModelImportError(f"the model takes {channels} channels per frame; vadx feeds RGB (3)")
    if height is None or width is None:
        raise ModelImportError(
            "the model's input does not fix the frame size (None × None); vadx needs it: "
            "rebuild the Keras model with its Input shape and save it again"
        )
    found = plan(chain)
    names = classes or tuple(f"class_{k}" for k in range(found.num_classes))
    if len(names) != found.num_classes:
        raise ModelImportError(
            f"{{classes}} names {len(names)} classes but the model has {found.num_classes} "
            f"outputs"
            + (
                " (a one-unit sigmoid: two classes, 1 − p then p)"
                if found.output == "sigmoid"
                else ""
            ),
            "classes",
        )
    prep = PREPROCESSING[preprocess]
    base = CRNNConfig(
        class_names=names,
        normal_class=normal if normal in names else None,
        num_frames=steps or num_frames or 20,
        frame_size=(height, width),
        fit=fit,
        mean=prep.mean,
        std=prep.std,
    )
    model = build(found, keras_file.weights, base, bgr=prep.bgr)
    metadata = {
        "created_by": "vadx import-keras",
        "imported_from": {
            "framework": "keras",
            "file": Path(path).name,
            "sha256": file_sha256(path),
            "format": keras_file.format,
            "input_shape": [None, *chain.input_shape],
            "output": found.output,
            "preprocess": preprocess,
            "preprocess_description": prep.description
            + ("; the BGR order is folded into the first convolution" if prep.bgr else ""),
            "ignored_layers": found.ignored,
        },
    }
    return KerasImport(model, metadata)
