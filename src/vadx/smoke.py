"""The foundation smoke demo behind ``make demo`` until the full demo lands.

It builds a narrow CRNN of the reference shape, runs it on two synthetic clips, checks that the
folded (TimeDistributed) forward equals a per-frame loop, saves and reloads the model, checks
the logits are identical, and describes the model — all on this machine, offline, in seconds.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from vadx.models import CRNN, load_model, save_model
from vadx.summary import describe_model, render_description
from vadx.video import frames_to_clip


def synthetic_clip(num_frames: int, size: int, seed: int) -> np.ndarray:
    """A bright square crossing a textured grey background: uint8 ``(T, size, size, 3)``."""
    rng = np.random.default_rng(seed)
    frames = np.full((num_frames, size, size, 3), 96, np.uint8)
    frames += rng.integers(0, 24, size=frames.shape, dtype=np.uint8)
    side = size // 5
    for t in range(num_frames):
        x = int((size - side) * t / max(num_frames - 1, 1))
        frames[t, size // 3 : size // 3 + side, x : x + side] = (230, 60, 40)
    return frames


def run_smoke_demo(out: Path, console: Console, full_size: bool = True) -> dict[str, Any]:
    """Run the smoke demo, write ``out/summary.json`` and ``out/model``; return the summary."""
    console.rule("vadx foundation smoke demo")
    console.print(
        "This checks the model layer end to end. The full demo (synthetic dataset → training →"
        " detection → explanation) arrives with the training work.\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CRNN(backbone_args={"width": 0.25}, rnn_hidden=256).eval()
    frames = [
        synthetic_clip(model.config.num_frames, model.config.frame_size[0], s) for s in (0, 1)
    ]
    clip = torch.stack([frames_to_clip(f, model.config.mean, model.config.std) for f in frames])
    with torch.no_grad():
        logits = model(clip)
        per_frame = torch.stack([model.backbone(clip[:, t]) for t in range(clip.shape[1])], 1)
        loop_logits = model.forward_maps(per_frame)
    fold_error = (logits - loop_logits).abs().max().item()
    probabilities = logits.softmax(-1)
    console.print(f"narrow CRNN (VGG19 width 0.25) on 2 synthetic clips {tuple(clip.shape)}:")
    for i, row in enumerate(probabilities.tolist()):
        shown = ", ".join(f"{n} {p:.0%}" for n, p in zip(model.class_names, row, strict=True))
        console.print(f"  clip {i}: {shown}  (untrained: near-uniform is expected)")
    console.print(f"folded forward vs per-frame loop: max |Δlogit| = {fold_error:.2e}")

    checkpoint = save_model(model, out / "model", metadata={"created_by": "vadx demo (smoke)"})
    with torch.no_grad():
        reloaded_logits = load_model(checkpoint)(clip)
    identical = torch.equal(reloaded_logits, logits)
    console.print(f"saved {checkpoint}; reloaded logits identical: {identical}\n")
    render_description(describe_model(load_model(checkpoint)), console)

    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "probabilities": probabilities.tolist(),
        "fold_vs_loop_max_abs_diff": fold_error,
        "reload_identical": identical,
    }
    if full_size:
        summary["reference_model"] = _time_reference_model(console)
    path = out / "summary.json"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".summary.")
    with os.fdopen(fd, "w") as fh:
        json.dump(summary, fh, indent=2)
    os.replace(tmp, path)
    console.print(f"\nwrote {path}")
    if not (identical and fold_error < 1e-4):
        raise RuntimeError("smoke demo checks failed; see the lines above")
    return summary


def _time_reference_model(console: Console) -> dict[str, Any]:
    model = CRNN().eval()  # reference settings: VGG19 full width, GRU 1024, 20 × 112×112
    clip = torch.randn(1, model.config.num_frames, 3, *model.config.frame_size)
    with (
        console.status("timing the full-size reference CRNN on one 20-frame clip…"),
        torch.no_grad(),
    ):
        model(clip)  # warm-up
        start = time.perf_counter()
        model(clip)
        seconds = time.perf_counter() - start
    params = model.parameter_counts()["all"]["total"]
    console.print(
        f"reference CRNN ({params:,} parameters): one 20-frame clip in {seconds:.2f} s on "
        f"{torch.get_num_threads()} CPU threads ({model.config.num_frames / seconds:.1f} frames/s)"
    )
    return {"parameters": params, "seconds_per_clip": seconds}
