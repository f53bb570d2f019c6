"""Per-frame cost of the CRNN's backbones, and the folded forward vs a per-frame loop.

Measured side by side in one run (DESIGN.md §7): absolute times on a 2-core machine are noisy,
ratios are what to compare. Writes ``crnn.json`` (and prints a table).

    python benchmarks/bench_crnn.py --out benchmarks/results [--device cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vadx import __version__
from vadx.files import write_json
from vadx.models import CRNN

VARIANTS = {
    "vgg19 (reference)": {},
    "vgg19 width 0.25": {"backbone_args": {"width": 0.25}, "rnn_hidden": 256},
    "efficientnet_lite0": {"backbone": "efficientnet_lite0"},
}


def median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, overrides: dict, device: torch.device, repeats: int) -> dict:
    model = CRNN(**overrides).eval().to(device)
    steps = model.config.num_frames
    clip = torch.randn(1, steps, 3, *model.config.frame_size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def folded():
        with torch.no_grad():
            return model(clip)

    def per_frame_loop():
        with torch.no_grad():
            maps = torch.stack([model.backbone(clip[:, t]) for t in range(steps)], 1)
            return model.forward_maps(maps)

    def features_only():
        with torch.no_grad():
            return model.forward_features(features)

    with torch.no_grad():
        features = model.frame_features(clip)
    folded_s = median_seconds(folded, repeats, sync)
    loop_s = median_seconds(per_frame_loop, repeats, sync)
    rnn_head_s = median_seconds(features_only, repeats, sync)
    return {
        "model": name,
        "parameters": model.parameter_counts()["all"]["total"],
        "clip_seconds": folded_s,
        "frames_per_second": steps / folded_s,
        "per_frame_loop_over_folded": loop_s / folded_s,
        "rnn_head_share_of_clip": rnn_head_s / folded_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = [measure(name, overrides, device, args.repeats) for name, overrides in VARIANTS.items()]
    result = {
        "benchmark": "crnn",
        "clip": "1 × 20 frames × 112×112",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "vadx": __version__,
        "rows": rows,
    }
    for row in rows:
        print(
            f"{row['model']:<20} {row['frames_per_second']:8.1f} frames/s   "
            f"loop/folded {row['per_frame_loop_over_folded']:.2f}   "
            f"GRU+head share {row['rnn_head_share_of_clip']:.3f}"
        )
    target = args.out / f"crnn-{result['device'].replace(' ', '_').lower()}.json"
    write_json(target, result, indent=2)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
