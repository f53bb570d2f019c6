"""What the frame fit (``pad`` / ``crop`` / ``stretch``) does to accuracy and to explanations.

Surveillance cameras film 4:3 or 16:9; the model takes square frames. The demo's recipe (the
``cpu`` preset, 25 epochs) is trained three times on the same 4:3 synthetic dataset (160×120),
once per fit, and each model is measured in the same run:

* test accuracy and macro-F1 on the 4:3 test split;
* the share of the raw attribution of LayerCAM, Grad-CAM and saliency that falls on letter-box
  padding (only ``pad`` has any), on the anomalous test clips and on real footage (bikes.mp4,
  16:9), and the same share in the displayed maps (0 by construction: checked);
* the pointing game (the display maximum inside the anomaly's mask) on the anomalous test clips.

    python benchmarks/bench_fit.py --out benchmarks/results [--epochs 25]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vadx import __version__
from vadx.data import VideoDataset, folder_samples
from vadx.data.synth import SynthConfig, generate
from vadx.explain import explain
from vadx.files import write_json
from vadx.models import load_model
from vadx.train.evaluate import classification_metrics, predict
from vadx.train.session import train_from_path
from vadx.video import VideoReader, fit_frames, frames_to_clip
from vadx.video.sampling import even_indices

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.videos import bikes_mp4

FITS = ("pad", "crop", "stretch")
METHODS = ("layercam", "gradcam", "saliency")


def shares(model, clip: torch.Tensor, picture: np.ndarray) -> dict[str, tuple[float, float]]:
    """(raw share off the picture, displayed share off the picture) per method."""
    e = explain(model, clip, methods=METHODS, temporal=(), picture=torch.from_numpy(picture)[None])
    out = {}
    for name in METHODS:
        shown = e[name].display[0]
        out[name] = (
            float(e[name].off_picture[0]),
            float(shown[:, ~picture].sum() / max(shown.sum(), 1e-12)),
        )
    return out, e


def pointing(e, masks: np.ndarray) -> dict[str, float]:
    """Share of the clip's frames with an anomaly whose display maximum lies in the mask."""
    hits = {}
    for name in METHODS:
        shown = e[name].display[0]
        frames = [t for t in range(len(masks)) if masks[t].any()]
        hits[name] = float(np.mean([masks[t].flat[int(shown[t].argmax())] for t in frames]))
    return hits


def measure(model, data: Path, clips: int) -> dict:
    samples, classes = folder_samples(data, model.class_names, "test")
    test = VideoDataset.for_model(model.config, samples, classes)
    probabilities, labels = predict(model, test)
    metrics = classification_metrics(probabilities, labels, classes, model.config.normal_class)
    normal = model.class_names.index(model.config.normal_class)
    anomalous = [i for i, s in enumerate(test.samples) if s.label != normal][:clips]
    raw = {m: [] for m in METHODS}
    shown = {m: [] for m in METHODS}
    points = {m: [] for m in METHODS}
    for index in anomalous:
        item = test[index]
        sample = test.samples[index]
        with VideoReader(sample.source) as video:
            frames = video.read(item.frame_indices.numpy()).data
        _, geometry, _ = fit_frames(frames, model.config.frame_size, model.config.fit)
        found, e = shares(model, item.clip[None], geometry.picture())
        for name, (r, s) in found.items():
            raw[name].append(r)
            shown[name].append(s)
        for name, hit in pointing(e, item.masks.numpy()).items():
            points[name].append(hit)
    real_raw = {m: [] for m in METHODS}
    with VideoReader(bikes_mp4()) as video:
        for start in range(0, video.info.num_frames - 40, 40):
            indices = even_indices(
                video.info.num_frames, model.config.num_frames, start, start + 40
            )
            fitted, geometry, _ = fit_frames(
                video.read(indices).data, model.config.frame_size, model.config.fit
            )
            clip = frames_to_clip(fitted, model.config.mean, model.config.std)[None]
            found, _ = shares(model, clip, geometry.picture())
            for name, (r, _) in found.items():
                real_raw[name].append(r)
    return {
        "test_accuracy": metrics.accuracy,
        "test_macro_f1": metrics.macro_f1,
        "off_picture_raw_test": {m: float(np.mean(v)) for m, v in raw.items()},
        "off_picture_displayed_test": {m: float(np.max(v)) for m, v in shown.items()},
        "off_picture_raw_real": {m: float(np.mean(v)) for m, v in real_raw.items()},
        "pointing_game_test": {m: float(np.mean(v)) for m, v in points.items()},
        "explained_clips": len(anomalous),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--clips", type=str, default="96,24,32", help="per class: train,val,test")
    parser.add_argument("--explained", type=int, default=24, help="anomalous test clips")
    parser.add_argument("--work", type=Path, default=None, help="keep data and runs here")
    args = parser.parse_args()
    counts = tuple(int(c) for c in args.clips.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = work / "data-4x3"
        if not (data / "manifest.json").is_file():
            generate(data, SynthConfig(clips=counts, num_frames=40, size=(120, 160), seed=0))
        results = {
            "vadx_version": __version__,
            "frames": "160×120 synthetic (4:3) → 112×112",
            "epochs": args.epochs,
            "clips": counts,
            "fits": {},
        }
        for fit in FITS:
            run = work / f"run-{fit}"
            began = time.perf_counter()
            if not (run / "best").is_dir():
                train_from_path(
                    data,
                    run,
                    "cpu",
                    model_changes={"fit": fit},
                    train_changes={"epochs": args.epochs, "seed": 0},
                )
            trained = time.perf_counter() - began
            model = load_model(run / "best")
            results["fits"][fit] = {
                "train_seconds": trained,
                **measure(model, data, args.explained),
            }
            print(fit, results["fits"][fit], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "fit-demo.json", results)


if __name__ == "__main__":
    main()
