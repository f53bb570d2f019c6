"""Training that penalises attribution outside the masks: exact values, gradients against
finite differences, and runs from the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import TINY_TRAIN_ARGS, run_cli
from tests.explain_models import pointwise_crnn
from vadx.data.synth import SynthConfig, generate
from vadx.errors import ConfigError
from vadx.train.config import ExplanationLoss, TrainConfig
from vadx.train.explanation_loss import (
    cam_outside_share,
    input_gradient_penalty,
    mask_coverage,
)


def test_the_cam_term_is_the_share_of_the_map_outside_the_mask_by_hand():
    # head(A) = Σ A over channels and cells, per class ×(1, −1): ∂y/∂A = 1 for class 0, so
    # LayerCAM = ReLU(Σ_c A_c) = the channel sum
    maps = torch.zeros(1, 2, 2, 2, 2)
    maps[0, 0, :, 0, 0] = torch.tensor([1.0, 2.0])  # 3 in the top-left cell of frame 0
    maps[0, 0, 0, 1, 1] = 1.0  # 1 in the bottom-right cell
    maps[0, 1, 0, 0, 1] = 5.0  # frame 1 has no mask: not counted
    maps.requires_grad_(True)

    def head(a):
        total = a.sum((1, 2, 3, 4))
        return torch.stack([total, -total], 1)

    coverage = torch.zeros(1, 2, 4, 4)
    coverage[0, 0, :2, :2] = 1.0  # the mask covers the top-left cell of frame 0
    term, logits = cam_outside_share(maps, head, torch.tensor([0]), coverage, torch.tensor([True]))
    assert term.item() == pytest.approx(1 / 4)  # 1 of the 4 units of mass lies outside
    assert logits.shape == (1, 2)
    # a normal clip, or one without mask frames, adds nothing
    assert (
        cam_outside_share(maps, head, torch.tensor([0]), coverage, torch.tensor([False]))[0].item()
        == 0.0
    )
    empty = torch.zeros_like(coverage)
    assert cam_outside_share(maps, head, torch.tensor([0]), empty, torch.tensor([True]))[0] == 0


def test_mask_coverage_pools_to_at_most_32_cells():
    masks = torch.zeros(1, 1, 64, 64, dtype=torch.bool)
    masks[0, 0, :2, :2] = True
    coverage = mask_coverage(masks)
    assert coverage.shape == (1, 1, 32, 32)
    assert coverage[0, 0, 0, 0] == 1.0 and coverage.sum() == 1.0


def _double_model():
    torch.manual_seed(0)
    model = pointwise_crnn(steps=3, size=4).double()
    with torch.no_grad():
        for parameter in model.rnn.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def test_the_cam_term_s_gradient_matches_finite_differences():
    model = _double_model()
    generator = torch.Generator().manual_seed(1)
    maps = torch.rand(2, 3, 1, 4, 4, dtype=torch.float64, generator=generator) + 0.1
    coverage = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    coverage[:, :, :2, :2] = 1.0
    labels, anomalous = torch.tensor([0, 1]), torch.tensor([True, True])

    def term(a):
        return cam_outside_share(a, model.forward_maps, labels, coverage, anomalous)[0]

    assert torch.autograd.gradcheck(term, (maps.requires_grad_(True),), eps=1e-6, atol=1e-5)
    # and with respect to the weights training moves: the GRU's input weights
    weight = model.rnn.weight_ih_l0

    def of_weight(w):
        with torch.no_grad():
            weight.copy_(w)
        return term(maps.detach().requires_grad_(True))

    loss = term(maps.detach().requires_grad_(True))
    (analytic,) = torch.autograd.grad(loss, weight)
    base = weight.detach().clone()
    numeric = torch.zeros_like(base)
    for index in range(base.numel()):
        step = torch.zeros_like(base).view(-1)
        step[index] = 1e-6
        numeric.view(-1)[index] = (
            of_weight(base + step.view_as(base)) - of_weight(base - step.view_as(base))
        ) / 2e-6
    with torch.no_grad():
        weight.copy_(base)
    torch.testing.assert_close(analytic, numeric, atol=1e-5, rtol=1e-4)


def test_the_input_gradient_term_matches_finite_differences_and_ignores_masked_pixels():
    model = _double_model()
    generator = torch.Generator().manual_seed(2)
    clips = torch.rand(1, 3, 3, 4, 4, dtype=torch.float64, generator=generator)
    masks = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    masks[0, :, :, :2] = True
    anomalous = torch.tensor([True])

    def term(x):
        return input_gradient_penalty(model, x, masks, anomalous)[0]

    value = term(clips)
    x = clips.clone().requires_grad_(True)
    log_probabilities = model(x).log_softmax(1).sum()
    (gradient,) = torch.autograd.grad(log_probabilities, x)
    by_hand = gradient.pow(2).sum(2)[~masks].sum() / (~masks).sum()
    assert value.item() == pytest.approx(by_hand.item())
    # the penalty's own gradient (through the double backward) against central differences
    # of the weights of the 1×1 conv
    conv = model.backbone.features[0].weight
    (analytic,) = torch.autograd.grad(term(clips), conv)
    base = conv.detach().clone()
    numeric = torch.zeros_like(base)
    for index in range(base.numel()):
        for sign in (1, -1):
            with torch.no_grad():
                conv.copy_(base)
                conv.view(-1)[index] += sign * 1e-6
            numeric.view(-1)[index] += sign * term(clips).item() / 2e-6
    with torch.no_grad():
        conv.copy_(base)
    torch.testing.assert_close(analytic, numeric, atol=1e-5, rtol=1e-4)


def test_weights_are_parsed_and_checked():
    assert ExplanationLoss.parse("cam").to_dict() == {"cam": 1.0, "input_gradient": 0.0}
    assert ExplanationLoss.parse("cam=2, input_gradient=0.001").input_gradient == 0.001
    for text, message in [
        ("nope=1", "unknown explanation loss term 'nope'"),
        ("cam=x", "must be a number"),
        ("cam=-1", "finite and ≥ 0"),
        ("cam=inf", "finite and ≥ 0"),
        ("cam=0", "a positive weight"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ExplanationLoss.parse(text)
    with pytest.raises(ConfigError, match="unknown explanation loss term"):
        TrainConfig(explanation_loss={"gradcam": 1.0})
    assert TrainConfig(explanation_loss={"cam": 1.0}).explanation == ExplanationLoss(cam=1.0)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("el")
    generate(root / "data", SynthConfig(clips=(4, 2, 0), num_frames=8, size=(48, 48), seed=3))
    return root / "data"


def test_cli_train_with_the_explanation_loss_records_it_and_resumes(synth, tmp_path, capsys):
    # 48-px frames at 48 px: the tiny VGG's last maps are 1×1 — 64 px gives it 2×2 cells
    run = ["train", str(synth), *TINY_TRAIN_ARGS, "--size", "64", "--out", str(tmp_path / "r")]
    code, _, err = run_cli(
        [*run, "--epochs", "1", "--explanation-loss", "cam=1,input_gradient=0.5"], capsys
    )
    assert code == 0, err
    history = json.loads((tmp_path / "r" / "history.json").read_text())["epochs"]
    assert history[0]["train_explanation_loss"] > 0
    settings = json.loads((tmp_path / "r" / "last" / "config.json").read_text())
    assert settings["metadata"]["train_config"]["explanation_loss"] == {
        "cam": 1.0,
        "input_gradient": 0.5,
    }
    code, _, err = run_cli(
        [
            "train",
            str(synth),
            "--out",
            str(tmp_path / "r"),
            "--resume",
            "--epochs",
            "2",
            "--override",
        ],
        capsys,
    )
    assert code == 0, err
    history = json.loads((tmp_path / "r" / "history.json").read_text())["epochs"]
    assert len(history) == 2 and history[1]["train_explanation_loss"] > 0


def test_cli_train_refuses_what_the_explanation_loss_cannot_do(synth, tmp_path, capsys):
    run = ["train", str(synth), *TINY_TRAIN_ARGS, "--epochs", "1"]
    code, _, err = run_cli(
        [*run, "--out", str(tmp_path / "a"), "--explanation-loss", "cam=-1"], capsys
    )
    assert code == 2 and err.startswith("error: ") and "finite and ≥ 0" in err
    for masks in synth.rglob("*.masks.npz"):
        masks.rename(masks.with_suffix(".moved"))
    try:
        code, _, err = run_cli(
            [*run, "--out", str(tmp_path / "b"), "--explanation-loss", "cam"], capsys
        )
    finally:
        for moved in synth.rglob("*.moved"):
            moved.rename(moved.with_suffix(".npz"))
    assert code == 2 and "none of the training clips has them" in err
