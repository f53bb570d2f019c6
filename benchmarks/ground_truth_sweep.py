"""Which method settings pass the ground truth by intervention? (the sweep behind the defaults)

On one model and a ``vadx synth`` test set (drawn with a seed no one tuned on; the
evidence-controlled family makes pointing at the anomaly the right answer), every anomalous
clip is drawn as the model sees it and its ground truth measured once
(:func:`vadx.quality.interventions.intervention_truth`); then each spatial configuration —
method × layer × options — is scored by the pointing game on the map's cells and on pixels,
the actor rank correlation and the decisive actor, and each temporal configuration by its
rank correlation and ROC-AUC against the segment removals. Writes JSON.

    python benchmarks/ground_truth_sweep.py RUN/best DATA --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vadx.data.synth import scene_specs
from vadx.explain import explain
from vadx.files import write_json
from vadx.models import load_model
from vadx.quality.interventions import (
    NO_EFFECT_SHARE,
    SINGLED_OUT,
    actor_scores,
    intervention_truth,
    temporal_truth_scores,
)
from vadx.quality.localisation import cell_pointing_game, pointing_game
from vadx.video.preprocess import fit_frames

SPATIAL = [
    ("layercam", None, {}),
    ("gradcam", None, {}),
    ("activation", None, {}),
]
TEMPORAL = [
    ("frame_shapley", {}),
    ("frame_occlusion", {}),
]


def parse(text: str) -> tuple[str, str | None, dict]:
    """``method[@layer][:key=value,…]``, e.g. ``gradcam@block10:weighting=clip``."""
    head, _, options = text.partition(":")
    method, _, layer = head.partition("@")
    settings = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        settings[key] = int(value) if value.isdigit() else value
    return method, layer or None, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--spatial", nargs="*", default=None, help="method[@layer][:k=v,…]")
    parser.add_argument("--temporal", nargs="*", default=None, help="estimator[:k=v,…]")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = load_model(args.model)
    spatial = [parse(s) for s in args.spatial] if args.spatial else SPATIAL
    temporal = [(m, o) for m, _, o in map(parse, args.temporal)] if args.temporal else TEMPORAL
    specs = [s for s in scene_specs(args.data).values() if s.kind in model.class_names]
    specs = [s for s in specs if s.kind != model.config.normal_class][: args.limit]
    scores: dict[str, list[dict[str, float]]] = {}
    started = time.perf_counter()
    for n, spec in enumerate(specs, 1):
        target = model.class_names.index(spec.kind)
        truth = intervention_truth(model, spec, target)
        rendered = spec.render()
        config = model.config
        _, _, masks = fit_frames(
            rendered.frames[truth.clip.indices],
            config.frame_size,
            config.fit,
            rendered.masks[truth.clip.indices],
        )
        clip = truth.clip.clip[None]
        for method, layer, options in spatial:
            e = explain(
                model,
                clip,
                target,
                methods=[method],
                temporal=[],
                layer=layer,
                options={method: options} if options else None,
            )
            a = e.maps[method]
            cells, chance = cell_pointing_game(a.raw[0], masks)
            drops = truth.frame_logit_drop
            singled = drops >= SINGLED_OUT * drops.max()
            evident = drops >= NO_EFFECT_SHARE * drops.max()
            with np.errstate(all="ignore"):
                row = {
                    "pointing_game_cells": float(np.nanmean(cells)),
                    "pointing_game_cells_singled_out": float(np.nanmean(cells[singled])),
                    "pointing_game_cells_not_singled_out": float(np.nanmean(cells[~singled])),
                    "pointing_game_cells_evidence": float(np.nanmean(cells[evident])),
                    "evidence_frames": float(evident.mean()),
                    "pointing_game_cells_chance": float(np.nanmean(chance)),
                    "pointing_game": float(np.nanmean(pointing_game(a.display[0], masks))),
                    **actor_scores(a.display[0], truth),
                }
            key = f"{method}@{a.settings.get('layer', '-')}" + "".join(
                f":{k}={v}" for k, v in options.items()
            )
            scores.setdefault(key, []).append(row)
        for method, options in temporal:
            e = explain(
                model,
                clip,
                target,
                methods=[],
                temporal=[method],
                options={method: options} if options else None,
            )
            key = method + "".join(f":{k}={v}" for k, v in options.items())
            scores.setdefault(key, []).append(
                temporal_truth_scores(e.temporal[method].scores[0], truth)
            )
        print(f"{n}/{len(specs)} clips", flush=True)
    summary = {
        key: {
            metric: float(np.nanmean([r[metric] for r in rows]))
            for metric in rows[0]
            if not all(np.isnan(r[metric]) for r in rows)
        }
        for key, rows in scores.items()
    }
    for key, values in summary.items():
        print(key, {k: round(v, 3) for k, v in values.items()})
    write_json(
        args.out,
        {
            "model": str(args.model),
            "data": str(args.data),
            "clips": len(specs),
            "seconds": time.perf_counter() - started,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
