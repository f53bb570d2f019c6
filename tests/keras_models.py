"""Keras 3 models for the import tests and the Keras benchmark (keras passed in, so that this
module imports without it)."""

from __future__ import annotations

from typing import Any

import numpy as np


def vgg19_gru(
    keras: Any,
    steps: int = 20,
    size: tuple[int, int] = (112, 112),
    units: int = 1024,
    hidden: tuple[int, ...] = (1024, 512, 128),
    classes: int = 4,
) -> Any:
    """The reference built in Keras from its description: TimeDistributed(VGG19 without top),
    global average pooling, a GRU, (Dense relu → Dropout 0.5) per hidden width, softmax."""
    layers = keras.layers
    cnn = keras.applications.VGG19(weights=None, include_top=False, input_shape=(*size, 3))
    head = [
        layer
        for width in hidden
        for layer in (layers.Dense(width, activation="relu"), layers.Dropout(0.5))
    ]
    return keras.Sequential(
        [
            keras.Input((steps, *size, 3)),
            layers.TimeDistributed(cnn),
            layers.TimeDistributed(layers.GlobalAveragePooling2D()),
            layers.GRU(units),
            *head,
            layers.Dense(classes, activation="softmax"),
        ]
    )


def randomise(model, seed: int) -> None:
    """He-scaled random weights (activations stay O(1) through deep stacks), random batch-norm
    statistics, so that probabilities are far from uniform and a wrong layout shows."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape, path = tuple(weight.shape), weight.path
        if path.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.3, shape)
        weight.assign(value.astype("float32"))
