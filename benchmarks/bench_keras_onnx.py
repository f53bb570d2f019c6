"""The reference model in Keras 3, in vadx, and in ONNX Runtime, side by side in one run.

The reference is built in Keras 3 (torch backend, no TensorFlow) from its description —
TimeDistributed(VGG19 without top) → global average pooling → GRU 1024 → Dense 1024 / 512 / 128
with dropout 0.5 → softmax over 4 classes, 26,389,700 parameters — with random weights, saved as
``.keras``, imported with ``vadx import-keras``' code and exported with ``vadx export``'s. On one
clip of 20 × 112×112 frames it measures, as medians of alternating repeats (DESIGN.md §7):

* forward: Keras 3 vs vadx (no gradients either side);
* saliency of all frames: one gradient of the class score to the input through Keras' torch
  backend (what a GradientTape computes) vs vadx's ``explain(…, methods=("saliency",))``;
* ONNX Runtime vs PyTorch: the whole clip, and the per-frame CNN on the clip's 20 frames (what
  ``vadx detect`` and ``watch`` run per frame).

It also records the agreement: Keras vs vadx probabilities and saliency maps, ONNX Runtime vs
PyTorch probabilities. Writes ``keras-onnx-<device>.json``.

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
from vadx.export import export_onnx
from vadx.files import write_json
from vadx.keras import import_keras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Keras reference
from tests.keras_models import randomise, vgg19_gru


def paired_medians(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of two callables, run alternately (after one warm-up each) so that load
    from other processes falls on both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


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
        sessions = {name: ort.InferenceSession(str(graphs[name]), providers=cpu)
                    for name in ("clip", "frames")}  # fmt: skip
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

    def keras_forward():
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

    seconds = {}
    seconds["keras_forward"], seconds["vadx_forward"] = paired_medians(
        keras_forward, vadx_forward, args.repeats
    )
    seconds["keras_saliency"], seconds["vadx_saliency"] = paired_medians(
        lambda: keras_saliency(reference, x, target), vadx_saliency, args.repeats
    )
    seconds["onnxruntime_forward"], seconds["pytorch_forward"] = paired_medians(
        lambda: sessions["clip"].run(None, {"clip": clip.numpy()}), vadx_forward, args.repeats
    )
    seconds["onnxruntime_frames"], seconds["pytorch_frames"] = paired_medians(
        lambda: sessions["frames"].run(None, {"frames": frames.numpy()}), torch_frames, args.repeats
    )
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
        "ratios": {
            "keras_forward / vadx_forward": seconds["keras_forward"] / seconds["vadx_forward"],
            "keras_saliency / vadx_saliency": seconds["keras_saliency"] / seconds["vadx_saliency"],
            "pytorch_forward / onnxruntime_forward": seconds["pytorch_forward"]
            / seconds["onnxruntime_forward"],
            "pytorch_frames / onnxruntime_frames": seconds["pytorch_frames"]
            / seconds["onnxruntime_frames"],
        },
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
