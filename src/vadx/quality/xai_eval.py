"""``vadx xai-eval MODEL DATA --out DIR``: every quality metric for every method over a split.

For each anomalous clip of the split (a clip whose ground-truth masks are not empty) the
explained logit is the clip's **true class** — "why is this a fight?" — and:

* localisation: pointing game, energy pointing game (beside the mask's area share), mask IoU and
  mask ROC-AUC over its anomalous frames, per spatial method; temporal ROC-AUC of each temporal
  estimator against the per-frame labels (clips whose frames are all anomalous are skipped);
* faithfulness on the first ``faithfulness_clips`` clips: spatial deletion/insertion AUC per
  spatial method and temporal deletion/insertion AUC per estimator, each beside its random
  ordering from the same run;
* sanity on the first ``sanity_clips`` clips: cascading randomisation and the random-logit test;
* on a ``vadx synth`` dataset, ground truth about the model from interventions
  (:mod:`vadx.quality.interventions`): each clip is drawn again without each of its actors and
  without its anomaly in each frame, and every map and frame curve is scored against the logit
  drops (the clip explained is then the rendered one, before video compression); the summary's
  ``reliance`` says how often the model's decision rests on the anomaly and how often on other
  actors.

Writes ``xai-eval.json`` (every score per clip and the summary), ``xai-eval.md`` (the table,
each metric with its direction and baseline) and ``xai-eval.png``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadx import distributed
from vadx.data.dataset import ClipItem, VideoDataset
from vadx.data.splits import load_samples
from vadx.data.synth import SceneSpec, scene_specs
from vadx.errors import InputError, VadxError
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, explain
from vadx.files import atomic_path, staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.progress import ProgressFn
from vadx.quality.faithfulness import auc, spatial_curves, temporal_curves
from vadx.quality.interventions import (
    GroundTruth,
    TruthRecord,
    actor_scores,
    evidence_pointing_game,
    intervention_truth,
    temporal_truth_scores,
)
from vadx.quality.localisation import (
    cell_pointing_game,
    energy_pointing_game,
    mask_area,
    mask_auroc,
    mask_iou,
    pointing_game,
    pointing_tolerance,
    temporal_auroc,
)
from vadx.quality.metrics import METRICS
from vadx.quality.sanity import SanityChecks, cascading_randomisation
from vadx.render.plots import png_bytes

#: a method's scores on one clip, by metric (:data:`vadx.quality.metrics.METRICS`)
Scores = dict[str, float | None]


@dataclass(frozen=True, slots=True)
class ClipScores:
    """One clip's entry in ``xai-eval.json``: its file, its class (the logit explained), the
    predicted class index, every method's scores, and what the interventions showed (None
    without them)."""

    source: str
    class_name: str
    predicted: int
    scores: dict[str, Scores]
    ground_truth: TruthRecord | None = None


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """A metric over the clips: its mean, standard deviation and count (NaN and None left
    out)."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True, slots=True)
class MethodSummary:
    """A method's metrics over the clips, and whether it passed every sanity check it had
    (None: it had none)."""

    metrics: dict[str, MetricSummary]
    randomisation_passed: bool | None = None

    def __contains__(self, metric: str) -> bool:
        return metric in self.metrics

    def mean(self, metric: str) -> float:
        """The mean of ``metric`` over the clips."""
        return self.metrics[metric].mean


@dataclass(frozen=True, slots=True)
class Reliance:
    """What the model's decisions rest on, over the clips with ground truth (:func:`reliance`):
    shares are None where no clip counts."""

    clips: int
    anomaly_flips: float | None
    other_actor_flips: float | None
    other_flips_by_kind: dict[str, int]
    decisive_set_found: float | None
    mean_anomaly_logit_drop: float | None


@dataclass(frozen=True, slots=True)
class XaiEval:
    """What :func:`xai_eval` found (``xai-eval.json``, :meth:`to_json`). Under torchrun the
    ranks other than 0 hold only their clips (``summary`` empty)."""

    data: str
    split: str
    methods: list[str]
    temporal: list[str]
    layers: dict[str, str]
    model: str | None
    clips_scored: int
    faithfulness_clips: int
    sanity_clips: int
    steps: int
    summary: dict[str, MethodSummary]
    sanity: list[SanityChecks]
    interventions: bool
    reliance: Reliance | None
    clips: list[ClipScores] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``xai-eval.json``'s document."""
        return {
            "data": self.data,
            "split": self.split,
            "methods": list(self.methods),
            "temporal": list(self.temporal),
            "layers": self.layers,
            "model": self.model,
            "clips_scored": self.clips_scored,
            "faithfulness_clips": self.faithfulness_clips,
            "sanity_clips": self.sanity_clips,
            "steps": self.steps,
            "metrics": {k: vars(v) for k, v in METRICS.items()},
            "summary": {
                name: {m: asdict(s) for m, s in method.metrics.items()}
                | (
                    {}
                    if method.randomisation_passed is None
                    else {"randomisation_passed": method.randomisation_passed}
                )
                for name, method in self.summary.items()
            },
            "sanity": [asdict(checks) for checks in self.sanity],
            "interventions": self.interventions,
            "reliance": None if self.reliance is None else asdict(self.reliance),
            "clips": [  # "class"; "ground_truth" only where there is one
                {
                    "source": clip.source,
                    "class": clip.class_name,
                    "predicted": clip.predicted,
                    "scores": clip.scores,
                }
                | ({} if clip.ground_truth is None else {"ground_truth": asdict(clip.ground_truth)})
                for clip in self.clips
            ],
        }


def localisation_scores(
    maps: np.ndarray,
    masks: np.ndarray,
    picture: np.ndarray | None = None,
    raw: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean localisation scores of one clip's maps over its anomalous frames; pixel-counting
    scores count the ``picture``'s pixels only (not letter-box padding). With the ``raw`` maps
    ``(T, h, w)``, also the pointing game on their own cells (:func:`cell_pointing_game`)."""
    cells = {}
    if raw is not None:
        scores, chance = cell_pointing_game(raw, masks, picture)
        with np.errstate(all="ignore"):
            cells = {
                "pointing_game_cells": float(np.nanmean(scores)),
                "pointing_game_cells_chance": float(np.nanmean(chance)),
            }
    with np.errstate(all="ignore"):
        return cells | {
            "pointing_game": float(np.nanmean(pointing_game(maps, masks))),
            "pointing_game_tolerant": float(
                np.nanmean(pointing_game(maps, masks, pointing_tolerance(masks.shape[-2:])))
            ),
            "energy_pointing_game": float(np.nanmean(energy_pointing_game(maps, masks))),
            "mask_area": float(np.nanmean(mask_area(masks, picture))),
            "mask_iou": float(np.nanmean(mask_iou(maps, masks))),
            "mask_auroc": float(np.nanmean(mask_auroc(maps, masks, picture))),
        }


def curve_scores(curves: dict[str, np.ndarray], prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}{name.split('_')[0]}_auc" + ("_random" if name.endswith("random") else ""): auc(
            curve
        )
        for name, curve in curves.items()
    }


def xai_eval(
    model: CRNN,
    data: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    methods: Sequence[str] = DEFAULT_METHODS,
    temporal: Sequence[str] = DEFAULT_TEMPORAL,
    layer: str | None = None,
    limit: int | None = None,
    faithfulness_clips: int = 8,
    sanity_clips: int = 2,
    steps: int = 10,
    interventions: bool | None = None,
    max_set: int = 2,
    progress: ProgressFn | None = None,
) -> XaiEval:
    """Run every metric for every method over ``data``'s ``split`` (module doc).

    ``interventions``: score against the ground truth of interventions (True needs a
    ``vadx synth`` dataset; None, the default, does it whenever ``data`` is one);
    ``max_set``: the largest decisive set searched for.

    Under torchrun each rank scores its share of the clips; rank 0 writes the merged result
    (the others return only the clips).
    """
    specs = _scene_specs(data, interventions)
    samples, classes = load_samples(data, model.class_names, split)
    config = model.config
    dataset = VideoDataset.for_model(config, samples, classes)
    normal = model.class_names.index(config.normal_class) if config.normal_class else -1
    chosen = [i for i, s in enumerate(dataset.samples) if s.label != normal and s.masks]
    if not chosen:
        raise InputError(
            f"{data} ({split}) has no anomalous clip with ground-truth masks; xai-eval needs "
            "masks (vadx synth writes them)"
        )
    chosen = chosen[:limit] if limit else chosen
    device = model.device
    # under torchrun: this rank's clips, balanced by their rough relative costs
    costs = [
        1.0 + 3.0 * (n < faithfulness_clips) + 6.0 * (n < sanity_clips) for n in range(len(chosen))
    ]
    mine = distributed.share(costs)
    scored = []
    for done, n in enumerate(mine, 1):
        item = dataset[chosen[n]]
        source = dataset.samples[chosen[n]].source
        scored.append(
            _score_clip(
                model,
                item,
                str(source),
                device,
                methods=methods,
                temporal=temporal,
                layer=layer,
                faithfulness=n < faithfulness_clips,
                sanity=n < sanity_clips,
                steps=steps,
                spec=None if specs is None else specs.get(Path(source).resolve()),
                max_set=max_set,
            )
        )
        if progress is not None:
            progress("explaining", done, len(mine))
    scored = distributed.in_order(mine, scored)
    clips = [entry for entry, _, _ in scored]
    sanity = [checks for _, checks, _ in scored if checks is not None]
    layers: dict[str, str] = {}
    for _, _, used in scored:
        layers.update(used)
    last = distributed.rank() != 0  # rank 0 writes what every rank computed
    result = XaiEval(
        data=str(data),
        split=split,
        methods=list(methods),
        temporal=list(temporal),
        layers=layers,
        model=getattr(model.checkpoint, "model_id", None),
        clips_scored=len(clips),
        faithfulness_clips=min(faithfulness_clips, len(clips)),
        sanity_clips=min(sanity_clips, len(clips)),
        steps=steps,
        summary={} if last else summarise(clips, [*methods, *temporal], sanity),
        sanity=sanity,
        interventions=specs is not None,
        reliance=reliance(clips) if specs is not None else None,
        clips=clips,
    )
    if last:
        return result
    with staged_folder(Path(out), last="xai-eval.json") as staging:
        table = markdown_table(result.summary)
        if result.reliance is not None:
            table = reliance_text(result.reliance) + "\n" + table
        (staging / "xai-eval.md").write_text(table, encoding="utf-8")
        plot_summary(staging / "xai-eval.png", result.summary)
        write_json(staging / "xai-eval.json", result.to_json())
    return result


def _score_clip(
    model: CRNN,
    item: ClipItem,
    source: str,
    device: Any,
    *,
    methods: Sequence[str],
    temporal: Sequence[str],
    layer: str | None,
    faithfulness: bool,
    sanity: bool,
    steps: int,
    spec: SceneSpec | None = None,
    max_set: int = 2,
) -> tuple[ClipScores, SanityChecks | None, dict[str, str]]:
    """One clip's scores (with ``faithfulness`` curves and ``sanity`` checks when asked):
    its entry, its sanity checks (or None) and the layers the methods read."""
    assert item.masks is not None and item.picture is not None  # chosen for their masks
    clip = item.clip[None].to(device)
    target = int(item.label)
    masks, picture = item.masks.numpy(), item.picture.numpy()
    e = explain(
        model,
        clip,
        target,
        methods=methods,
        temporal=temporal,
        layer=layer,
        picture=item.picture[None],
    )
    all_scores: dict[str, Scores] = {}
    layers = {}
    for name, a in e.maps.items():
        if "layer" in a.settings:
            layers[name] = a.settings["layer"]
        scores: Scores = {**localisation_scores(a.display[0], masks, picture, raw=a.raw[0])}
        scores["off_picture_share"] = float(a.off_picture[0])
        if faithfulness:
            curves = spatial_curves(model, clip, a.display[0], target, steps=steps, picture=picture)
            scores.update(curve_scores(curves))
        all_scores[name] = scores
    labels = item.frame_labels
    for name, f in e.temporal.items():
        scores = {}
        if labels is not None:
            scores["temporal_auroc"] = temporal_auroc(f.scores[0], labels.numpy())
        if faithfulness:
            curves = temporal_curves(model, clip, f.scores[0], target)
            scores.update(curve_scores(curves, "temporal_"))
        all_scores[name] = scores
    truth_record = None
    if spec is not None:
        truth = intervention_truth(model, spec, target, max_set=max_set)
        truth_record = truth.record()
        for name, found in _truth_scores(model, truth, device, methods, temporal, layer).items():
            all_scores[name].update(found)
    checks = None
    if sanity:
        checks = cascading_randomisation(model, clip, methods, temporal, target=target, layer=layer)
        for name, result in checks.methods.items():
            all_scores[name]["randomisation_rank_correlation"] = (
                result.randomisation_rank_correlation
            )
            all_scores[name]["random_logit_rank_correlation"] = result.random_logit_rank_correlation
            if result.randomisation_ssim is not None:
                all_scores[name]["randomisation_ssim"] = result.randomisation_ssim
    entry = ClipScores(
        source=source,
        class_name=model.class_names[target],
        predicted=e.predicted[0],
        scores=all_scores,
        ground_truth=truth_record,
    )
    return entry, checks, layers


def _scene_specs(data: str | Path, interventions: bool | None) -> dict[Path, SceneSpec] | None:
    """The scenes of a ``vadx synth`` dataset when interventions are asked for (or, with None,
    possible)."""
    if interventions is False:
        return None
    try:
        return scene_specs(data)
    except VadxError as err:
        if interventions:
            raise InputError(
                f"{data}: interventions need a dataset written by vadx synth ({err})"
            ) from err
        if (Path(data) / "manifest.json").is_file():  # a synth dataset that cannot be redrawn
            warnings.warn(f"scored without interventions: {err}", stacklevel=3)
        return None


def _truth_scores(
    model: CRNN,
    truth: GroundTruth,
    device: Any,
    methods: Sequence[str],
    temporal: Sequence[str],
    layer: str | None,
) -> dict[str, dict[str, float]]:
    """Every method's scores against the interventions' ground truth, on the rendered clip."""
    e = explain(
        model,
        truth.clip.clip[None].to(device),
        truth.target,
        methods=methods,
        temporal=temporal,
        layer=layer,
        picture=torch.from_numpy(truth.clip.picture)[None],
    )
    scores = {
        name: actor_scores(a.display[0], truth) | evidence_pointing_game(a.raw[0], truth)
        for name, a in e.maps.items()
    }
    scores.update(
        {name: temporal_truth_scores(f.scores[0], truth) for name, f in e.temporal.items()}
    )
    return scores


def reliance(clips: list[ClipScores]) -> Reliance:
    """What the model's decisions rest on, over the clips with ground truth: the share whose
    decision flips when the anomaly is removed, the share where removing one other actor alone
    flips it (and which kinds of actor), and how often a decisive set was found."""
    truths = [c.ground_truth for c in clips if c.ground_truth is not None]
    anomalous = [t for t in truths if t.anomaly_flips is not None]
    kinds: dict[str, int] = {}
    for t in truths:
        for name in t.other_flips:
            kind = name.rstrip("0123456789").rstrip("-")
            kinds[kind] = kinds.get(kind, 0) + 1
    share = lambda n, of: n / len(of) if of else None  # noqa: E731
    return Reliance(
        clips=len(truths),
        anomaly_flips=share(sum(bool(t.anomaly_flips) for t in anomalous), anomalous),
        other_actor_flips=share(sum(bool(t.other_flips) for t in truths), truths),
        other_flips_by_kind=kinds,
        decisive_set_found=share(sum(t.decisive_set is not None for t in truths), truths),
        mean_anomaly_logit_drop=float(np.mean([t.anomaly_logit_drop for t in anomalous]))
        if anomalous
        else None,
    )


def reliance_text(found: Reliance) -> str:
    """The reliance finding in words, for xai-eval.md."""

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f} %"

    kinds = ", ".join(f"{k} ({n})" for k, n in sorted(found.other_flips_by_kind.items()))
    return (
        "### What the model's decisions rest on (interventions)\n\n"
        f"Over {found.clips} clips drawn again without each actor: removing the anomaly "
        f"flips the decision in {percent(found.anomaly_flips)}; removing one other actor "
        f"alone flips it in {percent(found.other_actor_flips)}"
        + (f" ({kinds})" if kinds else "")
        + ".\n"
    )


def summarise(
    clips: list[ClipScores], names: Sequence[str], sanity: list[SanityChecks]
) -> dict[str, MethodSummary]:
    """Mean, standard deviation and count of every metric of every method; sanity verdicts."""
    summary: dict[str, MethodSummary] = {}
    for name in names:
        metrics: dict[str, list[float]] = {}
        for clip in clips:
            for metric, value in clip.scores.get(name, {}).items():
                if value is not None and not math.isnan(value):
                    metrics.setdefault(metric, []).append(value)
        verdicts = [s.methods[name].passed for s in sanity if name in s.methods]
        summary[name] = MethodSummary(
            metrics={
                m: MetricSummary(mean=float(np.mean(v)), std=float(np.std(v)), n=len(v))
                for m, v in metrics.items()
            },
            randomisation_passed=all(verdicts) if verdicts else None,
        )
    return summary


def markdown_table(summary: dict[str, MethodSummary]) -> str:
    """One table per category: methods as rows, metrics as columns (``↑``/``↓`` directions)."""
    lines = []
    for category in ("localisation", "intervention", "faithfulness", "sanity"):
        metrics = [
            m
            for m in METRICS.values()
            if m.category == category
            and not m.name.endswith(("_random", "_chance"))
            and m.name != "mask_area"
        ]
        rows = [
            (name, scores)
            for name, scores in summary.items()
            if any(m.name in scores for m in metrics)
        ]
        if not rows:
            continue
        used = [m for m in metrics if any(m.name in s for _, s in rows)]
        lines += [
            f"### {category.capitalize()}",
            "",
            "| method | " + " | ".join(f"{m.name} {m.arrow}" for m in used) + " |",
            "| --- |" + " --- |" * len(used),
        ]
        for name, scores in rows:
            cells = []
            for m in used:
                if m.name not in scores:
                    cells.append("")
                    continue
                cell = f"{scores.mean(m.name):.3f}"
                if m.baseline and m.baseline in scores:
                    cell += f" (baseline {scores.mean(m.baseline):.3f})"
                cells.append(cell)
            if category == "sanity" and scores.randomisation_passed is not None:
                cells[-1] += " — " + (
                    "depends on the model"
                    if scores.randomisation_passed
                    else "**does not change: flagged**"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_summary(path: Path, summary: dict[str, MethodSummary]) -> None:
    """Bars of each method's main scores, with their baselines as marks."""
    from matplotlib.figure import Figure

    shown = [
        "pointing_game",
        "energy_pointing_game",
        "mask_auroc",
        "temporal_auroc",
        "deletion_auc",
        "insertion_auc",
        "temporal_deletion_auc",
        "temporal_insertion_auc",
    ]
    shown = [m for m in shown if any(m in s for s in summary.values())]
    figure = Figure(figsize=(2.3 * len(shown) + 1, 3.2), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)
    for ax, metric in zip(axes[0], shown, strict=True):
        names = [n for n, s in summary.items() if metric in s]
        values = [summary[n].mean(metric) for n in names]
        ax.bar(range(len(names)), values, color="#4a78c2")
        baseline = METRICS[metric].baseline
        for i, n in enumerate(names):
            if baseline and baseline in summary[n]:
                ax.plot([i - 0.4, i + 0.4], [summary[n].mean(baseline)] * 2, color="#c23b3b")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=7)
        ax.set_title(f"{metric} {METRICS[metric].arrow}", fontsize=8)
        ax.set_ylim(0, 1.02)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(figure, dpi=110))
