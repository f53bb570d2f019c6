"""Architectures compared by their explanations, against ground truth by intervention.

The reference paper chose its GRU width and MLP depth by looking at explanations. This trains
variants on one dataset (the evidence-controlled family, where pointing at the anomaly is the
right answer: ``vadx synth DATA --family controlled``), then scores each with ``vadx xai-eval``
and its interventions on a fresh test set drawn with ``--seed`` (default: 7351, never used for
tuning). Results are written after every variant, so a run cut short keeps what it finished.

Variants (``--variants``, comma-separated):

* ``gru-1`` — the ``cpu`` preset: ImageNet EfficientNet-Lite0, GRU 256, one hidden layer (64);
* ``lstm-1`` — the same with an LSTM;
* ``gru-2``, ``gru-3`` — two (128-64) and three (256-128-64) hidden head layers;
* ``vgg19`` — the ``cpu-scratch`` preset: VGG19 at 1/8 width with batch-norm, trained from
  scratch (64-px frames, 10 a clip, GRU 128, head 64-32): the reference CNN at a width that
  fits 2 CPU cores.

    python benchmarks/bench_architectures.py data/controlled --work runs/arch \\
        --out benchmarks/results/architectures.json [--existing gru-1=runs/ctrl/best]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from vadx import __version__
from vadx.data.synth import SynthConfig, generate
from vadx.files import write_json
from vadx.models import load_model
from vadx.quality import xai_eval
from vadx.train.evaluate import evaluate_clips
from vadx.train.session import train_from_path

VARIANTS = {
    "gru-1": ("cpu", {}),
    "lstm-1": ("cpu", {"rnn": "lstm"}),
    "gru-2": ("cpu", {"head_hidden": (128, 64)}),
    "gru-3": ("cpu", {"head_hidden": (256, 128, 64)}),
    "vgg19": ("cpu-scratch", {}),
}
SHOWN = {
    "layercam": ("actor_rank_correlation", "decisive_actor_first", "pointing_game_cells"),
    "gradcam": ("actor_rank_correlation", "decisive_actor_first", "pointing_game_cells"),
    "frame_shapley": ("temporal_rank_correlation", "temporal_truth_auroc"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="training data (vadx synth --family controlled)")
    parser.add_argument("--work", type=Path, required=True, help="where the runs go")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file written")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--existing", action="append", default=[], help="NAME=CHECKPOINT")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7351)
    parser.add_argument("--clips", type=int, default=8, help="test clips per class")
    args = parser.parse_args()
    existing = dict(item.split("=", 1) for item in args.existing)
    results: dict = {
        "vadx": __version__,
        "data": str(args.data),
        "epochs": args.epochs,
        "seed": args.seed,
        "clips_per_class": args.clips,
        "variants": {},
    }
    for name in args.variants.split(","):
        preset, changes = VARIANTS[name]
        started = time.perf_counter()
        if name in existing:
            checkpoint = Path(existing[name])
        else:
            run = train_from_path(
                args.data,
                args.work / name,
                preset,
                model_changes=changes,
                train_changes={"epochs": args.epochs, "seed": 0},
                resume=(args.work / name / "last").is_dir(),
            )
            checkpoint = run.best
        trained = time.perf_counter() - started
        model = load_model(checkpoint)
        config = model.config
        test = args.work / f"test-{config.frame_size[0]}"
        if not (test / "manifest.json").is_file():
            generate(
                test,
                SynthConfig(
                    clips=(0, 0, args.clips),
                    num_frames=40,
                    size=tuple(config.frame_size),
                    seed=args.seed,
                    family="controlled",
                ),
            )
        accuracy = evaluate_clips(model, test, args.work / f"eval-{name}", split="test")
        started = time.perf_counter()
        document = xai_eval(
            model,
            test,
            args.work / f"xai-{name}",
            methods=["layercam", "gradcam"],
            temporal=["frame_shapley"],
            faithfulness_clips=0,
            sanity_clips=0,
            interventions=True,
        )
        summary = document.summary
        results["variants"][name] = {
            "checkpoint": str(checkpoint),
            "architecture": {
                "backbone": config.backbone,
                "backbone_args": config.backbone_args,
                "rnn": f"{config.rnn} {config.rnn_hidden}",
                "head_hidden": list(config.head_hidden),
                "frames": config.num_frames,
                "size": list(config.frame_size),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "test_accuracy": accuracy.accuracy,
            "reliance": None if document.reliance is None else asdict(document.reliance),
            "scores": {
                method: {m: summary[method].mean(m) for m in metrics if m in summary[method]}
                for method, metrics in SHOWN.items()
            },
            "seconds": {"train": trained, "xai_eval": time.perf_counter() - started},
        }
        write_json(args.out, results)
        print(name, results["variants"][name], flush=True)


if __name__ == "__main__":
    main()
