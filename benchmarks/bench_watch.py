"""Live engine costs, each against its baseline in the same run (DESIGN.md §7).

1. Cost per input frame of the feature-cache engine (:class:`vadx.watch.StreamDetector`) vs
   recomputing the whole window (T frames through the CNN) every ``stride`` frames, and vs one
   CNN pass per frame. Target: engine / naive ≤ 1.5 / (T / S), S = stride ÷ step frames
   through the CNN per window.
2. The highest input rate each model sustains without dropping frames: ``vadx watch --pace``
   (decode + capture thread + engine, queue of 16) on the same video written at rising rates.
3. What the alert explanations cost the capture path: the same paced run (a camera's 25 fps,
   and half the demo model's sustained rate) with and without explaining every alert — how
   late the capture thread releases frames (its camera clock), the decision latency, drops.
4. One alert's explanation on one thread (as the explainer process runs it), the defaults
   (LayerCAM + frame Shapley) against the earlier ones (Grad-CAM + frame occlusion).

Models: the demo's (``demo-out/run/best`` when it exists; else the demo architecture
untrained) and the full VGG19 at 112 px (random weights: costs do not depend on them).

    python benchmarks/bench_watch.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vadx import __version__
from vadx.data.synth import render_long
from vadx.detect import DetectConfig, default_stride, detect
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig, load_model
from vadx.video import fit_frames, frames_to_clip, write_mp4
from vadx.watch import FrameInfo, StreamDetector, WatchConfig, watch

DEMO_MODEL = Path("demo-out/run/best")
SCENE = [
    ("normal", 40),
    ("fight", 50),
    ("normal", 60),
    ("fire", 40),
    ("normal", 60),
    ("shooting", 50),
    ("normal", 50),
]


def models(demo: Path) -> dict[str, CRNN]:
    if demo.exists():
        trained = load_model(demo)
    else:
        print(f"{demo} not found (run `make demo`): timing the demo architecture untrained")
        trained = CRNN(
            CRNNConfig(
                backbone="efficientnet_lite0",
                num_frames=20,
                frame_size=(112, 112),
                rnn_hidden=256,
                head_hidden=(64,),
                class_names=("fight", "fire", "normal", "shooting"),
            )
        )
    torch.manual_seed(0)
    vgg = CRNN(
        CRNNConfig(
            backbone="vgg19",
            num_frames=20,
            frame_size=(112, 112),
            rnn_hidden=256,
            head_hidden=(64,),
            class_names=("fight", "fire", "normal", "shooting"),
        )
    )
    return {"demo (EfficientNet-Lite0, 112 px)": trained.eval(), "VGG19, 112 px": vgg.eval()}


def engine_seconds(model: CRNN, frames: np.ndarray, config: DetectConfig) -> float:
    """Steady state: frames pushed ``8 × step`` at a time, so the CNN sees batches of 8 like
    the baselines; the end of the stream (its last window moved back) is not timed."""
    detector = StreamDetector(model, config)
    chunk = 8 * detector.plan.step
    began = time.perf_counter()
    for first in range(0, len(frames), chunk):
        part = frames[first : first + chunk]
        detector.push_many(
            list(part), [FrameInfo.now(first + i, (first + i) / 25) for i in range(len(part))]
        )
    return (time.perf_counter() - began) / len(frames)


def naive_seconds(model: CRNN, frames: np.ndarray, config: DetectConfig) -> float:
    """The whole window through the whole model, every stride frames (a Keras-style loop)."""
    plan = StreamDetector(model, config).plan
    c = model.config
    began = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(frames) - plan.span + 1, plan.stride):
            fitted, _, _ = fit_frames(frames[plan.indices(start)], c.frame_size, c.fit)
            model(frames_to_clip(fitted, c.mean, c.std)[None]).softmax(-1)
    return (time.perf_counter() - began) / len(frames)


def cnn_seconds(model: CRNN, frames: np.ndarray) -> float:
    """One CNN pass per frame (batches of 8): the floor of any per-frame engine."""
    c = model.config
    began = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(frames), 8):
            fitted, _, _ = fit_frames(frames[first : first + 8], c.frame_size, c.fit)
            model.frame_features(frames_to_clip(fitted, c.mean, c.std)[None])
    return (time.perf_counter() - began) / len(frames)


def costs(model: CRNN, frames: np.ndarray, step: int) -> dict:
    length = model.config.num_frames
    stride = default_stride((length - 1) * step + 1, step)
    config = DetectConfig(step=step, stride=stride)
    engine_seconds(model, frames[:60], config)  # warm-up
    runs = [
        (
            engine_seconds(model, frames, config),
            naive_seconds(model, frames, config),
            cnn_seconds(model, frames),
        )
        for _ in range(3)
    ]
    engine, naive, cnn = (min(r[k] for r in runs) for k in range(3))
    per_window = stride / step  # frames through the CNN per window, engine
    return {
        "T": length,
        "step": step,
        "stride": stride,
        "engine_ms_per_frame": round(engine * 1000, 3),
        "naive_ms_per_frame": round(naive * 1000, 3),
        "one_cnn_pass_ms_per_frame": round(cnn * 1000, 3),
        "engine_over_naive": round(engine / naive, 4),
        "target_engine_over_naive": round(1.5 / (length / per_window), 4),
        "engine_over_one_cnn_pass": round(engine / cnn, 3),
        "engine_fps": round(1 / engine, 1),
    }


def paced_run(model, path, out, config, explain=False, queue=16) -> dict:
    settings = WatchConfig(
        detect=config, pace=True, queue_size=queue, explain=explain, metrics_every=3600
    )
    summary = watch(model, str(path), out, settings)
    m = summary.metrics.to_json()  # as metrics.json holds them
    return {
        "dropped": m["frames_dropped"],
        "processed": m["frames_processed"],
        "latency_ms": m["latency_ms"],
        "capture_late_ms": m["capture_late_ms"],
        "events": len(summary.events),
        "explanations": m.get("explanations"),
    }


def sustained(model, frames, root: Path, config, start_fps: float, seconds: float) -> dict:
    """Raise the input rate by 15 % until frames drop; the last rate without drops wins."""
    trials, rate, best = [], max(1.0, start_fps), None
    for _ in range(12):
        count = min(len(frames), int(rate * seconds))
        path = write_mp4(root / f"rate-{rate:.1f}.mp4", frames[:count], fps=rate)
        result = paced_run(model, path, root / f"w-{rate:.1f}", config)
        trials.append({"fps": round(rate, 1), **result})
        print(
            f"    {rate:6.1f} fps: dropped {result['dropped']}, latency p50 "
            f"{result['latency_ms']['p50']} ms"
        )
        if result["dropped"]:
            break
        best, rate = rate, rate * 1.15
    return {"sustained_fps": None if best is None else round(best, 1), "trials": trials}


def explanation_seconds(model: CRNN, frames: np.ndarray, repeats: int = 5) -> dict:
    """Median seconds of one alert explanation (a window of the model's T frames, one torch
    thread), with the alert defaults and with Grad-CAM + frame occlusion."""
    from vadx.explain import explain
    from vadx.watch.alerts import ALERT_SETTINGS

    config = model.config
    fight = frames[60 : 60 + config.num_frames]
    window = fit_frames(fight, config.frame_size, config.fit)[0]
    clip = frames_to_clip(window, config.mean, config.std)[None]
    settings = {
        "defaults": (ALERT_SETTINGS.methods, ALERT_SETTINGS.temporal),
        "gradcam+frame_occlusion": (("gradcam",), ("frame_occlusion",)),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = {}
        for label, (methods, temporal) in settings.items():
            explain(model, clip, "anomaly", methods=methods, temporal=temporal)  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                explain(model, clip, "anomaly", methods=methods, temporal=temporal)
                times.append(time.perf_counter() - started)
            seconds[label] = round(float(np.median(times)), 4)
    finally:
        torch.set_num_threads(threads)
    seconds["ratio"] = round(seconds["defaults"] / seconds["gradcam+frame_occlusion"], 2)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--demo-model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each paced trial")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    video = render_long(7, SCENE, (240, 320))
    frames = video.frames
    results: dict = {
        "vadx_version": __version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "frames": len(frames),
        "frame_size": list(frames.shape[1:3]),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, model in models(args.demo_model).items():
            print(name)
            entry: dict = {"costs": [costs(model, frames[:160], step) for step in (1, 2)]}
            for c in entry["costs"]:
                print(
                    f"  step {c['step']}: engine/naive {c['engine_over_naive']} (target ≤ "
                    f"{c['target_engine_over_naive']}), engine/one CNN pass "
                    f"{c['engine_over_one_cnn_pass']}, {c['engine_fps']} fps"
                )
            config = DetectConfig(step=2)
            fps = entry["costs"][1]["engine_fps"]
            entry["paced"] = sustained(
                model, frames, root / name[:4], config, 0.5 * fps, args.seconds
            )
            results["models"][name] = entry
        name = next(iter(results["models"]))
        model = next(iter(models(args.demo_model).values()))
        best = results["models"][name]["paced"]["sustained_fps"] or 50
        results["alert_explanation_seconds"] = explanation_seconds(model, frames)
        print(f"one alert explanation: {results['alert_explanation_seconds']}")
        results["alert_explanations"] = {}
        for rate in (25.0, round(0.5 * best, 1)):
            repeats = max(1, round(rate / 25))  # at least 14 s of video at any rate
            path = write_mp4(
                root / f"alerts-{rate}.mp4", np.concatenate([frames] * repeats), fps=rate
            )
            config = DetectConfig(step=2)
            found = detect(model, path, config)
            if len(found.events) < 2:  # an untrained model: thresholds that give events
                score = np.unique(found.smoothed_score)
                config = replace(
                    config, on=float(np.quantile(score, 0.7)), off=float(np.quantile(score, 0.5))
                )
            print(f"alert explanations at {rate:.1f} fps")
            runs = {
                label: paced_run(model, path, root / f"{label}-{rate}", config, flag, 64)
                for label, flag in (("without", False), ("with", True))
            }
            for label, run in runs.items():
                print(
                    f"  {label:>7} explanations: capture late {run['capture_late_ms']} ms, "
                    f"decision latency {run['latency_ms']} ms, dropped {run['dropped']}, "
                    f"{run['events']} events, explanations {run['explanations']}"
                )
            results["alert_explanations"][f"{rate} fps"] = runs
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "watch-cpu.json", results)
    print(f"wrote {args.out / 'watch-cpu.json'}")


if __name__ == "__main__":
    main()
