"""Explanations scored against ground truth by intervention, for one or several models.

For each model: a synthetic test set drawn with ``--seed`` (one the project never tuned on;
the default family and the evidence-controlled one), then ``vadx xai-eval`` on it twice in
one run — with the interventions and without — so that the cost of the ground truth is a
ratio measured side by side. Writes ``ground-truth-<name>.json``: per model and family, every
method's mean scores (intervention, localisation), what the decisions rest on (``reliance``),
and the seconds of both runs.

    python benchmarks/bench_ground_truth.py demo-out/run/best --out benchmarks/results
    python benchmarks/bench_ground_truth.py RUN_A/best RUN_B/best --names a,b --seed 7351
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from vadx import __version__
from vadx.data.synth import FAMILIES, SynthConfig, generate
from vadx.files import write_json
from vadx.models import load_model
from vadx.quality import xai_eval

SHOWN = (
    "actor_rank_correlation",
    "decisive_actor_first",
    "temporal_rank_correlation",
    "temporal_truth_auroc",
    "pointing_game",
    "pointing_game_cells",
    "pointing_game_cells_chance",
    "pointing_game_evidence",
    "temporal_auroc",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--names", help="comma-separated names of the models (default: folders)")
    parser.add_argument("--seed", type=int, default=7351)
    parser.add_argument("--clips", type=int, default=12, help="test clips per class")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--methods", default="layercam,gradcam,saliency,activation")
    parser.add_argument(
        "--temporal", default="frame_shapley,frame_occlusion,gradient_norm,gradcam_mass"
    )
    parser.add_argument("--layer", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name")
    args = parser.parse_args()
    names = args.names.split(",") if args.names else [p.parent.name for p in args.models]
    methods, temporal = args.methods.split(","), args.temporal.split(",")
    results: dict = {
        "vadx": __version__,
        "seed": args.seed,
        "clips_per_class": args.clips,
        "methods": methods,
        "temporal": temporal,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as work:
        for name, path in zip(names, args.models, strict=True):
            model = load_model(path)
            frames = max(40, 2 * model.config.num_frames)
            results["models"][name] = entry = {"path": str(path), "families": {}}
            for family in args.families.split(","):
                data = Path(work) / f"{name}-{family}"
                generate(
                    data,
                    SynthConfig(
                        clips=(0, 0, args.clips),
                        num_frames=frames,
                        size=tuple(model.config.frame_size),
                        seed=args.seed,
                        family=family,
                        classes=tuple(
                            c
                            for c in ("fight", "shooting", "fire", "normal")
                            if c in model.class_names
                        ),
                    ),
                )
                seconds = {}
                documents = {}
                for with_truth in (False, True):
                    started = time.perf_counter()
                    documents[with_truth] = xai_eval(
                        model,
                        data,
                        Path(work) / f"eval-{name}-{family}-{with_truth}",
                        methods=methods,
                        temporal=temporal,
                        layer=args.layer,
                        faithfulness_clips=0,
                        sanity_clips=0,
                        interventions=with_truth,
                    )
                    seconds["with" if with_truth else "without"] = time.perf_counter() - started
                found = documents[True]
                summary = found.summary
                entry["families"][family] = {
                    "clips_scored": found.clips_scored,
                    "layers": found.layers,
                    "reliance": None if found.reliance is None else asdict(found.reliance),
                    "scores": {
                        method: {m: summary[method].mean(m) for m in SHOWN if m in summary[method]}
                        for method in summary
                    },
                    "seconds": seconds,
                    "cost_ratio": seconds["with"] / seconds["without"],
                }
                print(name, family, entry["families"][family], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ground-truth{args.tag}.json"
    write_json(path, results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
