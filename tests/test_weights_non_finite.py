"""Models (their weights, their outputs) and numbers that are NaN or infinite: refused where
they enter, never written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import TINY, TINY_TRAIN_ARGS, run_cli, tiny_checkpoint
from tests.videos import make_video, numbered_frames
from vadx.data.synth import SynthConfig, generate
from vadx.errors import CheckpointError, ConfigError
from vadx.files import write_json
from vadx.models import CRNN, CRNNConfig, load_model, save_model
from vadx.models.weights import file_sha256
from vadx.train.config import TrainConfig


def _poison(path, name: str, value: float) -> None:
    """Put ``value`` into one element of tensor ``name`` of the checkpoint at ``path``, its
    recorded sha256 updated (a checkpoint that is consistent, only its numbers are wrong)."""
    weights = path / "model.safetensors"
    state = load_file(str(weights))
    state[name].view(-1)[0] = value
    save_file(state, str(weights))
    document = json.loads((path / "config.json").read_text())
    document["weights"]["sha256"] = file_sha256(weights)
    (path / "config.json").write_text(json.dumps(document))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused_on_loading(tmp_path, capsys, value):
    path = tiny_checkpoint(tmp_path / "m")
    _poison(path, "head.0.bias", value)
    with pytest.raises(CheckpointError, match=r"NaN or infinite weights \(head.0.bias\)"):
        load_model(path)
    video = make_video(tmp_path / "v.mp4", numbered_frames(12))
    for argv in (
        ["detect", str(path), str(video), "--out", str(tmp_path / "d")],
        ["evaluate", str(path), str(tmp_path), "--out", str(tmp_path / "e")],
        ["info", str(path), "--json"],
    ):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and err.startswith("error: ") and "NaN or infinite weights" in err, err
        assert err.count("\n") == 1


def test_no_model_with_non_finite_weights_is_saved(tmp_path):
    model = CRNN(TINY)
    with torch.no_grad():
        model.head[0].weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="refusing to save a model with NaN"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_model_whose_outputs_overflow_is_refused_by_detect(tmp_path, capsys):
    torch.manual_seed(0)
    model = CRNN(TINY)
    first = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():  # finite weights whose sums overflow float32
        first.weight.fill_(3e38)
    path = save_model(model, tmp_path / "m")
    video = make_video(tmp_path / "v.mp4", numbered_frames(12, moving=True))
    code, _, err = run_cli(["detect", str(path), str(video), "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "the model produces non-finite outputs (first in the window" in err
    assert "in the CNN's features" in err and not (tmp_path / "d").exists()


def test_json_never_holds_nan(tmp_path):
    path = write_json(
        tmp_path / "x.json",
        {"a": float("nan"), "b": [1.5, float("-inf")], "c": np.float32("nan"), "d": np.int64(3)},
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": None, "d": 3}


def test_non_finite_settings_are_refused():
    with pytest.raises(ConfigError, match="lr must be a positive finite number"):
        TrainConfig(lr=float("inf"))
    with pytest.raises(ConfigError, match="momentum and weight_decay must be finite"):
        TrainConfig(momentum=float("nan"))
    with pytest.raises(ConfigError, match="std must be at least 0.001"):
        CRNNConfig(std=(1e-30, 0.2, 0.2))


def test_training_that_diverges_stops_with_one_line_and_saves_nothing_of_it(tmp_path, capsys):
    data = tmp_path / "data"
    generate(data, SynthConfig(clips=(3, 2, 0), num_frames=8, size=(48, 48), seed=5))
    run = ["train", str(data), *TINY_TRAIN_ARGS, "--epochs", "2", "--out", str(tmp_path / "r")]
    code, _, err = run_cli([*run, "--lr", "inf"], capsys)
    assert code == 2 and "'--lr': must be a finite number from 1e-12 to 1,000" in err
    code, _, err = run_cli([*run, "--lr", "1000"], capsys)
    assert code == 2 and err.startswith("error: ") and "training diverged in epoch 0" in err, err
    assert "Lower --lr (now 1000)" in err
    assert not (tmp_path / "r" / "best").exists()
