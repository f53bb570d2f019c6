"""What one engine for many cameras buys (issue 30), against its baselines in the same run
(DESIGN.md §7): N cameras reading a recorded street as fast as they can (files, not paced),
through

* **one hub**: one :class:`~vadx.console.engine.CameraHub` with the N cameras, one copy of the
  model, the CNN batched across cameras (what ``vadx serve --cameras`` runs);
* **one hub per camera, at once**: N hubs in N threads, each with its own copy of the model,
  as N ``vadx watch`` processes would run (the copies in one process: their memory is counted,
  not duplicated by the OS);
* **one hub per camera, in turn**: the N cameras one after the other, each alone with the
  machine (the best a camera gets; the sum of their times).

Each run is timed from start to the last event, decoding included; the events of every
camera are checked equal across the three.

Then what a site sees: N cameras at 25 fps each (the file looped and paced like a camera) for
``--seconds``, through one hub or one hub per camera at once: the frames analysed per second
and the share dropped, per camera, for N = 2, 4, 6, 8.

The model is the demo's (``demo-out/run/best``; else the demo architecture untrained).

    python benchmarks/bench_console.py --out benchmarks/results [--cameras 4]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import threading
import time
from pathlib import Path

import torch

from vadx import __version__
from vadx.console.cameras import CameraConfig
from vadx.console.engine import CameraHub
from vadx.data.synth import render_long
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig, load_model
from vadx.video import write_mp4

DEMO_MODEL = Path("demo-out/run/best")
SCENE = [("normal", 40), ("fight", 50), ("normal", 40), ("fire", 40), ("normal", 30)]


def demo_model(path: Path) -> CRNN:
    if path.exists():
        return load_model(path).eval()
    print(f"{path} not found (run `make demo`): timing the demo architecture untrained")
    config = CRNNConfig(
        backbone="efficientnet_lite0",
        num_frames=20,
        frame_size=(112, 112),
        rnn_hidden=256,
        head_hidden=(64,),
        class_names=("fight", "fire", "normal", "shooting"),
    )
    return CRNN(config).eval()


def run(hubs: list[CameraHub], together: bool) -> float:
    """Seconds to analyse every camera of ``hubs`` to its end (the hubs in threads, or in
    turn)."""
    began = time.perf_counter()
    if together:
        threads = [threading.Thread(target=hub.run_to_end) for hub in hubs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for hub in hubs:
            hub.run_to_end()
    return time.perf_counter() - began


def cameras(video: Path, count: int) -> list[CameraConfig]:
    return [
        CameraConfig(name=f"cam{k}", source=str(video), model="demo", pace=False, domain="off")
        for k in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each sustained run")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model = demo_model(args.model)
    size = max(model.config.frame_size)
    with tempfile.TemporaryDirectory() as tmp:
        frames = render_long(11, SCENE, (size, size)).frames
        video = write_mp4(Path(tmp) / "street.mp4", frames, fps=25)
        results = {}
        events = {}
        for name, together, shared in (
            ("one hub", True, True),
            ("one hub per camera, at once", True, False),
            ("one hub per camera, in turn", False, False),
        ):
            found: dict[str, list] = {}

            def keep(camera, alert, found=found):
                if alert.kind == "ended":
                    found.setdefault(camera, []).append(
                        (alert.event.start_frame, alert.event.end_frame, alert.event.class_name)
                    )

            if shared:
                hubs = [
                    CameraHub(cameras(video, args.cameras), load=lambda _: model, on_alert=keep)
                ]
            else:
                hubs = [
                    CameraHub([camera], load=lambda _: copy.deepcopy(model), on_alert=keep)
                    for camera in cameras(video, args.cameras)
                ]
            seconds = run(hubs, together)
            batches = [b for hub in hubs for b in hub.cnn_batches]
            copies = len({id(m) for hub in hubs for m in hub.models.values()})
            for hub in hubs:
                hub.close()
            results[name] = {
                "seconds": round(seconds, 2),
                "frames_per_second": round(args.cameras * len(frames) / seconds, 1),
                "model_copies": copies,
                "model_megabytes": round(
                    copies * sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6,
                    1,
                ),
                "cnn_calls": len(batches),
                "mean_cnn_batch": round(sum(batches) / max(1, len(batches)), 1),
            }
            events[name] = found
            print(name, results[name], flush=True)
        sustained = {}
        for count in (2, 4, 6, 8):
            live = [
                c.model_copy(update={"pace": True, "loop": True}) for c in cameras(video, count)
            ]
            for name, shared in (("one hub", True), ("one hub per camera", False)):
                if shared:
                    hubs = [CameraHub(live, load=lambda _: model)]
                else:
                    hubs = [CameraHub([c], load=lambda _: copy.deepcopy(model)) for c in live]
                for hub in hubs:
                    hub.start()
                time.sleep(args.seconds)
                statuses = [s for hub in hubs for s in hub.status()]
                for hub in hubs:
                    hub.close()
                frames_in = [s.frames + s.dropped for s in statuses]
                sustained.setdefault(str(count), {})[name] = {
                    "analysed_fps_per_camera": round(sum(s.fps for s in statuses) / count, 1),
                    "dropped_share": round(
                        sum(s.dropped for s in statuses) / max(1, sum(frames_in)), 3
                    ),
                }
            print(count, sustained[str(count)], flush=True)
    first = events["one hub"]
    same = all(events[name] == first for name in events)
    hub = results["one hub"]["seconds"]
    result = {
        "vadx": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": str(args.model) if args.model.exists() else "demo architecture, untrained",
        "cameras": args.cameras,
        "frames_per_camera": len(frames),
        "runs": results,
        "same_events_in_every_run": same,
        "events_per_camera": {k: len(v) for k, v in first.items()},
        "ratio_hub_to_threads": round(hub / results["one hub per camera, at once"]["seconds"], 3),
        "ratio_hub_to_in_turn": round(hub / results["one hub per camera, in turn"]["seconds"], 3),
        "sustained_seconds": args.seconds,
        "sustained_at_25_fps": sustained,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_json(args.out / "console-cameras.json", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
