"""ONNX export: ``vadx export MODEL --onnx OUT.onnx``.

Three graphs, so that a deployment outside Python can run the model whole or stream it as vadx
does (the CNN once per frame, the RNN and head per window):

* ``OUT.onnx`` — the whole CRNN: ``clip (B, T, 3, H, W)`` → ``logits``, ``probabilities (B, K)``;
* ``OUT.frames.onnx`` — the per-frame CNN and pooling: ``frames (N, 3, H, W)`` → ``features
  (N, F)``, what the stream engine caches;
* ``OUT.sequence.onnx`` — the RNN and head: ``features (B, T, F)`` → ``logits``,
  ``probabilities``.

Batch, frame and clip-length axes are dynamic (the clip length is fixed for the
``gru_reset_before`` RNN, whose steps are unrolled); the frame size is the model's. Inputs are
normalised as the model's ``mean``/``std`` say (RGB values in [0, 1]); each graph carries the
model's configuration (``vadx.config``, JSON) and id in its metadata, and ``OUT.json`` says the
same for people. Needs the ``onnx`` extra (``pip install 'vadx[onnx]'``) and runs with
onnxruntime.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vadx._version import __version__
from vadx.borrowed import eval_mode
from vadx.errors import VadxError
from vadx.files import write_json
from vadx.models.crnn import CRNN, fold_time, unfold_time

OPSET = 17
#: the frames graph takes any number of frames
FRAME_AXES = {"frames": {0: "frames"}, "features": {0: "frames"}}


class _Clip(nn.Module):
    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = unfold_time(self.model.backbone(fold_time(clip)), clip.shape[0], clip.shape[1])
        logits = self.model.forward_features(self.model.pool_maps(maps))
        return logits, logits.softmax(-1)


class _Frames(nn.Module):
    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.pool_maps(self.model.backbone(frames))


class _Sequence(nn.Module):
    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.head(self.model.rnn_state(features))
        return logits, logits.softmax(-1)


class OnnxFrames:
    """The per-frame CNN of ``model`` in ONNX Runtime (CPU): normalised frames
    ``(N, 3, H, W)`` → features ``(N, F)``, as ``model.pool_maps(model.backbone(frames))``.

    The graph is exported once, into a temporary directory, when this is made (seconds for
    VGG19). ONNX Runtime ran VGG19's frames 1.14–1.37× faster than PyTorch on 2 CPU cores
    (``benchmarks/results/keras-onnx-cpu.json``).
    """

    def __init__(self, model: CRNN) -> None:
        require_onnx()
        try:
            import onnxruntime
        except ImportError as err:
            raise VadxError("the onnx runtime needs onnxruntime: pip install 'vadx[onnx]'") from err
        with tempfile.TemporaryDirectory() as folder, eval_mode(model):
            path = Path(folder) / "frames.onnx"
            frames = torch.zeros(1, 3, *model.config.frame_size, device=model.device)
            _export(_Frames(model).eval(), frames, path, ["frames"], ["features"], FRAME_AXES)
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )

    def __call__(self, frames: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"frames": frames.detach().cpu().numpy()})[0]


def require_onnx() -> None:
    """Raise a :class:`VadxError` saying what to install when onnx is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError as err:
        raise VadxError(
            "ONNX export needs the onnx package: pip install 'vadx[onnx]' (onnx, onnxruntime)"
        ) from err


def graph_paths(out: str | os.PathLike[str]) -> dict[str, Path]:
    """Where :func:`export_onnx` writes: ``clip``, ``frames``, ``sequence`` graphs and ``json``."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix == ".onnx" else out
    return {
        "clip": stem.with_name(stem.name + ".onnx"),
        "frames": stem.with_name(stem.name + ".frames.onnx"),
        "sequence": stem.with_name(stem.name + ".sequence.onnx"),
        "json": stem.with_name(stem.name + ".json"),
    }


def export_onnx(model: CRNN, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the three graphs and the JSON description of ``model``; returns their paths."""
    require_onnx()
    paths = graph_paths(out)
    paths["clip"].parent.mkdir(parents=True, exist_ok=True)
    config = model.config
    steps, height, width = config.num_frames, *config.frame_size
    fixed_steps = config.rnn == "gru_reset_before"
    time_axis = {} if fixed_steps else {1: "frames"}
    device = model.device
    clip = torch.zeros(1, steps, 3, height, width, device=device)
    features = torch.zeros(1, steps, model.feature_size, device=device)
    outputs = ["logits", "probabilities"]
    per_clip = {name: {0: "batch"} for name in outputs}
    graphs = [
        ("clip", _Clip(model), clip, ["clip"], outputs, {"clip": {0: "batch", **time_axis}}),
        ("frames", _Frames(model), clip[0], ["frames"], ["features"], FRAME_AXES),
        (
            "sequence",
            _Sequence(model),
            features,
            ["features"],
            outputs,
            {"features": {0: "batch", **time_axis}},
        ),
    ]
    description = _description(model, fixed_steps)
    metadata = {
        "vadx.config": json.dumps(description.model),
        "vadx.model_id": description.model_id or "",
        "vadx.version": __version__,
    }
    with eval_mode(model):
        for name, module, example, inputs, names, axes in graphs:
            # an eval wrapper: the exporter puts the wrapper's mode back on the model afterwards
            _export(module.eval(), example, paths[name], inputs, names, {**per_clip, **axes})
            _add_metadata(paths[name], {**metadata, "vadx.graph": name})
    graph_files = {name: paths[name].name for name, *_ in graphs}
    write_json(paths["json"], {**asdict(description), "graphs": graph_files})
    return paths


def _export(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # tracing notes about shape checks and GRU batch sizes: the graphs are checked
        # against PyTorch with onnxruntime in the tests, for batches and lengths other than 1
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


@dataclass(frozen=True, slots=True)
class OnnxDescription:
    """The ONNX export described (``dataclasses.asdict`` is its JSON file, with the graphs'
    files beside): the format, vadx's version, the model's id and configuration, whether the
    clip length is fixed, and the input the graphs expect, in words."""

    format: str
    vadx_version: str
    model_id: str | None
    model: dict[str, Any]
    clip_length: str
    input: str


def _description(model: CRNN, fixed_steps: bool) -> OnnxDescription:
    config = model.config
    return OnnxDescription(
        format="vadx.onnx",
        vadx_version=__version__,
        model_id=model.model_id,
        model=config.to_dict(),
        clip_length="fixed" if fixed_steps else "dynamic",
        input=(
            f"RGB frames of {config.frame_size[0]}×{config.frame_size[1]} (fit: {config.fit}), "
            f"values in [0, 1], minus mean {list(config.mean or ())}, over std "
            f"{list(config.std or ())}; channels first"
        ),
    )


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(path))
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))
