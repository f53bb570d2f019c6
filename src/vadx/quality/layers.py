"""Which layer should a CAM method read? Chosen by faithfulness on held-out clips, and recorded
in the checkpoint so that every later explanation of the model uses it.

Grad-CAM's map depends on its layer more than on anything else: at the last conv block of
EfficientNet-Lite0 (a 4×4 grid) the mean gradient weighs evidence from the whole frame, two
stages earlier it resolves the object. Which layer is best depends on the model, so it is
measured: for every candidate layer, the method's maps of held-out anomalous clips are scored
by the **deletion curve** (the explained class's probability as the map's top pixels are
replaced by a blurred copy, area under the curve, lower is better; see
:mod:`vadx.quality.faithfulness`), and the layer with the lowest mean area wins.

Candidates (default): the backbone's named layers at stride 8 or coarser that end a stage —
the last layer before the feature maps change shape (EfficientNet-Lite0: ``block4``, ``block7``,
``block10``, ``block14``, ``block15``, ``head``; VGG19: ``block3_pool``, ``block4_conv4``,
``block5_conv4``, ``block5_pool``).

The choice goes into the checkpoint's ``config.json`` (``explanation_layers``, tied to the
weights' sha256; the model id does not change) and :func:`vadx.models.load_model` gives it to
the methods as ``model.explanation_layers``: a method asked for no layer reads its chosen one,
exactly as if it had been given. An explicit ``layer`` still wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx.errors import ConfigError, InputError
from vadx.explain.base import ProgressFn
from vadx.explain.cam import LayerMethod
from vadx.explain.engine import METHODS, explain
from vadx.explain.hooks import LayerRecorder
from vadx.models.crnn import CRNN
from vadx.quality.faithfulness import auc, spatial_curves

#: the config.json section that records the choices
SECTION = "explanation_layers"
#: the finest resolution a candidate may have: a map cell covers at least 8×8 pixels
MIN_STRIDE = 8


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """A :class:`LayerChoice` for the record (``dataclasses.asdict`` is the checkpoint's
    ``explanation_layers`` entry): the layer, the criterion it was chosen by, each
    candidate's score (rounded), the clips and the steps of the curves."""

    layer: str
    criterion: str
    deletion_auc: dict[str, float]
    clips: int
    steps: int


@dataclass(frozen=True)
class LayerChoice:
    """The layer chosen for ``method``: ``deletion_auc`` holds each candidate's mean deletion
    area over ``clips`` held-out clips (lower: more faithful)."""

    method: str
    layer: str
    deletion_auc: dict[str, float]
    clips: int
    steps: int

    def describe(self) -> LayerRecord:
        """The choice for the record (the checkpoint's ``explanation_layers`` entry)."""
        return LayerRecord(
            layer=self.layer,
            criterion="deletion_auc",
            deletion_auc={k: round(v, 6) for k, v in self.deletion_auc.items()},
            clips=self.clips,
            steps=self.steps,
        )


def layer_methods() -> tuple[str, ...]:
    """The spatial methods that read one backbone layer (and so can have one chosen)."""
    return tuple(name for name, cls in METHODS.items() if issubclass(cls, LayerMethod))


def candidate_layers(model: CRNN) -> list[str]:
    """The backbone's named layers at stride ``MIN_STRIDE`` or coarser that end a stage (the
    last before the maps change shape), in forward order."""
    backbone = model.backbone
    names = list(dict.fromkeys(backbone.aliases))  # one name per layer, forward order
    order = {name: i for i, name in enumerate(backbone.layer_names())}
    names.sort(key=lambda name: order.get(backbone.resolve_layer(name), len(order)))
    size = tuple(model.config.frame_size)
    with LayerRecorder(model, names) as recorder, torch.no_grad():
        model.frame_maps(torch.zeros(1, 1, 3, *size))
    shapes = [tuple(recorder.outputs[name][0].shape[-3:]) for name in names]
    return [
        name
        for i, (name, shape) in enumerate(zip(names, shapes, strict=True))
        if shape[-1] * MIN_STRIDE <= size[-1]
        and shape[-2] * MIN_STRIDE <= size[-2]
        and (i + 1 == len(shapes) or shapes[i + 1] != shape)
    ]


def choose_layer(
    model: CRNN,
    clips: Iterable[tuple[torch.Tensor, int]],
    method: str = "gradcam",
    layers: Sequence[str] | None = None,
    steps: int = 10,
    progress: ProgressFn | None = None,
) -> LayerChoice:
    """The most faithful layer for ``method`` on ``clips`` — ``(clip (1, T, 3, H, W), target)``
    pairs the model was not trained on — among ``layers`` (default :func:`candidate_layers`)."""
    if method not in layer_methods():
        raise ConfigError(
            f"{method!r} does not read one layer; a layer can be chosen for "
            f"{', '.join(layer_methods())}"
        )
    clips = list(clips)
    if not clips:
        raise InputError("no clips to choose a layer on: give held-out clips of the classes")
    layers = list(layers) if layers else candidate_layers(model)
    for name in layers:
        model.backbone.get_layer(name)  # ConfigError naming some
    areas: dict[str, list[float]] = {name: [] for name in layers}
    total, done = len(clips) * len(layers), 0
    for clip, target in clips:
        for name in layers:
            e = explain(model, clip, target, methods=[method], temporal=[], layer=name)
            curve = spatial_curves(
                model,
                clip,
                e.maps[method].display[0],
                target,
                steps=steps,
                kinds=("deletion",),
                random=False,
            )
            areas[name].append(auc(curve["deletion"]))
            done += 1
            if progress is not None:
                progress("layers", done, total)
    means = {name: float(np.mean(values)) for name, values in areas.items()}
    best = min(layers, key=lambda name: (means[name], layers.index(name)))
    return LayerChoice(method, best, means, len(clips), steps)


def held_out_clips(dataset: Any, model: CRNN, limit: int) -> list[tuple[torch.Tensor, int]]:
    """Up to ``limit`` anomalous clips of ``dataset`` (a :class:`~vadx.data.dataset.VideoDataset`
    the model was not trained on), spread evenly over it, each with its class to explain."""
    normal = model.config.normal_class
    labels = [sample.label for sample in dataset.samples]
    keep = [i for i, label in enumerate(labels) if model.class_names[label] != normal]
    if not keep:
        raise InputError("the held-out data has no anomalous clips to choose a layer on")
    picked = sorted({keep[round(k * (len(keep) - 1) / max(1, limit - 1))] for k in range(limit)})
    clips = []
    for i in picked[:limit]:
        item = dataset[i]
        clips.append((item.clip[None], int(item.label)))
    return clips


def save_layers(checkpoint: str | Path, choices: Iterable[LayerChoice]) -> Path:
    """Record ``choices`` in the checkpoint's ``config.json`` (atomically; other methods'
    earlier choices are kept); returns its path. The weights and the model id do not
    change."""
    from vadx.files import write_json
    from vadx.models.checkpoint import CONFIG_FILE, read_checkpoint

    info = read_checkpoint(checkpoint)
    path = info.path / CONFIG_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    section = dict(document.get(SECTION) or {})
    if section.get("weights_sha256") != info.weights_sha256:
        section = {}  # chosen for other weights: start again
    methods = dict(section.get("methods") or {})
    methods.update({choice.method: asdict(choice.describe()) for choice in choices})
    document[SECTION] = {"weights_sha256": info.weights_sha256, "methods": methods}
    return write_json(path, document, indent=2)
