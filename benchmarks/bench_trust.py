"""Does the trust verdict tell maps that match the ground truth from maps that don't?

On a model and a ``vadx synth`` test set drawn with ``--seed`` (one no choice was made on), every
anomalous clip is drawn as the model sees it, its ground truth measured by intervention
(:mod:`vadx.quality.interventions`), explained with the default methods, and each map given its
trust verdict (:mod:`vadx.quality.trust`). A map **matches** the ground truth when the actor it
gives the most mass belongs to the decisive set and it ranks the actors like the interventions
do (actor rank correlation ≥ ``--rank``). Reported: the ROC-AUC of the verdict's score (and of
each check's value) against matching, the ROC curve, how the verdicts split matching and
non-matching maps, and the check's cost as a ratio to the explanation's own time — of the maps
scored, and of the default explanation (maps and frame curves, what ``vadx explain --trust``
checks). On a model with a trust calibration (``vadx calibrate-trust``, measured on its own
validation scenes) both verdicts are reported from the same checks: the calibrated one and
the one without it. Writes JSON.

    python benchmarks/bench_trust.py RUN/best --seed 4711 --clips 8 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from vadx import __version__
from vadx.catalogue import DEFAULT_METHODS
from vadx.data.synth import SynthConfig, generate, scene_specs
from vadx.explain import explain
from vadx.files import write_json
from vadx.models import load_model
from vadx.quality.interventions import actor_masses, actor_scores, intervention_truth
from vadx.quality.trust import VERDICTS, TrustSettings, trust_check
from vadx.quality.trust_prior import calibration_of

ORDINAL = {"trustworthy": 2, "weak": 1, "contradictory": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--seed", type=int, default=4711)
    parser.add_argument("--clips", type=int, default=8, help="test clips per class")
    parser.add_argument("--family", default="default")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--fractions", default=None, help="comma-separated shares, e.g. 0.01,0.02")
    parser.add_argument("--no-insertion", action="store_true")
    parser.add_argument("--rank", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--no-default", action="store_true", help="skip the default explanation's cost"
    )
    args = parser.parse_args()
    model = load_model(args.model)
    calibration = calibration_of(model)
    methods = args.methods.split(",")
    settings = TrustSettings(insertion=not args.no_insertion)
    if args.fractions:
        fractions = tuple(float(f) for f in args.fractions.split(","))
        settings = TrustSettings(fractions=fractions, insertion=not args.no_insertion)
    rows, engine_s, trust_s, default_s, default_trust_s = [], 0.0, 0.0, 0.0, 0.0
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "data"
        classes = tuple(
            c for c in ("fight", "shooting", "fire", "normal") if c in model.class_names
        )
        generate(
            data,
            SynthConfig(
                clips=(0, 0, args.clips),
                num_frames=max(40, 2 * model.config.num_frames),
                size=tuple(model.config.frame_size),
                seed=args.seed,
                family=args.family,
                classes=classes,
            ),
        )
        specs = [s for s in scene_specs(data).values() if s.kind != model.config.normal_class]
        for n, spec in enumerate(specs, 1):
            target = model.class_names.index(spec.kind)
            truth = intervention_truth(model, spec, target)
            clip = truth.clip.clip[None]
            picture = truth.clip.picture
            started = time.perf_counter()
            e = explain(model, clip, target, methods=methods, temporal=[],
                        picture=torch.from_numpy(picture)[None])  # fmt: skip
            engine_s += time.perf_counter() - started
            started = time.perf_counter()
            verdicts = trust_check(model, e, picture=picture, thresholds=settings)
            trust_s += time.perf_counter() - started
            # what `vadx explain --trust` adds to the default explanation (maps and curves)
            if not args.no_default:
                started = time.perf_counter()
                full = explain(model, clip, target, picture=torch.from_numpy(picture)[None])
                default_s += time.perf_counter() - started
                started = time.perf_counter()
                trust_check(model, full, picture=picture, thresholds=settings)
                default_trust_s += time.perf_counter() - started
            for method, a in e.maps.items():
                scores = actor_scores(a.display[0], truth)
                rank, first = scores["actor_rank_correlation"], scores["decisive_actor_first"]
                if np.isnan(rank) or np.isnan(first):
                    continue
                v = verdicts[method]
                plain = v.uncalibrated()
                # the actor with the most mass: does removing it alone flip the decision too?
                # (the decisive set holds one actor when several flip it alone)
                mass = np.where(truth.visible, actor_masses(a.display[0], truth), -np.inf)
                top = int(mass.argmax())
                rows.append(
                    {
                        "clip": n,
                        "class": spec.kind,
                        "method": method,
                        "matches": bool(first == 1 and rank >= args.rank),
                        "actor_rank_correlation": rank,
                        "decisive_actor_first": first,
                        "top_actor": truth.actors[top],
                        "top_actor_flips": bool(truth.actor_flips[top]),
                        "verdict": v.verdict,
                        "score": v.score,
                        "uncalibrated_verdict": plain.verdict,
                        "uncalibrated_score": plain.score,
                        "checks": {c.name: c.value for c in v.checks},
                    }
                )
            print(f"{n}/{len(specs)} clips", flush=True)
    matches = np.array([r["matches"] for r in rows])
    result = {
        "vadx": __version__,
        "model": str(args.model),
        "seed": args.seed,
        "family": args.family,
        "settings": {"fractions": settings.fractions, "insertion": settings.insertion},
        "maps": len(rows),
        "matching": int(matches.sum()),
        "cost_ratio": trust_s / engine_s,
        "cost_ratio_default_explanation": default_trust_s / default_s if default_s else None,
        "seconds": {
            "engine": engine_s,
            "trust": trust_s,
            "default_explanation": default_s,
            "trust_of_default_explanation": default_trust_s,
        },
    }
    if 0 < matches.sum() < len(matches):
        score = np.array([r["score"] for r in rows])
        fpr, tpr, _ = roc_curve(matches, score)
        result["roc_auc_score"] = float(roc_auc_score(matches, score))
        result["roc_auc_verdict"] = float(
            roc_auc_score(matches, [ORDINAL[r["verdict"]] for r in rows])
        )
        result["roc_curve"] = {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()}
        if calibration is not None:
            result["uncalibrated"] = {
                "roc_auc_score": float(
                    roc_auc_score(matches, [r["uncalibrated_score"] for r in rows])
                ),
                "roc_auc_verdict": float(
                    roc_auc_score(matches, [ORDINAL[r["uncalibrated_verdict"]] for r in rows])
                ),
                "verdicts": _split(rows, "uncalibrated_verdict"),
            }
        result["roc_auc_by_check"] = {}
        for check in rows[0]["checks"]:
            values = np.array([r["checks"][check] for r in rows], dtype=float)
            known = ~np.isnan(values)
            if 0 < matches[known].sum() < known.sum():
                result["roc_auc_by_check"][check] = float(
                    roc_auc_score(matches[known], values[known])
                )
    result["verdicts"] = _split(rows, "verdict")
    if calibration is not None:
        result["calibration"] = asdict(calibration.describe())
    result["by_method"] = {
        m: {
            "maps": sum(r["method"] == m for r in rows),
            "matching": sum(r["method"] == m and r["matches"] for r in rows),
            "trustworthy": sum(r["method"] == m and r["verdict"] == "trustworthy" for r in rows),
        }
        for m in methods
    }
    result["rows"] = rows
    shown = ("maps", "matching", "roc_auc_score", "roc_auc_verdict", "roc_auc_by_check")
    shown += ("uncalibrated",)
    shown += ("verdicts", "by_method", "cost_ratio", "cost_ratio_default_explanation")
    for key in shown:
        print(key, result.get(key))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"trust{args.tag}.json"
    write_json(path, result)
    print(f"wrote {path}")


def _split(rows: list[dict], key: str) -> dict[str, dict[str, int]]:
    """How each verdict (``key`` of the rows) splits matching and non-matching maps."""
    return {
        kind: {
            "matching": int(sum(r[key] == kind and r["matches"] for r in rows)),
            "not_matching": int(sum(r[key] == kind and not r["matches"] for r in rows)),
        }
        for kind in VERDICTS
    }


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
