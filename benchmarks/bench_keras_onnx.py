"""The reference model in Keras 3, in vadx, and in ONNX Runtime, side by side in one run.

The reference is built in Keras 3 (torch backend, no TensorFlow) from its description —
TimeDistributed(VGG19 without top) → global average pooling → GRU 1024 → Dense 1024 / 512 / 128
with dropout 0.5 → softmax over 4 classes, 26,389,700 parameters — with random weights, saved as
``.keras``, imported with ``vadx import-keras``' code and exported with ``vadx export``'s. On one
clip of 20 × 112×112 frames it measures, side by side (DESIGN.md §7):

* forward: Keras 3 (``predict_on_batch``, and a call under ``torch.no_grad``) vs vadx;
* saliency of all frames: one gradient of the class score to the input through Keras' torch
  backend (what a GradientTape computes) vs vadx's ``explain(…, methods=("saliency",))``;
* ONNX Runtime vs PyTorch: the whole clip, and the per-frame CNN on the clip's 20 frames (what
  ``vadx detect`` and ``watch`` run per frame).

Each pair runs alternately and its ratio is the median of per-pair ratios, since other
processes load these 2 cores (the load average is recorded). It also records the agreement:
Keras vs vadx probabilities and saliency maps, ONNX Runtime vs PyTorch probabilities. Writes
``keras-onnx-cpu.json``.

    python benchmarks/bench_keras_onnx.py --out benchmarks/results [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import onnxruntime as ort
import torch

from vadx import __version__
from vadx.explain import explain
from vadx.files import write_json
from vadx.keras import import_keras
from vadx.models.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Keras reference
from tests.keras_models import randomise, vgg19_gru


def paired(first: Callable[[], object], second: Callable[[], object], repeats: int) -> dict:
    """Median seconds of two callables run alternately (after one warm-up each), and the median
    of the per-pair ratios first / second: load from other processes falls on both alike."""
    first(), second()
    pairs = []
    for _ in range(repeats):
        pair = []
        for fn in (first, second):
            start = time.perf_counter()
            fn()
            pair.append(time.perf_counter() - start)
        pairs.append(pair)
    return {
        "first": statistics.median(a for a, _ in pairs),
        "second": statistics.median(b for _, b in pairs),
        "ratio": statistics.median(a / b for a, b in pairs),
    }


def keras_saliency(model, x: torch.Tensor, target: int) -> torch.Tensor:
    """``(T, H, W)``: |d p(target) / d input| (largest over colours), through Keras' backend."""
    x = x.clone().requires_grad_(True)
    probabilities = model(x, training=False)
    (grad,) = torch.autograd.grad(probabilities[0, target], x)
    return grad.abs().amax(-1)[0]


def vadx_probability_saliency(model, clip: torch.Tensor, target: int) -> torch.Tensor:
    """The same scalar as :func:`keras_saliency` (a probability), on vadx's model."""
    clip = clip.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(clip).softmax(-1)[0, target], clip)
    return grad.abs().amax(2)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    reference = vgg19_gru(keras)
    randomise(reference, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        reference.save(Path(tmp) / "reference.keras")
        start = time.perf_counter()
        imported = import_keras(Path(tmp) / "reference.keras")
        import_seconds = time.perf_counter() - start
        model = imported.model
        graphs = export_onnx(model, Path(tmp) / "reference.onnx")
        cpu = ["CPUExecutionProvider"]
        sessions = {
            name: ort.InferenceSession(str(graphs[name]), providers=cpu)
            for name in ("clip", "frames")
        }
    # a clip as Keras' VGG preprocessing gives it (BGR, mean-subtracted 0–255), and vadx's view
    # of the same pixels (RGB): the model folds the channel swap into its first convolution
    x = torch.from_numpy(
        np.random.default_rng(1).normal(0, 60, (1, 20, 112, 112, 3)).astype("float32")
    )
    clip = x.flip(-1).permute(0, 1, 4, 2, 3).contiguous()
    frames = clip[0]
    with torch.no_grad():
        keras_p = reference(x, training=False).numpy()
        vadx_logits = model(clip)
    vadx_p = vadx_logits.softmax(-1).numpy()
    target = int(vadx_p.argmax())
    onnx_p = sessions["clip"].run(None, {"clip": clip.numpy()})[1]
    saliency_keras = keras_saliency(reference, x, target)
    saliency_vadx = vadx_probability_saliency(model, clip, target)

    def keras_predict():
        return reference.predict_on_batch(x.numpy())

    def keras_call():
        with torch.no_grad():
            return reference(x, training=False)

    def vadx_forward():
        with torch.no_grad():
            return model(clip)

    def vadx_saliency():
        return explain(model, clip, target, methods=("saliency",), temporal=())

    def torch_frames():
        with torch.no_grad():
            return model.pool_maps(model.backbone(frames))

    load_before = os.getloadavg()
    runs = {
        "keras_predict / vadx_forward": paired(keras_predict, vadx_forward, args.repeats),
        "keras_call / vadx_forward": paired(keras_call, vadx_forward, args.repeats),
        "keras_saliency / vadx_saliency": paired(
            lambda: keras_saliency(reference, x, target), vadx_saliency, args.repeats
        ),
        "pytorch_forward / onnxruntime_forward": paired(
            vadx_forward, lambda: sessions["clip"].run(None, {"clip": clip.numpy()}), args.repeats
        ),
        "pytorch_frames / onnxruntime_frames": paired(
            torch_frames,
            lambda: sessions["frames"].run(None, {"frames": frames.numpy()}),
            args.repeats,
        ),
    }
    seconds = {}
    for name, run in runs.items():
        first, second = name.split(" / ")
        seconds[f"{first} (with {second})"] = run["first"]
        seconds[f"{second} (with {first})"] = run["second"]
    result = {
        "benchmark": "keras_onnx",
        "clip": "1 × 20 frames × 112×112",
        "model": "the reference built in Keras 3 (random weights), imported into vadx",
        "parameters": {
            "keras": int(reference.count_params()),
            "vadx": model.parameter_counts()["all"]["total"],
        },
        "import_seconds": import_seconds,
        "seconds": seconds,
        # medians of the per-pair ratios (> 1: the second is faster)
        "ratios": {name: run["ratio"] for name, run in runs.items()},
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "agreement": {
            "keras_vs_vadx_probability_max_abs_diff": float(np.abs(keras_p - vadx_p).max()),
            "keras_vs_vadx_saliency_max_abs_diff_over_max": float(
                (saliency_keras - saliency_vadx).abs().max() / saliency_keras.abs().max()
            ),
            "onnxruntime_vs_pytorch_probability_max_abs_diff": float(np.abs(onnx_p - vadx_p).max()),
            "probabilities": vadx_p[0].tolist(),
        },
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "keras": keras.__version__,
        "onnxruntime": ort.__version__,
        "vadx": __version__,
    }
    for name, ratio in result["ratios"].items():
        print(f"{name:<40} {ratio:6.2f}")
    for name, value in result["agreement"].items():
        if name != "probabilities":
            print(f"{name:<50} {value:.2e}")
    target_file = args.out / "keras-onnx-cpu.json"
    write_json(target_file, result, indent=2)
    print(f"wrote {target_file}")


if __name__ == "__main__":
    main()
