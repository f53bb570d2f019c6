"""Cost of vadx's explanations vs one forward+backward, the per-frame loop, and peer libraries.

All in one run on one model and clip (DESIGN.md §7), ratios reported:

* ``core / forward_backward`` — saliency + Grad-CAM + the GRU-step gradient norm, all frames
  (one shared pass), over one forward and one backward to the input (target ≤ 1.2);
  ``core_with_occlusion`` adds feature-space frame occlusion;
* ``loop / core`` — the same maps by the per-frame loop (one forward + backward per frame, as
  Keras users write it) over ours (target ≥ 0.8·T);
* Grad-CAM alone through pytorch-grad-cam (``grad-cam``) and captum, set up as their users
  would for this model, over vadx's Grad-CAM alone and over its core set; plus how their maps
  differ from ours;
* peak memory (max RSS of a fresh process) of Integrated Gradients with few and many steps.

    python benchmarks/bench_explain.py --out benchmarks/results [--device cuda] [--repeats 3]

pytorch-grad-cam imports torchvision when its package is imported, and torchvision does not
import beside the CPU torch build here: a stub module stands in for the three torchvision names
it imports and never calls on this path. Install the peers with ``make bench``.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

from bench_crnn import median_seconds
from vadx import __version__
from vadx.borrowed import eval_mode
from vadx.explain import (
    GradCAM,
    GradientNorm,
    IntegratedGradients,
    Saliency,
    display,
    explain,
)
from vadx.explain.hooks import rnn_context
from vadx.explain.passes import run_pass
from vadx.files import write_json
from vadx.models import CRNN

VARIANTS = {
    "vgg19 (reference)": {},
    "vgg19 width 0.25": {"backbone_args": {"width": 0.25}, "rnn_hidden": 256},
}
CORE = {"methods": ("saliency", "gradcam"), "temporal": ("gradient_norm",)}


def import_pytorch_grad_cam():
    """``pytorch_grad_cam`` with a stub for the torchvision names it imports (module doc)."""
    try:
        import torchvision  # noqa: F401
    except Exception:

        def unused(*args, **kwargs):
            raise RuntimeError("torchvision stub: not available beside this torch build")

        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        stub.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        stub.ops = types.ModuleType("torchvision.ops")
        for name in ("Compose", "Normalize", "ToTensor"):
            setattr(stub.transforms, name, unused)
        stub.transforms.functional.resize = unused
        stub.ops.box_iou = unused
        sys.modules.update(
            {
                "torchvision": stub,
                "torchvision.transforms": stub.transforms,
                "torchvision.transforms.functional": stub.transforms.functional,
                "torchvision.ops": stub.ops,
            }
        )
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return pytorch_grad_cam, ClassifierOutputTarget


def engine_only(model: CRNN, clip: torch.Tensor, target: int) -> list:
    """The core methods' computation without building the Explanation (display maps, copies
    to host memory, the clip's sha256): what the result packaging costs, by difference."""
    methods = [Saliency(model), GradCAM(model), GradientNorm(model)]
    need = methods[0].need() | methods[1].need() | methods[2].need()
    with eval_mode(model):
        shared = run_pass(model, clip, target, need)
        return [method.compute(shared).raw for method in methods]


def logits_for_backward(model: CRNN, clip: torch.Tensor) -> torch.Tensor:
    """The forward a backward in eval mode needs on a GPU: cuDNN off for the RNN only."""
    maps = model.frame_maps(clip)
    with rnn_context(clip.device):
        return model.forward_maps(maps)


class FoldedFrames(torch.nn.Module):
    """The CRNN taking folded frames ``(B·T, 3, H, W)``: how a 2-D CAM library is fed clips."""

    def __init__(self, model: CRNN, steps: int) -> None:
        super().__init__()
        self.model, self.steps = model, steps

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model(frames.unflatten(0, (-1, self.steps)))


def loop_reference(model: CRNN, clip: torch.Tensor, layer: str, target: int):
    """Saliency + Grad-CAM of each frame with one whole forward and backward per frame."""
    module = model.get_layer(layer)
    cams, saliencies = [], []
    for t in range(clip.shape[1]):
        captured = []
        handle = module.register_forward_hook(lambda m, i, out, c=captured: c.append(out))
        try:
            x = clip.clone().requires_grad_(True)
            y = logits_for_backward(model, x)[:, target].sum()
        finally:
            handle.remove()
        grad_x, grad_a = torch.autograd.grad(y, [x, captured[0]])
        a = captured[0].unflatten(0, clip.shape[:2])[:, t]
        g = grad_a.unflatten(0, clip.shape[:2])[:, t]
        cams.append((g.mean((-2, -1), keepdim=True) * a).sum(1).relu())
        saliencies.append(grad_x[:, t].abs().amax(1))
    return torch.stack(cams, 1).detach(), torch.stack(saliencies, 1)


def measure(name: str, overrides: dict, device: torch.device, repeats: int) -> dict:
    torch.manual_seed(0)
    model = CRNN(**overrides).eval().to(device)
    steps = model.config.num_frames
    clip = torch.randn(1, steps, 3, *model.config.frame_size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    layer = model.default_layer
    with torch.no_grad():
        target = int(model(clip).argmax())

    def forward_backward():
        x = clip.clone().requires_grad_(True)
        return torch.autograd.grad(logits_for_backward(model, x)[:, target].sum(), x)

    seconds = {
        "forward_backward": median_seconds(forward_backward, repeats, sync),
        "core": median_seconds(lambda: explain(model, clip, target, **CORE), repeats, sync),
        "core_engine_only": median_seconds(lambda: engine_only(model, clip, target), repeats, sync),
        "core_with_occlusion": median_seconds(
            lambda: explain(
                model,
                clip,
                target,
                methods=CORE["methods"],
                temporal=("gradient_norm", "frame_occlusion"),
            ),
            repeats,
            sync,
        ),
        "gradcam": median_seconds(
            lambda: explain(model, clip, target, methods=("gradcam",), temporal=()), repeats, sync
        ),
        "loop": median_seconds(lambda: loop_reference(model, clip, layer, target), 1, sync),
    }
    ours = explain(model, clip, target, methods=("gradcam", "saliency"), temporal=())
    loop_cam, loop_sal = loop_reference(model, clip, layer, target)
    agreement = {
        "loop_gradcam_max_abs_diff": float(
            (loop_cam.cpu() - torch.from_numpy(np.array(ours["gradcam"].raw[0]))).abs().max()
        ),
        "loop_saliency_max_abs_diff": float(
            (loop_sal.cpu() - torch.from_numpy(np.array(ours["saliency"].raw[0]))).abs().max()
        ),
    }
    peers = measure_peers(model, clip, target, layer, ours, repeats, sync)
    seconds.update(peers.pop("seconds"))
    ratios = {
        "core / forward_backward": seconds["core"] / seconds["forward_backward"],
        "core_engine_only / forward_backward": seconds["core_engine_only"]
        / seconds["forward_backward"],
        "core_with_occlusion / forward_backward": seconds["core_with_occlusion"]
        / seconds["forward_backward"],
        "loop / core (speed-up)": seconds["loop"] / seconds["core"],
        "target speed-up 0.8·T": 0.8 * steps,
    }
    for peer in ("pytorch_grad_cam", "captum"):
        if peer in seconds:
            ratios[f"{peer} gradcam / vadx gradcam"] = seconds[peer] / seconds["gradcam"]
            ratios[f"{peer} gradcam / vadx core"] = seconds[peer] / seconds["core"]
    return {
        "model": name,
        "overrides": overrides,
        "clip": list(clip.shape),
        "layer": layer,
        "seconds": seconds,
        "ratios": ratios,
        "agreement": agreement,
        **peers,
    }


def measure_peers(model, clip, target, layer, ours, repeats, sync) -> dict:
    """Grad-CAM through pytorch-grad-cam and captum, and how their maps differ from ours.

    On a GPU both fail in eval mode ("cudnn RNN backward can only be called in training
    mode"); their users' way out is to turn cuDNN off for the whole model, as done here.
    """
    with torch.backends.cudnn.flags(enabled=clip.device.type != "cuda"):
        return _measure_peers(model, clip, target, layer, ours, repeats, sync)


def _measure_peers(model, clip, target, layer, ours, repeats, sync) -> dict:
    found: dict = {"seconds": {}, "differences": {}}
    module = model.get_layer(layer)
    size = clip.shape[-2:]
    try:
        pgc, ClassifierOutputTarget = import_pytorch_grad_cam()
        steps = clip.shape[1]
        # A 5-D clip is taken for a 3-D volume and crashes in cv2.resize; its users wrap the
        # model so that it takes the folded frames (B·T, 3, H, W), as below.
        wrapped = FoldedFrames(model, steps)
        cam = pgc.GradCAM(model=wrapped, target_layers=[module])
        folded = clip.flatten(0, 1)

        def run_pgc():
            return cam(input_tensor=folded, targets=[ClassifierOutputTarget(target)])

        found["seconds"]["pytorch_grad_cam"] = median_seconds(run_pgc, repeats, sync)
        theirs = run_pgc()  # (B·T, H, W): one map per folded frame, each min-max normalised
        frame_norm = display(torch.from_numpy(np.array(ours["gradcam"].raw)), "frame", size=size)
        found["differences"]["pytorch_grad_cam"] = {
            "5d_clip_input": "crashes (cv2.resize gets a 3-D size); wrapped to take folded frames",
            "output_shape": list(theirs.shape),
            "peak_of_every_frame": theirs.reshape(theirs.shape[0], -1).max(1).round(3).tolist(),
            "vadx_clip_normalised_peaks": ours["gradcam"]
            .display[0]
            .max((-2, -1))
            .round(3)
            .tolist(),
            "max_abs_diff_vs_vadx_frame_normalised": float(
                np.abs(theirs - frame_norm[0].numpy()).max()
            ),
        }
        two = torch.cat([clip, clip.flip(1)]).flatten(0, 1)
        batch_maps = cam(input_tensor=two, targets=[ClassifierOutputTarget(target)])
        per_video = batch_maps.reshape(2, steps, -1).max(-1)
        found["differences"]["pytorch_grad_cam"]["batch_of_2_one_target_frame_peaks"] = (
            per_video.round(3).tolist()
        )
        cam.activations_and_grads.release()
    except ImportError as err:
        found["differences"]["pytorch_grad_cam"] = f"not installed ({err}); run make bench"
    try:
        from captum.attr import LayerAttribution, LayerGradCam

        gradcam = LayerGradCam(model, module)

        def run_captum():
            maps = gradcam.attribute(clip, target=target, relu_attributions=True)
            return LayerAttribution.interpolate(maps, tuple(size), "bilinear")

        found["seconds"]["captum"] = median_seconds(run_captum, repeats, sync)
        raw = gradcam.attribute(clip, target=target, relu_attributions=True)  # (B·T, 1, h, w)
        ours_raw = torch.from_numpy(np.array(ours["gradcam"].raw)).to(raw.device)
        found["differences"]["captum"] = {
            "output_shape": list(raw.shape),
            "max_abs_diff_vs_vadx_raw": float((raw[:, 0] - ours_raw[0]).abs().max().detach()),
            "vadx_raw_peak": float(ours_raw.max()),
        }
    except ImportError as err:
        found["differences"]["captum"] = f"not installed ({err}); run make bench"
    return found


IG_PROBE = """
import resource, sys, torch
from vadx.explain import IntegratedGradients
from vadx.models import CRNN
torch.manual_seed(0)
model = CRNN(backbone_args={"width": 0.25}, rnn_hidden=256).eval()
clip = torch.randn(1, 20, 3, 112, 112)
IntegratedGradients(model, steps=int(sys.argv[1])).attribute(clip)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def integrated_gradients_memory() -> dict:
    """Max RSS (MiB) of fresh processes running IG with few and many steps."""
    peaks = {}
    for steps in (8, 64):
        run = subprocess.run(
            [sys.executable, "-c", IG_PROBE, str(steps)], capture_output=True, text=True, check=True
        )
        peaks[f"steps={steps}"] = round(int(run.stdout.split()[-1]) / 1024, 1)
    return {"peak_rss_mib": peaks, "batch_frames": 64}


def integrated_gradients_memory_cuda(device: torch.device) -> dict:
    """Peak GPU memory (MiB) of IG with few and many steps, in this process."""
    torch.manual_seed(0)
    model = CRNN(backbone_args={"width": 0.25}, rnn_hidden=256).eval().to(device)
    clip = torch.randn(1, 20, 3, 112, 112, device=device)
    peaks = {}
    for steps in (8, 64):
        torch.cuda.reset_peak_memory_stats(device)
        IntegratedGradients(model, steps=steps).attribute(clip)
        peaks[f"steps={steps}"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return {"peak_cuda_mib": peaks, "batch_frames": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=list(VARIANTS), default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    results = [
        measure(name, overrides, device, args.repeats)
        for name, overrides in VARIANTS.items()
        if args.only in (None, name)
    ]
    for result in results:
        print(f"\n{result['model']}  clip {result['clip']}  layer {result['layer']}")
        for key, value in result["seconds"].items():
            print(f"  {key:<24} {value * 1000:9.1f} ms")
        for key, value in result["ratios"].items():
            print(f"  {key:<42} {value:6.2f}")
    document = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "vadx": __version__,
        "results": results,
    }
    if device.type == "cpu":
        document["integrated_gradients_memory"] = integrated_gradients_memory()
        print("IG peak RSS:", document["integrated_gradients_memory"])
    else:
        document["integrated_gradients_memory"] = integrated_gradients_memory_cuda(device)
    suffix = "cpu" if device.type == "cpu" else "cuda"
    path = write_json(args.out / f"explain-{suffix}.json", document)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
