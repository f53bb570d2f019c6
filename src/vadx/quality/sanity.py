"""Sanity checks (Adebayo et al., NeurIPS 2018): does a method's map depend on the model?

* **Cascading randomisation** — the model's parameters are re-initialised stage by stage, from
  the head through the RNN down to the first conv block, and each method's maps are compared
  with the trained model's (Spearman rank correlation of the maps, and SSIM). A method whose
  maps stay alike once the whole model is random does not explain the model: it is flagged.
* **Random logit** — the maps of the predicted class against those of another class: a method
  that draws the same map whatever the class is not class-sensitive.

Spatial methods are compared by their display maps (magnitudes, normalised per clip), temporal
estimators by their scores: by magnitude in the cascade (a random model may flip signs), signed
in the random-logit test — a frame that raises one class and lowers the other is
class-sensitive, though its magnitude is the same for both. Everything runs on a copy of the
model; the model given is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from vadx.borrowed import eval_mode, seeded
from vadx.explain import explain
from vadx.models.crnn import CRNN

#: below this rank correlation after full randomisation, a method "depends on the model"
PASS_BELOW = 0.5


@dataclass(frozen=True, slots=True)
class MethodSanity:
    """One method's sanity checks: its maps' similarity to the trained model's after each
    stage of the cascade (``stage``, ``rank_correlation``, and ``ssim`` for spatial maps),
    the similarity after the last stage, the random-logit correlation and the verdict."""

    stages: list[dict[str, float | str]]
    randomisation_rank_correlation: float
    randomisation_ssim: float | None
    random_logit_rank_correlation: float
    passed: bool


@dataclass(frozen=True, slots=True)
class SanityChecks:
    """:func:`cascading_randomisation`'s findings (``dataclasses.asdict`` is their JSON): the
    class explained, the other class of the random-logit test, and each method's checks."""

    target: int
    random_logit_target: int
    methods: dict[str, MethodSanity]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two stacks of maps ``(T, H, W)`` in ``[0, 1]``
    (Gaussian window σ = 1.5, the usual constants for a data range of 1)."""
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64), strict=True):

        def blur(z: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(z, (7, 7), 1.5, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two maps, flattened (0 when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if a.min() == a.max() or b.min() == b.max():
        return 0.0
    return float(spearmanr(a, b).statistic)


def randomisation_stages(model: CRNN) -> list[tuple[str, list[nn.Module]]]:
    """The cascade, top down: head, RNN, then the backbone's units from last to first."""
    units = model.backbone.freeze_units()
    return [("head", [model.head]), ("rnn", [model.rnn])] + [
        (f"backbone.{name}", modules) for name, modules in reversed(units)
    ]


def _reinitialise(modules: Sequence[nn.Module]) -> None:
    """Fresh random parameters (each layer's own initialiser) for every layer of ``modules``."""
    for module in modules:
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()


def _maps(
    model: CRNN,
    clip: torch.Tensor,
    target: int,
    methods: Sequence[str],
    temporal: Sequence[str],
    layer: str | None,
) -> dict[str, np.ndarray]:
    e = explain(model, clip, target, methods=methods, temporal=temporal, layer=layer)
    maps = {name: np.asarray(a.display) for name, a in e.maps.items()}
    maps.update({name: np.asarray(f.scores) for name, f in e.temporal.items()})  # signed
    return maps


def cascading_randomisation(
    model: CRNN,
    clip: torch.Tensor,
    methods: Sequence[str],
    temporal: Sequence[str] = (),
    *,
    target: int | None = None,
    layer: str | None = None,
    seed: int = 0,
) -> SanityChecks:
    """Per method, the rank correlation and SSIM with the trained model's maps after each
    stage of the cascade; ``passed`` when the fully random model's maps correlate below
    :data:`PASS_BELOW`. Also the random-logit correlation."""
    if target is None:
        with eval_mode(model), torch.no_grad():
            target = int(model(clip)[0].argmax())
    reference = _maps(model, clip, target, methods, temporal, layer)
    other = [k for k in range(model.num_classes) if k != target]
    generator = np.random.default_rng(seed)
    other_target = int(generator.choice(other))
    flipped = _maps(model, clip, other_target, methods, temporal, layer)
    shadow = copy.deepcopy(model)
    stages: dict[str, list[dict[str, float | str]]] = {name: [] for name in reference}
    with seeded(seed):  # the layers' initialisers draw from the global generator
        for stage, modules in randomisation_stages(shadow):
            _reinitialise(modules)
            current = _maps(shadow, clip, target, methods, temporal, layer)
            for name, maps in current.items():
                entry: dict[str, float | str] = {
                    "stage": stage,
                    "rank_correlation": rank_correlation(np.abs(reference[name]), np.abs(maps)),
                }
                if maps.ndim == 4:
                    entry["ssim"] = ssim(reference[name][0], maps[0])
                stages[name].append(entry)
    result = {}
    for name, entries in stages.items():
        final = entries[-1]
        ssim_final = final.get("ssim")
        result[name] = MethodSanity(
            stages=entries,
            randomisation_rank_correlation=float(final["rank_correlation"]),
            randomisation_ssim=None if ssim_final is None else float(ssim_final),
            random_logit_rank_correlation=rank_correlation(reference[name], flipped[name]),
            passed=abs(float(final["rank_correlation"])) < PASS_BELOW,
        )
    return SanityChecks(target=target, random_logit_target=other_target, methods=result)
