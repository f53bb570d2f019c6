"""Training and detection costs, each measured against its plain baseline in the same run.

* ``vadx train`` throughput (clips/s) vs a minimal hand-written PyTorch loop (same model, data,
  batch size, optimizer), one epoch each after a warm-up epoch;
* feature caching for a frozen backbone: epoch time without the cache vs with it (the one-time
  caching cost reported too);
* ``vadx detect`` time vs recomputing every window from scratch (the whole CRNN per window).

    python benchmarks/bench_train_detect.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vadx import __version__
from vadx.data import VideoDataset, folder_samples
from vadx.data.synth import SynthConfig, generate, render_long
from vadx.detect import DetectConfig, detect
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig
from vadx.train import TrainConfig, train
from vadx.train.loop import make_optimizer
from vadx.video import VideoReader, fit_frames, frames_to_clip, write_mp4

CLASSES = ("fight", "shooting", "fire", "normal")
MODEL_ARGS = dict(
    backbone_args={"width": 0.125},
    num_frames=10,
    frame_size=(64, 64),
    rnn_hidden=128,
    head_hidden=(64, 32),
)
MODEL = CRNN(CRNNConfig(**MODEL_ARGS)).config  # mean/std resolved from the backbone


def datasets(root: Path, config: CRNNConfig):
    def load(split):
        samples, names = folder_samples(root, class_names=CLASSES, split=split)
        return VideoDataset.for_model(config, samples, names)

    return load("train"), load("val")


def hand_written_epoch(model, data, batch_size):
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        shuffle=True,
        num_workers=2,
        collate_fn=lambda items: (
            torch.stack([i.clip for i in items]),
            torch.tensor([i.label for i in items]),
        ),
    )
    optimizer = make_optimizer(model, TrainConfig(momentum=0.9))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    start, seen = time.perf_counter(), 0
    for clips, labels in loader:
        optimizer.zero_grad()
        loss_fn(model(clips), labels).backward()
        optimizer.step()
        seen += len(labels)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    generate(work / "data", SynthConfig(clips=(24, 8, 0), num_frames=30, size=(64, 64)))
    train_set, val_set = datasets(work / "data", MODEL)
    settings = TrainConfig(
        epochs=2, batch_size=8, momentum=0.9, augment=False, workers=2, patience=0
    )
    torch.manual_seed(0)
    ours = train(CRNN(MODEL), train_set, val_set, work / "run", settings).history[-1]
    torch.manual_seed(0)
    baseline_model = CRNN(MODEL)
    hand_written_epoch(baseline_model, train_set, 8)  # warm-up
    baseline = hand_written_epoch(baseline_model, train_set, 8)
    result = {
        "benchmark": "train_detect",
        "vadx": __version__,
        "threads": torch.get_num_threads(),
        "train": {
            "vadx_clips_per_second": ours.clips_per_second,
            "hand_written_clips_per_second": baseline,
            "vadx_over_hand_written": ours.clips_per_second / baseline,
        },
    }

    frozen = MODEL.replace(freeze="all")
    train_set, val_set = datasets(work / "data", frozen)
    torch.manual_seed(0)
    plain = train(CRNN(frozen), train_set, val_set, work / "plain", settings).history[-1]
    torch.manual_seed(0)
    start = time.perf_counter()
    cached_run = train(
        CRNN(frozen), train_set, val_set, work / "cached", settings.replace(cache_features=True)
    )
    total = time.perf_counter() - start
    cached = cached_run.history[-1]
    result["feature_cache"] = {
        "epoch_seconds_without_cache": plain.seconds,
        "epoch_seconds_with_cache": cached.seconds,
        "speedup_per_epoch": plain.seconds / cached.seconds,
        "one_time_caching_seconds": total - sum(h.seconds for h in cached_run.history),
    }

    video = render_long(0, [("normal", 60), ("fight", 60), ("normal", 60), ("fire", 60)], (64, 64))
    path = write_mp4(work / "long.mp4", video.frames, fps=10)
    torch.manual_seed(0)
    model = CRNN(MODEL).eval()
    config = DetectConfig(stride=2, step=2)
    detect(model, path, config)  # warm-up
    start = time.perf_counter()
    detection = detect(model, path, config)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with VideoReader(path) as reader, torch.no_grad():
        for window in detection.windows:  # the naive way: every window from its frames
            frames, _, _ = fit_frames(reader.read(window.indices).data, MODEL.frame_size, MODEL.fit)
            model(frames_to_clip(frames, MODEL.mean, MODEL.std)[None])
    naive_seconds = time.perf_counter() - start
    frames = len(video.frames)
    result["detect"] = {
        "frames": frames,
        "windows": len(detection.windows),
        "window": 10,
        "stride": 2,
        "step": 2,
        "vadx_ms_per_frame": 1000 * ours_seconds / frames,
        "naive_ms_per_frame": 1000 * naive_seconds / frames,
        "vadx_over_naive": ours_seconds / naive_seconds,
        "ideal_ratio_stride_over_window": 2 / 10,
    }
    print(json.dumps(result, indent=1))
    write_json(args.out / "train_detect-cpu.json", result, indent=2)


if __name__ == "__main__":
    main()
