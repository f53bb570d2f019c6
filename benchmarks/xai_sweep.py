"""Which training setup makes the demo model's explanations point at the anomaly? (issue 7)

For each variant of the ``cpu`` preset (how many backbone units are fine-tuned, frame size),
train on the demo's synthetic data — or take a trained checkpoint with ``--model`` — then score
on the test split's anomalous clips (target: the true class): pointing game (strict, and on the
last four frames) and energy game beside the mask's area share of each spatial method
(``--methods``, Grad-CAM also with clip weighting) at several layers, and the temporal ROC-AUC
of frame occlusion and frame Shapley (black and mean-frame baselines). Results are written after
every variant, so a run cut short keeps what it finished.

    python benchmarks/xai_sweep.py --out benchmarks/results/xai-sweep --variants 1,9,14
    python benchmarks/xai_sweep.py --model demo-out/run/best --data demo-out/data --out /tmp/s

``results/xai-sweep-freeze-h200.json`` comes from the first version of this script (Grad-CAM
only, keys without the method's name, Shapley with the mean frame); ``xai-sweep-demo-cpu.json``
from this one on the demo model, ``xai-sweep-224-cpu.json`` from it at ``--size 224`` (2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from vadx.data.dataset import VideoDataset
from vadx.data.splits import load_samples
from vadx.data.synth import SynthConfig, generate
from vadx.explain import explain
from vadx.files import write_json
from vadx.models.checkpoint import load_model
from vadx.quality.localisation import pointing_game, temporal_auroc
from vadx.quality.xai_eval import localisation_scores
from vadx.train.evaluate import classification_metrics, predict
from vadx.train.session import train_from_path

LAYERS = ("head", "block15", "block10", "block7", "block4")
WEIGHTINGS = ("frame", "clip")
#: result name → (estimator, its settings)
TEMPORAL = {
    "frame_occlusion": ("frame_occlusion", {"baseline": "mean"}),
    "frame_shapley": ("frame_shapley", {"segments": 8, "baseline": "black"}),
    "frame_shapley_mean": ("frame_shapley", {"segments": 8, "baseline": "mean"}),
}


def score(
    model,
    data: Path,
    limit: int | None,
    methods: tuple[str, ...],
    layers: tuple[str, ...] = LAYERS,
    weightings: tuple[str, ...] = WEIGHTINGS,
) -> dict:
    """Localisation per layer and temporal ROC-AUC per estimator, per class and overall."""
    config = model.config
    samples, classes = load_samples(data, model.class_names, "test")
    dataset = VideoDataset.for_model(config, samples, classes)
    probabilities, labels = predict(model, dataset)
    metrics = classification_metrics(probabilities, labels, classes, config.normal_class)
    normal = model.class_names.index(config.normal_class)
    chosen = [i for i, s in enumerate(dataset.samples) if s.label != normal and s.masks]
    rows: dict[str, dict[str, list[float]]] = {}
    device = next(model.parameters()).device

    def add(key: str, kind: str, value: float) -> None:
        for group in (kind, "all"):
            rows.setdefault(f"{key}/{group}", {}).setdefault("v", []).append(value)

    for index in chosen[:limit]:
        item = dataset[index]
        clip, target = item.clip[None].to(device), int(item.label)
        masks, kind = item.masks.numpy(), model.class_names[target]
        for layer, weighting in itertools.product(layers, weightings):
            e = explain(
                model, clip, target, methods=methods, temporal=(), layer=layer, weighting=weighting
            )
            for method, attribution in e.maps.items():
                if weighting != "frame" and method != "gradcam":
                    continue  # the weighting is Grad-CAM's
                maps = attribution.display[0]
                key = f"{method}{'' if weighting == 'frame' else '-' + weighting}@{layer}"
                scores = localisation_scores(maps, masks)
                for name in ("pointing_game", "energy_pointing_game", "mask_area"):
                    add(f"{key}/{name}", kind, scores[name])
                last = pointing_game(maps[-4:], masks[-4:])
                add(f"{key}/pointing_game_last4", kind, float(np.nanmean(last)))
        frame_labels = item.frame_labels.numpy()
        if frame_labels.min() == frame_labels.max():
            continue
        for name, (method, options) in TEMPORAL.items():
            e = explain(
                model, clip, target, methods=(), temporal=(method,), options={method: options}
            )
            add(
                f"{name}/temporal_auroc",
                kind,
                temporal_auroc(e.temporal[method].scores[0], frame_labels),
            )
    summary = {k: round(float(np.nanmean(v["v"])), 4) for k, v in sorted(rows.items())}
    return {"accuracy": metrics.accuracy, "clips": len(chosen[:limit]), "scores": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("/tmp/xai-sweep-data"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/xai-sweep-runs"))
    parser.add_argument("--model", type=Path, help="score this checkpoint instead of training")
    parser.add_argument(
        "--variants",
        default="1,9,14",
        help="comma-separated freeze values (last N units trained), 'none' too",
    )
    parser.add_argument("--clips", default="96,24,32")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--limit", type=int, default=None, help="anomalous test clips scored")
    parser.add_argument("--size", type=int, default=112, help="frame size of data and model")
    parser.add_argument("--methods", default="gradcam,layercam", help="spatial methods scored")
    parser.add_argument("--layers", default=",".join(LAYERS), help="backbone layers scored")
    parser.add_argument("--weightings", default=",".join(WEIGHTINGS), help="Grad-CAM's")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = tuple(int(c) for c in args.clips.split(","))
    methods = tuple(args.methods.split(","))
    where = (tuple(args.layers.split(",")), tuple(args.weightings.split(",")))
    started = time.perf_counter()
    if not (args.data / "manifest.json").is_file():
        generate(args.data, SynthConfig(clips=clips, num_frames=40, size=(args.size,) * 2, seed=0))
    results = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "synth_seconds": time.perf_counter() - started,
        "variants": {},
    }
    if args.model:
        model = load_model(args.model, device="cuda" if torch.cuda.is_available() else "cpu")
        results["variants"][str(args.model)] = score(model, args.data, args.limit, methods, *where)
        write_json(args.out / "xai-sweep.json", results)
        return
    for variant in args.variants.split(","):
        freeze = variant if variant == "none" else int(variant)
        started = time.perf_counter()
        run = train_from_path(
            args.data,
            args.runs / f"run-{variant}",
            "cpu",
            model_changes={"freeze": freeze, "frame_size": (args.size,) * 2},
            train_changes={"epochs": args.epochs, "seed": 0, "workers": args.workers},
        )
        trained = time.perf_counter() - started
        model = load_model(run.best, device="cuda" if torch.cuda.is_available() else "cpu")
        entry = score(model, args.data, args.limit, methods, *where)
        entry.update(
            train_seconds=trained,
            best_epoch=run.best_epoch,
            epochs_run=len(run.history),
            score_seconds=time.perf_counter() - started - trained,
        )
        results["variants"][variant] = entry
        write_json(args.out / "xai-sweep.json", results)
        print(variant, json.dumps(entry)[:2000], flush=True)


if __name__ == "__main__":
    main()
