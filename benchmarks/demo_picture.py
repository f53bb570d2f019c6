"""Compose ``docs/images/demo-detection.png`` from a ``vadx demo`` run: four annotated frames
(a normal one and each event at its peak) above the detection's ``scores.png``.

    python benchmarks/demo_picture.py demo-out docs/images/demo-detection.png
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from vadx.video.decode import VideoReader
from vadx.video.encode import write_png


def main(run: Path, out: Path) -> None:
    events = json.loads((run / "detection" / "events.json").read_text())["events"]
    with open(run / "detection" / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    score = np.array([float(r["smoothed"]) for r in rows])
    frames = [int(score.argmin())] + [
        e["start_frame"] + int(score[e["start_frame"] : e["end_frame"] + 1].argmax())
        for e in events[:3]
    ]
    with VideoReader(run / "detection" / "annotated.mp4") as video:
        tiles = video.read(frames).data
    strip = np.concatenate(
        [cv2.resize(t, (250, 250), interpolation=cv2.INTER_NEAREST) for t in tiles], axis=1
    )
    plot = cv2.cvtColor(cv2.imread(str(run / "detection" / "scores.png")), cv2.COLOR_BGR2RGB)
    plot = cv2.resize(
        plot,
        (strip.shape[1], round(plot.shape[0] * strip.shape[1] / plot.shape[1])),
        interpolation=cv2.INTER_AREA,
    )
    write_png(out, np.concatenate([strip, plot]))
    print(f"wrote {out} (frames {frames})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
