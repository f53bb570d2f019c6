"""The models a server serves: classifiers, and cameras' normals (``vadx learn-normal``)."""

from __future__ import annotations

from pathlib import Path

from vadx.models import load_model
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel, is_normality, load_normality

#: a model the server serves: a classifier, or a camera's normal
ServedModel = CRNN | NormalityModel


def load_models(paths: list[Path]) -> dict[str, ServedModel]:
    """Checkpoints by name (the folder's name; ``run/best`` → ``run-best`` when needed):
    classifiers, and normality models (``vadx learn-normal``)."""
    models: dict[str, ServedModel] = {}
    for path in paths:
        name = path.name if path.name not in ("best", "last") else f"{path.parent.name}-{path.name}"
        while name in models:
            name += "+"
        models[name] = load_normality(path) if is_normality(path) else load_model(path)
    return models
