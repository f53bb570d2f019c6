"""ONNX export: the three graphs give PyTorch's probabilities in onnxruntime (≤ 1e-4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import IMPORTED_SHAPE, TINY, run_cli
from vadx.models import CRNN, save_model
from vadx.models.export import export_onnx, graph_paths

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
TOLERANCE = 1e-4

ARCHITECTURES = {
    "reference-shape": {},
    "imported-shape": IMPORTED_SHAPE,
    "bidirectional-lstm": {"rnn": "lstm", "rnn_bidirectional": True, "rnn_layers": 2},
}


def run(session, array: torch.Tensor) -> list[np.ndarray]:
    return session.run(None, {session.get_inputs()[0].name: array.numpy()})


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnx_graphs_match_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = CRNN(TINY, **ARCHITECTURES[name]).eval()
    with torch.no_grad():  # batch-norm statistics away from the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    paths = export_onnx(model, tmp_path / "model.onnx")
    assert not model.training  # left as it was
    assert paths == graph_paths(tmp_path / "model.onnx")
    sessions = {
        k: ort.InferenceSession(str(paths[k]), providers=["CPUExecutionProvider"])
        for k in ("clip", "frames", "sequence")
    }
    # another batch size than the export's, and another clip length where it is dynamic
    steps = TINY.num_frames if name == "imported-shape" else TINY.num_frames + 2
    clip = torch.randn(3, steps, 3, *TINY.frame_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(clip)
        expected = logits.softmax(-1).numpy()
        features = model.frame_features(clip)
    assert np.ptp(expected) > 0.02
    got_logits, got = run(sessions["clip"], clip)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(got_logits - logits.numpy()).max() <= TOLERANCE * 10
    (frame_features,) = run(sessions["frames"], clip.flatten(0, 1))
    assert np.abs(frame_features - features.flatten(0, 1).numpy()).max() <= TOLERANCE
    streamed = torch.from_numpy(frame_features).unflatten(0, (3, steps))
    assert np.abs(run(sessions["sequence"], streamed)[1] - expected).max() <= TOLERANCE
    metadata = {p.key: p.value for p in onnx.load(str(paths["frames"])).metadata_props}
    assert metadata["vadx.graph"] == "frames"
    assert json.loads(metadata["vadx.config"]) == model.config.to_dict()


def test_cli_export_writes_the_graphs_and_their_description(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_model(CRNN(TINY).eval(), tmp_path / "model")
    code, _, err = run_cli(
        ["export", str(checkpoint), "--onnx", str(tmp_path / "x" / "m.onnx")], capsys
    )
    assert code == 0, err
    names = sorted(path.name for path in (tmp_path / "x").iterdir())
    assert names == ["m.frames.onnx", "m.json", "m.onnx", "m.sequence.onnx"]
    description = json.loads((tmp_path / "x" / "m.json").read_text())
    assert description["model"]["preprocessing"]["frame_size"] == [32, 32]
    assert description["model_id"].startswith("sha256:") and description["clip_length"] == "dynamic"
    code, _, err = run_cli(["export", str(tmp_path / "nothing"), "--onnx", "m.onnx"], capsys)
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_detect_with_the_onnx_runtime_gives_the_same_scores(tmp_path, capsys):
    from tests.videos import numbered_frames
    from vadx.detect import detect
    from vadx.video import write_mp4

    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    video = write_mp4(tmp_path / "v.mp4", numbered_frames(24, 48, 64, moving=True), fps=10)
    ours = detect(model, video)
    onnx_run = detect(model, video, runtime="onnx")
    assert onnx_run.settings.runtime == "onnx" and ours.settings.runtime == "torch"
    assert np.abs(onnx_run.frame_probabilities - ours.frame_probabilities).max() <= TOLERANCE
    assert np.ptp(ours.frame_probabilities) > 0.001
    checkpoint = save_model(model, tmp_path / "model")
    code, _, err = run_cli(
        [
            "detect",
            str(checkpoint),
            str(video),
            "--out",
            str(tmp_path / "d"),
            "--no-annotate",
            "--runtime",
            "onnx",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "d" / "events.json").read_text())["settings"]["runtime"] == "onnx"
    code, _, err = run_cli(
        [
            "detect",
            str(checkpoint),
            str(video),
            "--out",
            str(tmp_path / "e"),
            "--runtime",
            "tensorrt",
        ],
        capsys,
    )
    assert code == 2 and "runtime must be torch or onnx, got 'tensorrt'" in err
