"""Can this map be trusted? A check of every explanation shown, on its own clip.

vadx measures faithfulness and sanity in aggregate (``vadx xai-eval``); an operator looking at
one map needs to know about *that* map. For each map and frame curve of one explained clip:

* **faithfulness** — does the model's decision rest on what the map shows? The map's top
  pixels (``fractions`` of the clip's pixels: 0.5, 1, 2 %, ranked over the whole clip) are
  replaced by a blurred copy (deletion) or revealed on the blurred clip (insertion), and the
  explained class's probability is compared with a **control**: as many pixels at random
  places *of the same frames*, so that the test asks where in a frame the map points, not
  which frames it picks. The **gain** is the mean advantage over the control (the deletion
  drop and the insertion rise), as a share of what blurring the whole clip changes: 0 = no
  better than random, 1 = the pixels shown carry the whole effect. The CNN runs again only on
  the frames a variant changes. Frame curves: their top frames (``frame_fractions``: 10, 20,
  30 % of the frames, at least one) replaced by the clip's mean frame or revealed on it, against
  random frames, in feature space;
* **agreement** — the median rank correlation between this map and each other map computed
  (every map pooled to a common ``grid`` of cells per frame, over the clip), or between frame
  curves;
* **stability** — the map's rank correlation with itself on the clip with a little noise added
  (``noise`` of the pixel range, ``perturbations`` draws) that leaves the prediction unchanged;
* **confidence** of the model in the explained class, and the clip's **domain** check.

Each check passes, is weak, or fails against :class:`TrustSettings` (documented there,
overridable); the checks combine into one :class:`Verdict` per map:

* ``contradictory`` — the evidence contradicts the map: removing what it shows hurts the
  decision no more than removing random pixels (faithfulness fails), or the other methods point
  elsewhere (their median correlation with it is negative);
* ``weak`` — nothing contradicts the map, but a check is weak: a small faithfulness gain, little
  agreement, a map that changes under noise, a model that is not confident, footage unlike the
  training data;
* ``trustworthy`` — every check passes.

Its ``reasons`` say why in words, and ``score`` (in ``[0, 1]``) orders maps for sorting.

On a model calibrated on its own validation scenes (``vadx calibrate-trust``:
:mod:`vadx.quality.trust_prior`) each map also gets a ``reliability`` check — the estimated
chance that it matches the ground truth, from how often its method's maps did and from the
checks above — and that estimate decides the map's verdict and score (``reliable``,
``unreliable``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from vadx.borrowed import eval_mode
from vadx.errors import InputError
from vadx.explain.baselines import baseline_clip
from vadx.explain.engine import METHODS, explain
from vadx.explain.result import Explanation
from vadx.models.crnn import CRNN
from vadx.quality.sanity import rank_correlation
from vadx.quality.trust_prior import TrustCalibration, calibration_of

Status = Literal["pass", "weak", "fail", "skipped"]
VerdictName = Literal["trustworthy", "weak", "contradictory"]
VERDICTS: tuple[VerdictName, ...] = ("trustworthy", "weak", "contradictory")


def worst_verdict(verdicts: Iterable[str]) -> str | None:
    """The worst of ``verdicts`` (a clip's overall verdict is its worst map's); None if there
    are none."""
    found = list(verdicts)
    return max(found, key=VERDICTS.index) if found else None


#: a change of the explained probability smaller than this is no change
NO_CHANGE = 1e-3
INSENSITIVE = (
    "the decision does not depend on the frames: blurring or blanking all of them leaves it as "
    "it is, so no map can show why"
)


@dataclass(frozen=True)
class TrustSettings:
    """Where each check passes, is weak or fails (the defaults: ``docs/trust.md``).

    Attributes:
        faithful: the faithfulness gain a map needs to pass (at or below 0 it fails).
        agreement: the median correlation with the other maps needed to pass (below 0: fails).
        stable: the correlation with itself under noise needed to pass.
        confident: the explained class's probability needed to pass.
        reliable, unreliable: on a calibrated model (:mod:`vadx.quality.trust_prior`), the
            estimated probability that a map matches the ground truth at or above which it is
            trustworthy, and below which it is contradictory.
        fractions: shares of the clip's pixels removed or revealed by the faithfulness test.
        frame_fractions: shares of the clip's frames removed or revealed by a frame curve's
            faithfulness test (at least one frame each).
        perturbations, noise: the stability test's draws and their noise (standard deviation,
            as a share of the pixel range [0, 1]).
        grid: cells per frame side that maps are pooled to for agreement and stability.
        insertion: run the insertion half of the faithfulness test (doubles its passes).
        seed: of the random orders and the noise.
    """

    faithful: float = 0.03
    agreement: float = 0.3
    stable: float = 0.5
    confident: float = 0.6
    reliable: float = 0.8
    unreliable: float = 0.5
    fractions: tuple[float, ...] = (0.005, 0.01, 0.02)
    frame_fractions: tuple[float, ...] = (0.1, 0.2, 0.3)
    perturbations: int = 1
    noise: float = 0.02
    grid: int = 7
    insertion: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        names = ("faithful", "agreement", "stable", "confident", "noise", "reliable", "unreliable")
        for name in names:
            value = getattr(self, name)
            if not np.isfinite(value) or not -1 <= value <= 1:
                raise InputError(f"trust threshold {name} must be in [-1, 1], got {value}")
        if not 0 <= self.unreliable <= self.reliable <= 1:
            raise InputError(
                f"trust thresholds must hold 0 ≤ unreliable ≤ reliable ≤ 1, got unreliable "
                f"{self.unreliable} and reliable {self.reliable}"
            )
        for name in ("fractions", "frame_fractions"):
            shares = getattr(self, name)
            if not shares or not all(0 < f < 1 for f in shares):
                raise InputError(f"{name} must lie in (0, 1), got {shares}")
        if self.perturbations < 0 or self.grid < 1:
            raise InputError("perturbations must be ≥ 0 and grid ≥ 1")


@dataclass(frozen=True)
class Check:
    """One check of one map: its value, status and what it means in words."""

    name: str
    value: float | None
    status: Status
    reason: str


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One check of a verdict for the record: its value (rounded; None when not measured),
    its status and its reason."""

    value: float | None
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """A :class:`Verdict` for the record (``dataclasses.asdict`` is its JSON): the verdict, its
    score (rounded), the reasons and each check by name."""

    verdict: str
    score: float
    reasons: list[str]
    checks: dict[str, CheckRecord]


@dataclass(frozen=True)
class Verdict:
    """The trust verdict on one map or frame curve (module doc)."""

    method: str
    verdict: VerdictName
    score: float
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def reasons(self) -> list[str]:
        """What makes the map weak or contradictory, in words (empty when trustworthy); on a
        calibrated model, how often the method matched the ground truth comes first."""
        order = {"fail": 0, "weak": 1}
        found = [c for c in self.checks if c.status in order and c.name != "reliability"]
        lead = [c.reason for c in self.checks if c.name == "reliability"]
        return lead + [c.reason for c in sorted(found, key=lambda c: order[c.status])]

    def uncalibrated(self) -> Verdict:
        """The verdict its checks give without the model's trust calibration."""
        return _combine(self.method, [c for c in self.checks if c.name != "reliability"])

    def record(self) -> VerdictRecord:
        """For the record: verdict, score, reasons and each check."""
        return VerdictRecord(
            verdict=self.verdict,
            score=round(self.score, 4),
            reasons=self.reasons,
            checks={
                c.name: CheckRecord(
                    value=None if c.value is None else round(float(c.value), 4),
                    status=c.status,
                    reason=c.reason,
                )
                for c in self.checks
            },
        )


def trust_check(
    model: CRNN,
    explanation: Explanation,
    domain: Mapping[str, Any] | None = None,
    picture: np.ndarray | None = None,
    thresholds: TrustSettings | None = None,
    calibrated: bool = True,
) -> dict[str, Verdict]:
    """A :class:`Verdict` for every map and frame curve of ``explanation`` (one clip).

    ``domain`` is the clip's domain check (:func:`vadx.detect.domain.check_clip`); ``picture``
    ``(H, W)`` the pixels that are frame, not letter-box padding (default: all). A model whose
    checkpoint holds a trust calibration (``vadx calibrate-trust``) gets a ``reliability``
    check per map, which decides its verdict (:mod:`vadx.quality.trust_prior`);
    ``calibrated=False`` leaves it out."""
    limits = thresholds or TrustSettings()
    calibration = calibration_of(model) if calibrated else None
    if explanation.clip.shape[0] != 1:
        raise InputError("the trust check takes an explanation of one clip")
    device = model.device
    clip = torch.from_numpy(np.array(explanation.clip)).to(device)
    target = int(explanation.targets[0])
    if target < 0:
        target = int(explanation.probabilities[0].argmax())
    probability = float(explanation.probabilities[0, target])
    shared = [_confidence(probability, explanation.class_names[target], limits)]
    shared.append(_domain(domain))
    spatial = {name: a.display[0] for name, a in explanation.maps.items()}
    curves = {name: f.scores[0] for name, f in explanation.temporal.items()}
    with eval_mode(model), torch.no_grad():
        features = model.frame_features(clip)[0]
        base = baseline_clip(model, clip, "blur")
        base_features = model.frame_features(base)[0]
        ends = model.forward_features(torch.stack([features, base_features])).softmax(1)
        ends = ends[:, target].cpu().numpy()
        span = float(ends[0] - ends[1])
        gains: dict[str, float | None] = dict.fromkeys(spatial)
        if abs(span) >= NO_CHANGE:
            reference = _Reference(clip[0], features, base[0], base_features)
            gains = _pixel_gains(model, reference, spatial, target, picture, span, limits)
        else:
            blank = model(baseline_clip(model, clip, "zeros")).softmax(1)[0, target]
            if abs(ends[0] - float(blank)) < NO_CHANGE:
                failed = Check("faithfulness", 0.0, "fail", INSENSITIVE)
                return {name: _combine(name, (failed, *shared)) for name in [*spatial, *curves]}
        frame_gains = _temporal_gains(model, clip, features, curves, target, limits)
    pooled = {name: _pool(m, limits.grid) for name, m in spatial.items()}
    stability = _stability(model, clip, explanation, target, pooled, limits)
    verdicts = {}
    for name in spatial:
        checks = (
            _faithfulness(gains[name], "pixels", limits, spatial[name]),
            _agreement(name, pooled, limits, "map"),
            stability.get(name) or Check("stability", None, "skipped", "not measured"),
            *shared,
        )
        if calibration is not None and np.ptp(spatial[name]) > 0:  # an empty map stays empty
            kind = explanation.class_names[target]
            checks = (*checks, *_reliability(name, kind, checks, calibration, limits))
        verdicts[name] = _combine(name, checks)
    for name in curves:
        checks = (
            _faithfulness(frame_gains[name], "frames", limits, curves[name]),
            _agreement(name, curves, limits, "frame curve"),
            *shared,
        )
        verdicts[name] = _combine(name, checks)
    return verdicts


# ------------------------------------------------------------------------------ the checks
def _combine(method: str, checks: Sequence[Check]) -> Verdict:
    statuses = {c.name: c.status for c in checks}
    reliability = next((c for c in checks if c.name == "reliability"), None)
    if reliability is not None:
        # calibrated: the estimated chance of matching the ground truth decides; the scenes
        # it was measured on were like the training data, so footage unlike it is weak at best
        named: dict[str, VerdictName] = {
            "pass": "trustworthy",
            "weak": "weak",
            "fail": "contradictory",
        }
        verdict = named[reliability.status]
        if verdict == "trustworthy" and statuses.get("domain") == "weak":
            verdict = "weak"
        return Verdict(method, verdict, float(reliability.value or 0.0), tuple(checks))
    if statuses.get("faithfulness") == "fail" or statuses.get("agreement") == "fail":
        verdict = "contradictory"
    elif any(s in ("weak", "fail") for s in statuses.values()):
        verdict = "weak"
    else:
        verdict = "trustworthy"
    parts = [_part(c) for c in checks if c.status != "skipped" and c.value is not None]
    score = float(np.mean(parts)) if parts else 0.0
    return Verdict(method, verdict, score, tuple(checks))


def _part(check: Check) -> float:
    """A check's value mapped to [0, 1] for the verdict's score."""
    value = float(check.value)  # type: ignore[arg-type]
    if check.name in ("agreement", "stability"):
        return (np.clip(value, -1, 1) + 1) / 2
    if check.name == "domain":
        return float(np.clip(2 - value, 0, 1))  # inside (≤ 1) → 1, twice the threshold → 0
    return float(np.clip(value, 0, 1))


def _reliability(
    method: str,
    kind: str,
    checks: Sequence[Check],
    calibration: TrustCalibration,
    limits: TrustSettings,
) -> tuple[Check, ...]:
    """The calibrated chance that the map of a clip explained as ``kind`` matches the ground
    truth (none for a method the calibration did not see)."""
    values = {c.name: c.value for c in checks}
    chance = calibration.probability(method, kind, values)
    rate = calibration.rate(method, kind)
    if chance is None or rate is None:
        return ()
    overall = calibration.methods[method]
    shown = getattr(METHODS.get(method), "display_name", method)
    scenes, counts = "scenes", f"{rate.matching} of {rate.maps} maps"
    if rate is not overall:
        scenes, counts = f"{kind} scenes", f"{counts}; {overall.rate:.0%} over all classes"
    reason = (
        f"{shown} matched the ground truth in {rate.rate:.0%} of this model's validation "
        f"{scenes} ({counts}); with this clip's checks, an estimated {chance:.0%} chance that "
        "this map does"
    )
    if chance >= limits.reliable:
        status: Status = "pass"
    elif chance >= limits.unreliable:
        status = "weak"
    else:
        status = "fail"
    return (Check("reliability", chance, status, reason),)


def _faithfulness(
    gain: float | None, unit: str, limits: TrustSettings, values: np.ndarray
) -> Check:
    if np.ptp(values) == 0:
        what = "map" if unit == "pixels" else "frame curve"
        return Check("faithfulness", 0.0, "fail", f"the {what} is empty: it shows nothing")
    if gain is None:
        return Check(
            "faithfulness",
            None,
            "skipped",
            f"blurring every {unit[:-1]} leaves the decision as it is, so removing {unit} "
            "cannot test the map",
        )
    shown = "what the map shows" if unit == "pixels" else "the frames the curve ranks first"
    if gain <= 0:
        return Check(
            "faithfulness",
            gain,
            "fail",
            f"removing {shown} changes the decision no more than removing random {unit} "
            f"(gain {gain:.3f})",
        )
    if gain < limits.faithful:
        return Check(
            "faithfulness",
            gain,
            "weak",
            f"removing {shown} changes the decision only a little more than random {unit} "
            f"(gain {gain:.3f} < {limits.faithful:g})",
        )
    return Check("faithfulness", gain, "pass", f"the decision rests on {shown} (gain {gain:.3f})")


def _agreement(
    name: str, maps: Mapping[str, np.ndarray], limits: TrustSettings, kind: str
) -> Check:
    others = [other for other in maps if other != name]
    if not others:
        return Check("agreement", None, "skipped", f"no other {kind} to compare with")
    pairs = [(o, _rank_correlation(maps[name], maps[o])) for o in others]
    pairs = [(o, v) for o, v in pairs if np.isfinite(v)]
    if not pairs:
        return Check("agreement", None, "skipped", f"the {kind}s are flat: no order to compare")
    value = float(np.median([v for _, v in pairs]))
    listed = ", ".join(f"{o} {v:+.2f}" for o, v in pairs)
    if value < 0:
        reason = f"the other methods point elsewhere (rank correlation {listed})"
        return Check("agreement", value, "fail", reason)
    if value < limits.agreement:
        reason = f"the other methods agree little (median rank correlation {value:.2f}: {listed})"
        return Check("agreement", value, "weak", reason)
    return Check("agreement", value, "pass", f"the other methods agree ({listed})")


def _confidence(probability: float, name: str, limits: TrustSettings) -> Check:
    if probability < limits.confident:
        reason = (
            f"the model is not confident: {name} at {probability:.0%} (< {limits.confident:.0%})"
        )
        return Check("confidence", probability, "weak", reason)
    return Check("confidence", probability, "pass", f"{name} at {probability:.0%}")


def _domain(domain: Mapping[str, Any] | None) -> Check:
    if not domain or not domain.get("checked"):
        return Check("domain", None, "skipped", "the model has no domain statistics")
    score = domain.get("score")
    value = None if score is None else float(score)
    if domain.get("verdict") == "outside":
        reason = "the footage is unlike the model's training data (domain check: outside)"
        return Check("domain", value, "weak", reason)
    return Check("domain", value, "pass", "the footage is like the model's training data")


# ----------------------------------------------------------------------------- measurements
def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`~vadx.quality.sanity.rank_correlation`, but NaN (no order to compare) when a map
    is flat, so that the checks leave it out."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return rank_correlation(a, b)


def _pool(maps: np.ndarray, grid: int) -> np.ndarray:
    """``(T, H, W)`` display maps averaged into ``(T, grid, grid)`` cells."""
    tensor = torch.from_numpy(np.array(maps, dtype=np.float32))[:, None]
    return F.adaptive_avg_pool2d(tensor, grid)[:, 0].numpy()


@dataclass(frozen=True)
class _Reference:
    """The explained clip ``(T, 3, H, W)`` and its blurred copy, with their CNN features
    ``(T, F)``: a variant runs the CNN only on the frames where it differs from one of them."""

    clip: torch.Tensor
    features: torch.Tensor
    blurred: torch.Tensor
    blurred_features: torch.Tensor


def _gain(curves: Mapping[str, np.ndarray], fractions: int, span: float) -> dict[str, float]:
    """Frame curves' gains from stacked probabilities — per order ``fractions`` deletions, then
    as many insertions; the ``random*`` orders averaged into the control."""
    random = np.mean([c for name, c in curves.items() if name.startswith("random")], axis=0)
    deletion, insertion = slice(0, fractions), slice(fractions, None)
    return {
        name: float(
            np.mean((random[deletion] - c[deletion]) + (c[insertion] - random[insertion]))
            / 2
            / span
        )
        for name, c in curves.items()
        if not name.startswith("random")
    }


def _top(values: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``count`` largest ``values``, ties at the edge broken at random."""
    values = np.asarray(values, dtype=np.float64).ravel()
    count = min(count, values.size)
    edge = np.partition(values, values.size - count)[values.size - count]
    above = np.flatnonzero(values > edge)
    tied = rng.permutation(np.flatnonzero(values == edge))
    return np.concatenate([above, tied[: count - len(above)]])


def _pixel_gains(
    model: CRNN,
    reference: _Reference,
    maps: Mapping[str, np.ndarray],
    target: int,
    picture: np.ndarray | None,
    span: float,
    limits: TrustSettings,
) -> dict[str, float | None]:
    """Each map's faithfulness gain (module doc): its top pixels blurred (deletion) or revealed
    on the blurred clip (insertion), against as many pixels at random places of the same
    frames."""
    rng = np.random.default_rng(limits.seed)
    original = reference.clip
    steps = (original.shape[0], *original.shape[2:])
    eligible = np.ones(steps, bool) if picture is None else np.broadcast_to(picture, steps)
    positions = np.flatnonzero(eligible.ravel())
    counts = [max(1, round(f * len(positions))) for f in limits.fractions]
    shape = (steps[0], 1, *steps[1:])
    gains = {}
    for name, m in maps.items():
        flat = np.asarray(m, dtype=np.float64).ravel()
        top = positions[_top(flat[positions], max(counts), rng)]
        order = top[np.lexsort((rng.random(len(top)), -flat[top]))]
        chosen = torch.zeros(len(counts), int(np.prod(shape)), dtype=torch.bool)
        for row, count in enumerate(counts):
            chosen[row, torch.from_numpy(order[:count])] = True
        chosen = chosen.view(len(counts), *shape).to(original.device)
        both = torch.cat([chosen, _same_frames_at_random(chosen, eligible, rng)])
        deleted = _frame_probabilities(
            model, torch.where(both, reference.blurred, original), original,
            reference.features, target,
        )  # fmt: skip
        k = len(counts)
        advantage = deleted[k:] - deleted[:k]
        if limits.insertion:
            inserted = _frame_probabilities(
                model, torch.where(both, original, reference.blurred), reference.blurred,
                reference.blurred_features, target,
            )  # fmt: skip
            advantage = (advantage + inserted[:k] - inserted[k:]) / 2
        gains[name] = float(np.mean(advantage) / span)
    return gains


def _same_frames_at_random(
    chosen: torch.Tensor, eligible: np.ndarray, rng: np.random.Generator
) -> torch.Tensor:
    """As many pixels as ``chosen`` ``(K, T, 1, H, W)`` holds in each frame, at random eligible
    places of that frame."""
    control = torch.zeros_like(chosen)
    counts = chosen.flatten(2).sum(-1).cpu().numpy()  # (K, T)
    for t in np.flatnonzero(counts.any(0)):
        places = np.flatnonzero(eligible[t].ravel())
        shuffled = torch.from_numpy(places[rng.permutation(len(places))[: int(counts[:, t].max())]])
        for row in range(chosen.shape[0]):
            count = int(counts[row, t])
            control[row, t, 0].view(-1)[shuffled[:count]] = True
    return control


def _frame_probabilities(
    model: CRNN, clips: torch.Tensor, original: torch.Tensor, features: torch.Tensor, target: int
) -> np.ndarray:
    """The target's probability on each of ``clips`` ``(N, T, 3, H, W)``, running the CNN only
    on the frames that differ from ``original`` ``(T, 3, H, W)`` (whose ``features`` are
    ``(T, F)``)."""
    changed = (clips != original).flatten(2).any(-1)  # (N, T)
    batch = features.expand(len(clips), -1, -1).clone()
    if changed.any():
        frames = clips[changed]  # (K, 3, H, W)
        new = torch.cat([model.frame_features(part[None])[0] for part in frames.split(64)])
        batch[changed] = new
    return model.forward_features(batch).softmax(1)[:, target].cpu().numpy()


def _temporal_gains(
    model: CRNN,
    clip: torch.Tensor,
    features: torch.Tensor,
    curves: Mapping[str, np.ndarray],
    target: int,
    limits: TrustSettings,
) -> dict[str, float | None]:
    """Each frame curve's faithfulness gain: its top ``frame_fractions`` of the frames removed
    (replaced by the clip's mean frame) or kept on the mean frame, against random frame orders,
    in feature space, as a share of what replacing every frame changes (module doc)."""
    if not curves:
        return {}
    rng = np.random.default_rng(limits.seed)
    steps = clip.shape[1]
    mean = model.frame_features(clip.mean(1, keepdim=True))[0, 0]
    ends = model.forward_features(torch.stack([features, mean.expand_as(features)]))
    ends = ends.softmax(1)[:, target].cpu().numpy()
    span = float(ends[0] - ends[1])
    if abs(span) < NO_CHANGE:
        return dict.fromkeys(curves)
    counts = sorted({max(1, round(f * steps)) for f in limits.frame_fractions})
    orders = {f"random{k}": rng.permutation(steps) for k in range(4)}
    for name, values in curves.items():
        orders[name] = np.lexsort((rng.random(steps), -np.asarray(values, dtype=np.float64)))
    gone = torch.zeros(len(orders), len(counts), steps, 1, dtype=torch.bool)
    for row, order in enumerate(orders.values()):
        for column, count in enumerate(counts):
            gone[row, column, torch.from_numpy(order[:count])] = True
    gone = gone.flatten(0, 1).to(clip.device)
    deleted = torch.where(gone, mean, features)
    inserted = torch.where(gone, features, mean)
    p = model.forward_features(torch.cat([deleted, inserted])).softmax(1)[:, target]
    p = p.cpu().numpy().reshape(2, len(orders), len(counts))
    stacked = {name: np.concatenate([p[0, row], p[1, row]]) for row, name in enumerate(orders)}
    return _gain(stacked, len(counts), span)


def _stability(
    model: CRNN,
    clip: torch.Tensor,
    explanation: Explanation,
    target: int,
    pooled: Mapping[str, np.ndarray],
    limits: TrustSettings,
) -> dict[str, Check]:
    """Each map's rank correlation with its own maps on noisy copies of the clip that keep the
    prediction."""
    if limits.perturbations == 0 or not pooled:
        return {}
    generator = torch.Generator(device="cpu").manual_seed(limits.seed)
    std = torch.tensor(model.config.std, dtype=clip.dtype, device=clip.device)[:, None, None]
    predicted = int(explanation.probabilities[0].argmax())
    methods = list(pooled)
    settings = {n: _constructor_settings(n, explanation.maps[n].settings) for n in methods}
    scores: dict[str, list[float]] = {name: [] for name in methods}
    kept = 0
    for _ in range(limits.perturbations):
        noise = torch.randn(clip.shape, generator=generator).to(clip.device)
        noisy = clip + noise * (limits.noise / std)
        e = explain(
            model,
            noisy,
            target,
            methods=methods,
            temporal=[],
            normalisation=explanation.normalisation,
            options={n: given for n, given in settings.items() if given},
        )
        if int(e.probabilities[0].argmax()) != predicted:
            continue
        kept += 1
        for name in methods:
            again = _pool(e.maps[name].display[0], limits.grid)
            scores[name].append(_rank_correlation(pooled[name], again))
    found = {}
    for name in methods:
        if not kept:
            reason = f"noise of {limits.noise:.0%} changes the decision itself"
            found[name] = Check("stability", None, "weak", reason)
            continue
        value = float(np.nanmean(scores[name])) if not np.all(np.isnan(scores[name])) else 0.0
        if value < limits.stable:
            reason = (
                f"the map changes under noise of {limits.noise:.0%} that leaves the decision "
                f"as it is (rank correlation {value:.2f} < {limits.stable:g})"
            )
            found[name] = Check("stability", value, "weak", reason)
        else:
            found[name] = Check("stability", value, "pass", f"stable under noise ({value:.2f})")
    return found


_Value = TypeVar("_Value")


def _constructor_settings(name: str, settings: Mapping[str, _Value]) -> dict[str, _Value]:
    """The settings a method reports that its constructor takes: the same map again."""
    accepted = inspect.signature(METHODS[name]).parameters
    return {k: v for k, v in settings.items() if k in accepted and k != "model"}


def verdict_counts(verdicts: Mapping[str, Verdict]) -> dict[str, int]:
    """How many maps got each verdict."""
    counts = dict.fromkeys(VERDICTS, 0)
    for v in verdicts.values():
        counts[v.verdict] += 1
    return counts
