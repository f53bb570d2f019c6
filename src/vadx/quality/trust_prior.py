"""How often this model's maps are right: the trust verdict calibrated on validation scenes.

The checks of :mod:`vadx.quality.trust` look at one clip, and they tell maps that match the
ground truth from maps that don't only a little (``docs/trust.md``). What tells them apart
better is the method and the class: on the demo model LayerCAM's map names the decisive actor
in nearly nine shootings out of ten and saliency's in six, and how far apart the methods are
depends on the model. On ``vadx synth`` scenes that can be measured, because the truth is known
by intervention (:mod:`vadx.quality.interventions`).

:func:`vadx.quality.trust_calibration.calibrate_trust` explains every anomalous validation
clip with the default methods, checks every map (:func:`~vadx.quality.trust.trust_check`) and
scores it against the truth: a map **matches** when the actor it gives the most mass belongs to
the decisive set and it ranks the actors like the interventions (actor rank correlation ≥
``rank``). :func:`fit_calibration` then records, in a :class:`TrustCalibration`:

* each method's **match rate** on this model, over all classes and per class: the **prior**;
* a logistic regression of matching on the prior's log-odds (the method's rate on scenes of
  the explained class) and the map's checks (:data:`FEATURES`), fitted on those maps: the
  probability that a map on the screen matches, with its ROC-AUC cross-validated by clip.

:func:`save_trust_calibration` writes it into the checkpoint's ``config.json``
(``trust_calibration``, tied to the weights' sha256; the weights and the model id do not
change), and every later trust check of the model reads it (:func:`calibration_of`): a
``reliability`` check per map, whose probability decides the verdict (trustworthy at
``TrustSettings.reliable`` or above, contradictory below ``unreliable``), and whose reason says
how often the method matched ("LayerCAM matched the ground truth in 88% of this model's
validation shooting scenes (21 of 24 maps; 76% over all classes); …"). A method the
calibration did not see, and every frame curve, keep the verdict of the checks alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vadx.errors import CheckpointError, InputError

#: the config.json section that records the calibration
SECTION = "trust_calibration"
#: what the regression reads of a map, in order: its prior (the log-odds of its method's match
#: rate on scenes of the explained class) and the values of its checks (module doc)
FEATURES = ("prior", "faithfulness", "agreement", "confidence")
#: a map matches when, beside naming a decisive actor first, it ranks the actors like this
RANK = 0.5
#: the regression's L2 penalty (scikit-learn's C): a few hundred maps, a handful of features
PENALTY = 1.0


@dataclass(frozen=True, slots=True)
class MethodRate:
    """How often one method's validation maps matched the ground truth."""

    maps: int
    matching: int

    @property
    def rate(self) -> float:
        """The share of maps that matched."""
        return self.matching / self.maps

    @property
    def log_odds(self) -> float:
        """The log-odds of the rate, smoothed (Laplace: one match and one miss added), so that a
        method that always or never matched on a few maps stays finite."""
        p = (self.matching + 1) / (self.maps + 2)
        return float(np.log(p / (1 - p)))

    def record(self) -> dict[str, int]:
        """For the record: maps and matching."""
        return {"maps": self.maps, "matching": self.matching}


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    """A :class:`TrustCalibration` for the record (``dataclasses.asdict`` is the checkpoint's
    ``trust_calibration`` section, beside ``weights_sha256``)."""

    methods: dict[str, dict[str, int]]
    classes: dict[str, dict[str, dict[str, int]]]
    features: list[str]
    coefficients: list[float]
    intercept: float
    centre: list[float]
    scale: list[float]
    clips: int
    rank: float
    cross_validated_auc: float | None


@dataclass(frozen=True)
class MapOutcome:
    """One validation map: the clip it explains, its class and method, whether it matched the
    ground truth, and its checks' values (what the regression reads of it)."""

    clip: int
    kind: str
    method: str
    matches: bool
    values: dict[str, float | None]


@dataclass(frozen=True)
class TrustCalibration:
    """What validation scenes said about this model's maps (module doc): each method's match
    rate over all scenes (``methods``) and per class (``classes``: method → class → rate),
    and the regression that turns a map's prior and checks into the probability that it
    matches the ground truth (coefficients over :data:`FEATURES`, on values standardised by
    ``centre`` and ``scale``; a value not measured counts as ``centre``)."""

    methods: dict[str, MethodRate]
    classes: dict[str, dict[str, MethodRate]]
    coefficients: tuple[float, ...]
    intercept: float
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    clips: int
    rank: float = RANK
    cross_validated_auc: float | None = None

    def rate(self, method: str, kind: str) -> MethodRate | None:
        """How often ``method``'s maps of class ``kind`` matched; over all classes when the
        calibration saw none of ``kind``; None for a method it did not see."""
        if method not in self.methods:
            return None
        return self.classes.get(method, {}).get(kind) or self.methods[method]

    def probability(
        self, method: str, kind: str, values: Mapping[str, float | None]
    ) -> float | None:
        """The probability that ``method``'s map of a clip explained as ``kind``, with these
        check ``values``, matches the ground truth; None for a method the calibration did not
        see."""
        rate = self.rate(method, kind)
        if rate is None:
            return None
        row = _row(rate, values)
        known = ~np.isnan(row)
        z = np.where(known, (row - self.centre) / self.scale, 0.0)
        logit = self.intercept + float(np.dot(self.coefficients, z))
        return float(1 / (1 + np.exp(-logit)))

    def describe(self) -> CalibrationRecord:
        """The calibration for the record."""
        return CalibrationRecord(
            methods={m: r.record() for m, r in self.methods.items()},
            classes={
                m: {k: r.record() for k, r in kinds.items()} for m, kinds in self.classes.items()
            },
            features=list(FEATURES),
            coefficients=[round(c, 6) for c in self.coefficients],
            intercept=round(self.intercept, 6),
            centre=[round(c, 6) for c in self.centre],
            scale=[round(s, 6) for s in self.scale],
            clips=self.clips,
            rank=self.rank,
            cross_validated_auc=None
            if self.cross_validated_auc is None
            else round(self.cross_validated_auc, 4),
        )

    @classmethod
    def from_record(cls, section: Mapping[str, Any]) -> TrustCalibration:
        """The calibration a checkpoint's ``trust_calibration`` section records (ValueError,
        KeyError or TypeError when it is not one)."""
        if list(section["features"]) != list(FEATURES):
            raise ValueError(
                f"it reads {section['features']}, this vadx reads {list(FEATURES)}: calibrate again"
            )
        methods = {str(m): _rate(r) for m, r in section["methods"].items()}
        classes = {
            str(m): {str(k): _rate(r) for k, r in kinds.items()}
            for m, kinds in section["classes"].items()
        }
        if not methods:
            raise ValueError("it holds no method")
        vectors = [tuple(float(v) for v in section[k]) for k in ("coefficients", "centre", "scale")]
        if any(len(v) != len(FEATURES) for v in vectors) or min(vectors[2]) <= 0:
            raise ValueError(f"its regression does not have {len(FEATURES)} features")
        auc = section.get("cross_validated_auc")
        return cls(
            methods,
            classes,
            vectors[0],
            float(section["intercept"]),
            vectors[1],
            vectors[2],
            int(section["clips"]),
            float(section["rank"]),
            None if auc is None else float(auc),
        )


def _rate(record: Mapping[str, Any]) -> MethodRate:
    rate = MethodRate(int(record["maps"]), int(record["matching"]))
    if rate.maps < 1 or not 0 <= rate.matching <= rate.maps:
        raise ValueError(f"{dict(record)} is not a count of maps and of those that matched")
    return rate


def _row(rate: MethodRate, values: Mapping[str, float | None]) -> np.ndarray:
    """A map's features (:data:`FEATURES`), NaN where not measured."""
    found = [rate.log_odds]
    for name in FEATURES[1:]:
        value = values.get(name)
        found.append(np.nan if value is None or not np.isfinite(value) else float(value))
    row = np.array(found, dtype=np.float64)
    row[1] = np.clip(row[1], -1, 1)  # faithfulness gains beyond ±1: a decision blur barely moves
    return row


def fit_calibration(outcomes: Sequence[MapOutcome], rank: float = RANK) -> TrustCalibration:
    """Each method's match rate and the regression of matching on the prior and the checks
    (module doc), fitted on ``outcomes``; ``cross_validated_auc`` is the regression's ROC-AUC
    on maps of clips it was not fitted on (5 folds by clip)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if not outcomes:
        raise InputError("no validation map could be scored against the ground truth")
    methods, classes = _rates(outcomes), {}
    for method in methods:
        classes[method] = _rates([o for o in outcomes if o.method == method], by="kind")
    matches = np.array([o.matches for o in outcomes])
    if matches.all() or not matches.any():
        raise InputError(
            f"every validation map {'matched' if matches.all() else 'missed'} the ground truth: "
            "nothing to tell matching maps from the others by; give more or harder scenes"
        )
    rows = np.stack([_row(classes[o.method][o.kind], o.values) for o in outcomes])
    centre, scale = _standardisation(rows)
    z = np.where(np.isnan(rows), 0.0, (rows - centre) / scale)

    def fitted(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=PENALTY, max_iter=1000).fit(x, y)

    regression = fitted(z, matches)
    clip_ids = np.array([o.clip for o in outcomes])
    fold = {c: k % 5 for k, c in enumerate(dict.fromkeys(clip_ids))}
    folds = np.array([fold[c] for c in clip_ids])
    predicted = np.full(len(outcomes), np.nan)
    for k in range(5):
        held = folds == k
        if held.any() and 0 < matches[~held].sum() < (~held).sum():
            predicted[held] = fitted(z[~held], matches[~held]).predict_proba(z[held])[:, 1]
    known = ~np.isnan(predicted)
    auc = None
    if 0 < matches[known].sum() < known.sum():
        auc = float(roc_auc_score(matches[known], predicted[known]))
    return TrustCalibration(
        methods=methods,
        classes=classes,
        coefficients=tuple(float(c) for c in regression.coef_[0]),
        intercept=float(regression.intercept_[0]),
        centre=tuple(float(c) for c in centre),
        scale=tuple(float(s) for s in scale),
        clips=len(set(clip_ids.tolist())),
        rank=rank,
        cross_validated_auc=auc,
    )


def _rates(outcomes: Sequence[MapOutcome], by: str = "method") -> dict[str, MethodRate]:
    """How many of ``outcomes`` matched, by method (or by class)."""
    found: dict[str, list[bool]] = {}
    for o in outcomes:
        found.setdefault(getattr(o, by), []).append(o.matches)
    return {key: MethodRate(len(m), sum(m)) for key, m in found.items()}


def _standardisation(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation over the values measured; 0 and 1 for a
    feature never measured, a scale of 1 for one that never varies."""
    known = ~np.isnan(rows)
    counts = known.sum(0)
    filled = np.where(known, rows, 0.0)
    centre = filled.sum(0) / np.maximum(counts, 1)
    spread = np.where(known, (rows - centre) ** 2, 0.0).sum(0) / np.maximum(counts, 1)
    scale = np.sqrt(spread)
    return centre, np.where(scale < 1e-9, 1.0, scale)


def calibration_of(model: Any) -> TrustCalibration | None:
    """The trust calibration recorded in ``model``'s checkpoint (``vadx calibrate-trust``),
    None when it has none."""
    info = getattr(model, "checkpoint", None)
    section = getattr(info, "trust_calibration", None)
    if not section:
        return None
    try:
        return TrustCalibration.from_record(section)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"the trust calibration in {info.path / 'config.json'} is invalid: {err}"
        ) from err


def save_trust_calibration(checkpoint: str | Path, calibration: TrustCalibration) -> Path:
    """Record ``calibration`` in the checkpoint's ``config.json`` (atomically, replacing an
    earlier one); returns its path. The weights and the model id do not change."""
    from vadx.files import write_json
    from vadx.models.checkpoint import CONFIG_FILE, read_checkpoint

    info = read_checkpoint(checkpoint)
    path = info.path / CONFIG_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    document[SECTION] = {"weights_sha256": info.weights_sha256, **asdict(calibration.describe())}
    return write_json(path, document, indent=2)
