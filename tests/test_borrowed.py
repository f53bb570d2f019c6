"""Every public entry point that runs a model in eval mode gives the caller's model back as it
came in: each module's own train/eval flag, not merely the top one's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import TINY
from vadx.borrowed import eval_mode, modes_kept, seeded
from vadx.data import VideoDataset, folder_samples
from vadx.data.synth import SynthConfig, generate
from vadx.detect import detect
from vadx.detect.domain import calibrate, check_clip
from vadx.explain import explain
from vadx.models import CRNN
from vadx.quality import cascading_randomisation, xai_eval
from vadx.train import TrainConfig, train
from vadx.train.evaluate import predict
from vadx.video import VideoReader
from vadx.watch import FrameInfo, StreamDetector

CLASSES = ("fight", "normal")
#: the first backbone units frozen: in eval mode even while the model trains
CONFIG = TINY.replace(class_names=CLASSES, freeze=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("borrowed")
    generate(root, SynthConfig(clips=(1, 1, 1), num_frames=12, size=(48, 48), classes=CLASSES))
    return root


def split(model: CRNN, data: Path, name: str) -> VideoDataset:
    return VideoDataset.for_model(model.config, *folder_samples(data, CLASSES, name))


def training_with_frozen_units() -> CRNN:
    torch.manual_seed(0)
    return CRNN(CONFIG).train()


def evaluating_with_a_training_head() -> CRNN:
    torch.manual_seed(0)
    model = CRNN(CONFIG).eval()
    model.head.train()
    return model


def flags(model: nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def run_detect(model: CRNN, data: Path, out: Path) -> None:
    detect(model, next((data / "test" / "fight").glob("*.mp4")))


def run_watch(model: CRNN, data: Path, out: Path) -> None:
    with VideoReader(next((data / "test" / "fight").glob("*.mp4"))) as video:
        frames = video.read_range().data
    detector = StreamDetector(model)
    detector.push_many(list(frames), [FrameInfo.now(t, t / 10) for t in range(len(frames))])
    detector.end_segment()
    assert detector.windows_decided > 0


def run_evaluate(model: CRNN, data: Path, out: Path) -> None:
    predict(model, split(model, data, "test"), workers=0)


def run_explain(model: CRNN, data: Path, out: Path) -> None:
    explain(model, split(model, data, "test")[0].clip[None], methods=["gradcam"])


def run_xai_eval(model: CRNN, data: Path, out: Path) -> None:
    xai_eval(
        model,
        data,
        out,
        methods=["gradcam"],
        temporal=["frame_occlusion"],
        faithfulness_clips=1,
        sanity_clips=1,
        steps=2,
    )


def run_training(model: CRNN, data: Path, out: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=2, workers=0)
    train(model, split(model, data, "train"), split(model, data, "val"), out, config)


def run_domain_check(model: CRNN, data: Path, out: Path) -> None:
    model.domain = calibrate(model, split(model, data, "train"), split(model, data, "val"))
    assert check_clip(model, split(model, data, "test")[0].clip[None])["checked"]


ENTRY_POINTS: dict[str, Callable[[CRNN, Path, Path], None]] = {
    "detect": run_detect,
    "watch engine": run_watch,
    "evaluate": run_evaluate,
    "explain": run_explain,
    "xai-eval": run_xai_eval,
    "training": run_training,
    "domain check": run_domain_check,
}


@pytest.mark.parametrize(
    "make_model", [training_with_frozen_units, evaluating_with_a_training_head]
)
@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_the_callers_model_comes_back_in_the_modes_it_went_in(
    entry_point, make_model, data, tmp_path
):
    model = make_model()
    before = flags(model)
    assert set(before.values()) == {True, False}  # a mix: each module's own flag must survive
    ENTRY_POINTS[entry_point](model, data, tmp_path / "out")
    assert flags(model) == before


def test_onnx_export_gives_the_modes_back(tmp_path):
    pytest.importorskip("onnx")
    from vadx.models.export import OnnxFrames, export_onnx

    model = training_with_frozen_units()
    before = flags(model)
    export_onnx(model, tmp_path / "model.onnx")
    OnnxFrames(model)
    assert flags(model) == before


def test_eval_mode_switches_every_module_off_and_restores_each_flag_after_an_error():
    model = evaluating_with_a_training_head()
    before = flags(model)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        assert not any(flags(model).values())
        raise RuntimeError("boom")
    assert flags(model) == before


def test_modes_kept_undoes_what_the_block_switched():
    model = training_with_frozen_units()
    before = flags(model)
    with modes_kept(model):
        model.eval()
        model.head.train()
    assert flags(model) == before


def test_seeded_draws_from_the_seed_and_leaves_the_global_stream_where_it_was():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    with seeded(1):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(1)
    assert torch.equal(inside, torch.rand(3))


def test_cascading_randomisation_leaves_the_global_random_stream_alone(tiny_model, tiny_clip):
    clip = tiny_clip[:1]
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = cascading_randomisation(tiny_model, clip, ["gradcam"], target=0, seed=3)
    assert torch.equal(torch.rand(3), expected)
    again = cascading_randomisation(tiny_model, clip, ["gradcam"], target=0, seed=3)
    stages = [s["rank_correlation"] for s in first.methods["gradcam"].stages]
    assert stages == [s["rank_correlation"] for s in again.methods["gradcam"].stages]
    assert len(stages) == 2 + len(tiny_model.backbone.freeze_units())
    assert np.isfinite(stages).all()


def test_probing_the_map_size_keeps_each_module_flag():
    model = training_with_frozen_units()
    assert "map_size" not in vars(model)  # probed on first read: on the model as it is now
    before = flags(model)
    assert model.map_size == (1, 1)  # 32×32 frames through VGG19's five poolings
    assert flags(model) == before


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS))
def test_the_callers_random_stream_comes_back_where_it_was(entry_point, data, tmp_path):
    model = training_with_frozen_units()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    ENTRY_POINTS[entry_point](model, data, tmp_path / "out")
    assert torch.equal(torch.get_rng_state(), state)


def test_a_training_run_and_a_new_model_leave_the_random_stream_alone(data, tmp_path, capsys):
    from tests.conftest import run_cli
    from vadx.train.session import train_from_path

    torch.manual_seed(1234)
    state = torch.get_rng_state()
    changes = {
        "backbone_args": {"width": 0.0625},
        "num_frames": 4,
        "frame_size": (32, 32),
        "rnn_hidden": 8,
        "head_hidden": (8,),
        "freeze": "none",
    }
    train_from_path(
        data,
        tmp_path / "run",
        "cpu-scratch",
        model_changes=changes,
        train_changes={"epochs": 1, "workers": 0, "batch_size": 2},
    )
    assert torch.equal(torch.get_rng_state(), state)
    code, _, err = run_cli(
        [
            "new-model",
            str(tmp_path / "m"),
            "--width",
            "0.0625",
            "--size",
            "32",
            "--frames",
            "4",
            "--seed",
            "5",
        ],
        capsys,
    )
    assert code == 0, err
    assert torch.equal(torch.get_rng_state(), state)
