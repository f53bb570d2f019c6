"""Ground truth about the model, from the scene renderer: remove an actor, watch the logit.

A mask says where the anomaly is, not what the model used. A synthetic scene can be drawn
again without any one of its actors (:class:`~vadx.data.synth.Intervention`), every other
pixel unchanged, so the drop in the explained logit when an actor is removed is that actor's
true importance *for this model* — FunnyBirds' part interventions (Hesse et al., ICCV 2023),
BAM's pasted objects (Yang & Kim 2019), here for video and recurrent models.

Per clip (:func:`intervention_truth`):

* **actor importance** — the drop of the explained class's logit (and probability) when that
  actor alone is removed from every frame: ``drop = logit(original) − logit(without it)``;
* **frame importance** — the drop when the anomaly's actors are removed from one segment of
  the model's frames only (the rest of the scene identical, unlike black-frame occlusion). A
  removal in frame ``t`` changes frame ``t`` alone, so these run in feature space: the CNN sees
  each frame with and without the anomaly once, the RNN and head run once per segment;
* **decisive set** — a smallest set of actors whose removal changes the predicted class
  (searched up to ``max_set`` actors, larger single drops first);
* what the decision **rests on**: whether removing the anomaly flips it, and which other
  actor alone does.

Maps and frame curves are then scored against it (:func:`actor_scores`,
:func:`evidence_pointing_game`, :func:`temporal_truth_scores`):

* ``actor_rank_correlation`` — Spearman correlation between each actor's attribution mass (the
  sum of the display map over the actor's visible pixels, over the clip's frames) and its
  evidence, the logit drop (:func:`evidence`): display maps show evidence *for* the class, so
  a drop below :data:`NO_EFFECT_SHARE` of the clip's largest one — an actor that does nothing,
  or one that speaks against the class — counts as no evidence (0). **Ties:** actors tied in
  the truth impose no order on the map: within a tie, they are ranked as the map ranks them
  (:func:`truth_rank_correlation`), so the score measures only the orderings the interventions
  establish and a map that orders those right scores 1; ties in the map take their average
  rank. Actors not visible in the model's frames are left out (their drop is exactly 0 and no
  map can show them); a clip with fewer than 3 visible actors, or no actor with evidence,
  scores NaN (left out of means);
* ``decisive_actor_first`` — 1 when the actor with the most mass belongs to the decisive set
  (or, when nothing flips the decision, is the actor with the largest drop); a tie for the most
  mass is a miss;
* ``pointing_game_evidence`` — the pointing game on the map's own cells
  (:func:`~vadx.quality.localisation.cell_pointing_game`, ties scored as the share of tied
  cells that hit) in the frames where the anomaly is evidence for the decision: removing it
  from that frame alone drops the logit by at least :data:`NO_EFFECT_SHARE` of the clip's
  largest such drop. In the other anomalous frames the decision provably does not rest on the
  anomaly (the model has not yet used it, or another frame carries it), so pointing there at
  the anomaly is not "the right answer" and a map is not scored on them;
* ``temporal_rank_correlation`` — Spearman between frame scores and per-frame drops, with the
  same rules (frames whose drop is below :data:`NO_EFFECT_SHARE` of the largest tied at 0,
  ranked within the tie as the estimator ranks them);
* ``temporal_truth_auroc`` — ROC-AUC of frame scores against the frames the interventions
  single out: those whose drop is at least :data:`SINGLED_OUT` of the largest (NaN when every
  frame or none is singled out, or when no removal lowers the logit).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from vadx.borrowed import eval_mode
from vadx.data.synth import ANOMALY, Intervention, SceneSpec, SynthClip
from vadx.errors import InputError
from vadx.explain.protocol import ExplainableModel, features_of
from vadx.quality.localisation import cell_pointing_game
from vadx.video.preprocess import fit_frames, frames_to_clip
from vadx.video.sampling import even_indices

#: logit drops smaller than this (in absolute value) count as "no effect"
NO_EFFECT = 1e-3
#: a drop below this share of the clip's largest is no evidence (actors and frames alike)
NO_EFFECT_SHARE = 0.05
#: a frame is singled out when its drop is at least this share of the largest frame drop
SINGLED_OUT = 0.5


@dataclass(frozen=True)
class ModelClip:
    """A rendered clip as the model sees it: the clip tensor ``(T, 3, H, W)``, the source
    frames it samples, and the picture mask ``(H, W)`` (not the letter-box padding)."""

    clip: torch.Tensor
    indices: np.ndarray
    picture: np.ndarray


def model_clip(model: ExplainableModel, rendered: SynthClip) -> ModelClip:
    """Sample and preprocess ``rendered`` as every vadx path does for ``model``: its clip
    length evenly over the clip's frames, its frame size, fit mode and normalisation."""
    config = model.config
    indices = even_indices(len(rendered.frames), config.num_frames)
    frames, geometry, _ = fit_frames(rendered.frames[indices], config.frame_size, config.fit)
    return ModelClip(frames_to_clip(frames, config.mean, config.std), indices, geometry.picture())


def _clip_without(model: ExplainableModel, spec: SceneSpec, actors: set[str]) -> torch.Tensor:
    """The model's clip ``(T, 3, H, W)`` of ``spec`` drawn without ``actors``."""
    return model_clip(model, spec.render(Intervention(actors))).clip


def actor_regions(model: ExplainableModel, rendered: SynthClip, indices: np.ndarray) -> np.ndarray:
    """Where each actor of ``rendered`` is visible in the model's frames, bool ``(A, T, H, W)``
    (actors in ``rendered.actors`` order)."""
    config = model.config
    frames = rendered.frames[indices]
    return np.stack(
        [
            fit_frames(frames, config.frame_size, config.fit, rendered.actor_masks(n)[indices])[2]
            for n in rendered.actors
        ]
    )


@dataclass(frozen=True, slots=True)
class ActorEffect:
    """What removing one actor did: the drops of the explained logit and probability, whether
    the decision changed, whether the model's frames show the actor, and whether it is part
    of the anomaly."""

    logit_drop: float
    probability_drop: float
    flips: bool
    visible: bool
    anomaly: bool


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """:class:`GroundTruth` for the record (``dataclasses.asdict`` is its JSON, the
    ``ground_truth`` of a clip in ``xai-eval.json``): no arrays but the per-actor and
    per-frame drops."""

    target: int
    predicted: int
    logit: float
    probability: float
    actors: dict[str, ActorEffect]
    anomaly_logit_drop: float | None
    anomaly_flips: bool | None
    other_flips: list[str]
    decisive_set: list[str] | None
    frame_logit_drop: list[float] | None


@dataclass(frozen=True)
class GroundTruth:
    """What the interventions on one clip showed (module doc).

    Arrays over actors follow ``actors``; over frames, the model's frames.
    """

    target: int
    predicted: int
    logit: float
    probability: float
    actors: tuple[str, ...]
    anomaly_actors: tuple[str, ...]
    actor_logit_drop: np.ndarray
    actor_probability_drop: np.ndarray
    actor_flips: np.ndarray
    regions: np.ndarray
    anomaly_logit_drop: float | None
    anomaly_flips: bool | None
    frame_logit_drop: np.ndarray | None
    decisive_set: tuple[str, ...] | None
    clip: ModelClip

    @property
    def visible(self) -> np.ndarray:
        """Which actors are visible in at least one of the model's frames, ``(A,)``."""
        return self.regions.reshape(len(self.regions), -1).any(1)

    @property
    def decisive_actors(self) -> tuple[str, ...]:
        """The decisive set, or the actor with the largest drop when nothing flips (or none
        when no removal lowers the logit)."""
        if self.decisive_set is not None:
            return self.decisive_set
        if not len(self.actors) or self.actor_logit_drop.max() < NO_EFFECT:
            return ()
        return (self.actors[int(self.actor_logit_drop.argmax())],)

    @property
    def other_flips(self) -> tuple[str, ...]:
        """Actors outside the anomaly whose removal alone changes the decision."""
        return tuple(
            name
            for name, flips in zip(self.actors, self.actor_flips, strict=True)
            if flips and name not in self.anomaly_actors
        )

    def record(self) -> TruthRecord:
        """A summary for the record (no arrays but the per-actor and per-frame drops)."""
        return TruthRecord(
            target=self.target,
            predicted=self.predicted,
            logit=self.logit,
            probability=self.probability,
            actors={
                name: ActorEffect(
                    logit_drop=float(self.actor_logit_drop[k]),
                    probability_drop=float(self.actor_probability_drop[k]),
                    flips=bool(self.actor_flips[k]),
                    visible=bool(self.visible[k]),
                    anomaly=name in self.anomaly_actors,
                )
                for k, name in enumerate(self.actors)
            },
            anomaly_logit_drop=self.anomaly_logit_drop,
            anomaly_flips=self.anomaly_flips,
            other_flips=list(self.other_flips),
            decisive_set=None if self.decisive_set is None else list(self.decisive_set),
            frame_logit_drop=None
            if self.frame_logit_drop is None
            else [float(v) for v in self.frame_logit_drop],
        )


class _Scorer:
    """The model's logits and features on rendered clips, in batches, without gradients.

    A removed actor changes only the frames it was seen in, so a variant's frames equal to
    the original clip's take the original's features: the CNN runs on changed frames only.
    """

    def __init__(self, model: ExplainableModel, clip: torch.Tensor, batch_frames: int) -> None:
        self.model = model
        self.device = model.device
        self.batch_frames = batch_frames
        self.clip = clip
        self.original = self._frames(clip)

    def _frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Features ``(N, F)`` of frames ``(N, 3, H, W)``."""
        with torch.no_grad():
            return torch.cat(
                [
                    features_of(self.model, part[None].to(self.device))[0]
                    for part in frames.split(self.batch_frames)
                ]
            )

    def features(self, clips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Features ``(N, T, F)`` of clips ``(T, 3, H, W)`` that differ from the original
        clip in some frames."""
        changed = [(clip != self.clip).flatten(1).any(1) for clip in clips]
        features = self.original.repeat(len(clips), 1, 1)
        frames = [clip[mask] for clip, mask in zip(clips, changed, strict=True)]
        if sum(len(f) for f in frames):
            computed = self._frames(torch.cat(frames)).split([len(f) for f in frames])
            for n, mask in enumerate(changed):
                features[n, mask.to(features.device)] = computed[n]
        return features

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(
                [self.model.forward_features(part) for part in features.split(64)]
            ).cpu()


def intervention_truth(
    model: ExplainableModel,
    spec: SceneSpec,
    target: int | None = None,
    *,
    segment: int = 1,
    max_set: int = 2,
    batch_frames: int = 64,
) -> GroundTruth:
    """The ground truth of one synthetic clip for ``model`` (module doc).

    Args:
        model: any :class:`~vadx.explain.ExplainableModel`; run in eval mode, left untouched.
        spec: the clip (:func:`~vadx.data.synth.scene_specs` reads a dataset's).
        target: the explained class (index); default: the predicted one.
        segment: model frames per temporal segment (1: every frame on its own).
        max_set: the largest decisive set searched for.
        batch_frames: frames per CNN pass.
    """
    if segment < 1 or max_set < 1:
        raise InputError(f"segment and max_set must be ≥ 1, got {segment} and {max_set}")
    original = spec.render()
    seen = model_clip(model, original)
    names = tuple(original.actors)
    anomaly = original.anomaly_actors
    with eval_mode(model):
        scorer = _Scorer(model, seen.clip, batch_frames)
        variants = [seen.clip] + [_clip_without(model, spec, {name}) for name in names]
        if anomaly:
            variants.append(_clip_without(model, spec, {ANOMALY}))
        features = scorer.features(variants)
        logits = scorer.logits(features)
        predicted = int(logits[0].argmax())
        target = predicted if target is None else int(target)
        if not 0 <= target < logits.shape[1]:
            raise InputError(f"target {target} is not a class index of {logits.shape[1]} classes")
        probabilities = logits.softmax(1)
        logit_drop = (logits[0, target] - logits[:, target]).numpy()
        probability_drop = (probabilities[0, target] - probabilities[:, target]).numpy()
        flips = (logits.argmax(1) != predicted).numpy()
        count = len(names)
        frame_drop = anomaly_drop = anomaly_flips = None
        if anomaly:
            anomaly_drop, anomaly_flips = float(logit_drop[-1]), bool(flips[-1])
            frame_drop = _segment_drops(scorer, features[0], features[-1], target, segment)
        decisive = _decisive_set(
            spec,
            model,
            scorer,
            names,
            logit_drop[1 : count + 1],
            flips[1 : count + 1],
            predicted,
            max_set,
        )
    return GroundTruth(
        target=target,
        predicted=predicted,
        logit=float(logits[0, target]),
        probability=float(probabilities[0, target]),
        actors=names,
        anomaly_actors=anomaly,
        actor_logit_drop=logit_drop[1 : count + 1],
        actor_probability_drop=probability_drop[1 : count + 1],
        actor_flips=flips[1 : count + 1],
        regions=actor_regions(model, original, seen.indices),
        anomaly_logit_drop=anomaly_drop,
        anomaly_flips=anomaly_flips,
        frame_logit_drop=frame_drop,
        decisive_set=decisive,
        clip=seen,
    )


def _segment_drops(
    scorer: _Scorer, kept: torch.Tensor, removed: torch.Tensor, target: int, segment: int
) -> np.ndarray:
    """Per model frame, the drop when the anomaly is removed from that frame's segment only:
    frames ``(T, F)`` of the clip with it (``kept``) and without it (``removed``)."""
    length = kept.shape[0]
    starts = range(0, length, segment)
    mixed = kept.repeat(len(starts), 1, 1)
    for n, start in enumerate(starts):
        mixed[n, start : start + segment] = removed[start : start + segment]
    logits = scorer.logits(torch.cat([kept[None], mixed]))
    drops = (logits[0, target] - logits[1:, target]).numpy()
    return np.repeat(drops, segment)[:length]


def _decisive_set(
    spec: SceneSpec,
    model: ExplainableModel,
    scorer: _Scorer,
    names: tuple[str, ...],
    drops: np.ndarray,
    flips: np.ndarray,
    predicted: int,
    max_set: int,
) -> tuple[str, ...] | None:
    """A smallest set of actors whose removal changes the predicted class (None when no set
    of up to ``max_set`` actors does). Among sets of one size, those whose actors' single
    drops sum highest are tried first, in batches, so the usual case costs one batch."""
    if flips.any():
        return (names[int(np.where(flips, drops, -np.inf).argmax())],)
    for size in range(2, min(max_set, len(names)) + 1):
        sets = sorted(
            itertools.combinations(range(len(names)), size),
            key=lambda members: -float(drops[list(members)].sum()),
        )
        for batch in _batches(sets, 8):
            clips = [_clip_without(model, spec, {names[k] for k in members}) for members in batch]
            logits = scorer.logits(scorer.features(clips))
            for members, flipped in zip(batch, logits.argmax(1) != predicted, strict=True):
                if flipped:
                    return tuple(names[k] for k in members)
    return None


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def evidence(drops: np.ndarray) -> np.ndarray:
    """Logit drops as evidence for the class: 0 below :data:`NO_EFFECT_SHARE` of the largest
    drop (and everywhere when no drop reaches :data:`NO_EFFECT`).

    >>> evidence(np.array([4.0, 0.1, -2.0, 1.0])).tolist()
    [4.0, 0.0, 0.0, 1.0]
    """
    drops = np.asarray(drops, dtype=np.float64)
    top = drops.max(initial=0.0)
    if top < NO_EFFECT:
        return np.zeros_like(drops)
    return np.where(drops >= NO_EFFECT_SHARE * top, drops, 0.0)


def truth_rank_correlation(scores: np.ndarray, truth: np.ndarray) -> float:
    """Spearman correlation of ``scores`` with ``truth`` where ties in the truth impose no
    order: they are broken as the scores rank them (ties in the scores keep average ranks).
    NaN with fewer than 3 items or a constant truth or constant scores.

    >>> truth_rank_correlation(np.array([5.0, 1.0, 2.0, 0.5]), np.array([3.0, 0.0, 0.0, 0.0]))
    1.0
    >>> round(truth_rank_correlation(np.array([1.0, 5.0, 2.0, 0.5]), np.array([3, 0, 0, 0])), 6)
    0.4
    """
    scores, truth = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    if len(scores) < 3 or np.ptp(truth) == 0 or np.ptp(scores) == 0:
        return float("nan")
    score_ranks = rankdata(scores)
    truth_ranks = np.empty(len(truth))
    truth_ranks[np.lexsort((score_ranks, truth))] = np.arange(1, len(truth) + 1)
    return float(np.corrcoef(score_ranks, truth_ranks)[0, 1])


def actor_masses(maps: np.ndarray, truth: GroundTruth) -> np.ndarray:
    """Each actor's attribution mass: the sum of ``maps`` ``(T, H, W)`` over its visible
    pixels in every frame, ``(A,)``."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != truth.regions.shape[1:]:
        raise InputError(f"maps {maps.shape} do not match the clip's {truth.regions.shape[1:]}")
    return np.array([maps[region].sum() for region in truth.regions])


def actor_scores(maps: np.ndarray, truth: GroundTruth) -> dict[str, float]:
    """How a spatial map ``(T, H, W)`` ranks the actors against their true importance
    (module doc): ``actor_rank_correlation`` and ``decisive_actor_first``."""
    mass = actor_masses(maps, truth)
    visible = truth.visible
    drops = evidence(np.where(visible, truth.actor_logit_drop, 0.0))
    decisive = truth.decisive_actors
    first = float("nan")
    if decisive and mass[visible].size:
        top = np.flatnonzero(visible & (mass == mass[visible].max()))
        first = float(len(top) == 1 and truth.actors[int(top[0])] in decisive)
    return {
        "actor_rank_correlation": truth_rank_correlation(mass[visible], drops[visible]),
        "decisive_actor_first": first,
    }


def evidence_pointing_game(raw: np.ndarray, truth: GroundTruth) -> dict[str, float]:
    """``pointing_game_evidence`` (module doc) of a map ``(T, h, w)`` at its own resolution;
    NaN when no frame shows the anomaly as evidence, nothing without frame drops."""
    if truth.frame_logit_drop is None:
        return {}
    anomaly = truth.regions[[truth.actors.index(a) for a in truth.anomaly_actors]].any(0)
    frames = (evidence(truth.frame_logit_drop) > 0) & anomaly.any((1, 2))
    if not frames.any():
        return {"pointing_game_evidence": float("nan")}
    hits, _ = cell_pointing_game(np.asarray(raw)[frames], anomaly[frames], truth.clip.picture)
    return {"pointing_game_evidence": float(np.nanmean(hits))}


def temporal_truth_scores(scores: np.ndarray, truth: GroundTruth) -> dict[str, float]:
    """How frame scores ``(T,)`` rank the frames against the segment removals (module doc):
    ``temporal_rank_correlation`` and ``temporal_truth_auroc``."""
    if truth.frame_logit_drop is None:
        return {}
    scores = np.asarray(scores, dtype=np.float64).ravel()
    drops = truth.frame_logit_drop
    if scores.shape != drops.shape:
        raise InputError(f"{scores.shape} frame scores for {drops.shape} frames")
    auroc = float("nan")
    if drops.max() >= NO_EFFECT:
        singled = drops >= SINGLED_OUT * drops.max()
        if 0 < singled.sum() < len(singled):
            auroc = float(roc_auc_score(singled, scores))
    return {
        "temporal_rank_correlation": truth_rank_correlation(scores, evidence(drops)),
        "temporal_truth_auroc": auroc,
    }
