"""Load check of ``vadx serve`` on loopback: N concurrent clients each upload a small clip, start
detection and poll until it is done. Reports throughput, p50/p99 latency of each request kind
and of the whole upload → result round trip, and checks that no job was lost or duplicated
(every submitted job finished once, with its own video's result).

    python benchmarks/bench_serve.py --clients 8 --clips 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch

from vadx import __version__
from vadx.data.synth import render_long
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig
from vadx.serve import Server, serving
from vadx.video import write_mp4


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.array(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 1),
        "p99_ms": round(float(np.percentile(array, 99)), 1),
        "n": len(values),
    }


def client_session(base: str, clip: Path, clips: int, timings: dict[str, list[float]]) -> list:
    done = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for _ in range(clips):
            began = time.perf_counter()
            with open(clip, "rb") as fh:
                t = time.perf_counter()
                video = client.post("/api/videos", files={"file": ("clip.mp4", fh)}).json()
                timings["upload"].append(time.perf_counter() - t)
            t = time.perf_counter()
            job = client.post("/api/jobs", json={"kind": "detect", "video": video["id"]}).json()
            timings["submit"].append(time.perf_counter() - t)
            while job["state"] in ("queued", "running"):
                time.sleep(0.05)
                t = time.perf_counter()
                job = client.get(f"/api/jobs/{job['id']}").json()
                timings["poll"].append(time.perf_counter() - t)
            timings["round_trip"].append(time.perf_counter() - began)
            done.append((video["id"], job["id"], job["state"], job["params"]["video"]))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--clips", type=int, default=3, help="clips per client")
    parser.add_argument("--workers", type=int, default=2, help="the server's job workers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    config = CRNNConfig(
        backbone="efficientnet_lite0",
        num_frames=20,
        frame_size=(112, 112),
        rnn_hidden=256,
        head_hidden=(64,),
        class_names=("fight", "fire", "normal", "shooting"),
    )
    model = CRNN(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scene = render_long(2, [("normal", 20), ("fight", 30), ("normal", 20)], (120, 160))
        clip = write_mp4(root / "clip.mp4", scene.frames, fps=10)
        server = Server({"demo-architecture": model}, root / "data", workers=args.workers)
        timings: dict[str, list[float]] = {
            k: [] for k in ("upload", "submit", "poll", "round_trip")
        }
        with serving(server) as base:
            began = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                sessions = list(
                    pool.map(
                        lambda _: client_session(base, clip, args.clips, timings),
                        range(args.clients),
                    )
                )
            elapsed = time.perf_counter() - began
            jobs = httpx.get(f"{base}api/jobs").json()
        server.jobs.close()
        results = [r for s in sessions for r in s]
    submitted = [job_id for _, job_id, _, _ in results]
    finished = [j for j in jobs if j["state"] == "done"]
    report = {
        "vadx_version": __version__,
        "machine": platform.machine(),
        "clients": args.clients,
        "clips_per_client": args.clips,
        "server_workers": args.workers,
        "clip": {"frames": len(scene.frames), "size": [120, 160]},
        "seconds": round(elapsed, 2),
        "jobs_per_second": round(len(results) / elapsed, 3),
        "latency": {kind: percentiles(values) for kind, values in timings.items()},
        "submitted": len(submitted),
        "distinct_job_ids": len(set(submitted)),
        "jobs_on_server": len(jobs),
        "done": len(finished),
        "lost": len(set(submitted) - {j["id"] for j in finished}),
        "duplicated": len(jobs) - len({j["id"] for j in jobs}),
        "wrong_video": sum(1 for video, _, _, params_video in results if video != params_video),
    }
    for key in (
        "seconds",
        "jobs_per_second",
        "submitted",
        "done",
        "lost",
        "duplicated",
        "wrong_video",
    ):
        print(f"{key:>16}: {report[key]}")
    for kind, value in report["latency"].items():
        print(f"{kind:>16}: p50 {value['p50_ms']} ms, p99 {value['p99_ms']} ms ({value['n']})")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "serve-load.json", report)
    print(f"wrote {args.out / 'serve-load.json'}")


if __name__ == "__main__":
    main()
