"""Explanation-quality metrics on constructed cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import TINY
from tests.explain_models import one_pixel_crnn, pointwise_crnn
from vadx.errors import InputError
from vadx.explain.baselines import baseline_clip
from vadx.models import CRNN
from vadx.quality import (
    METRICS,
    auc,
    cascading_randomisation,
    energy_pointing_game,
    mask_area,
    mask_auroc,
    mask_iou,
    pointing_game,
    pointing_tolerance,
    rank_correlation,
    spatial_curves,
    ssim,
    temporal_auroc,
    temporal_curves,
)


def square_masks(frames: int = 4, size: int = 16) -> np.ndarray:
    masks = np.zeros((frames, size, size), bool)
    masks[:, 4:8, 6:12] = True
    masks[0] = False  # a frame without the anomaly
    return masks


def test_a_map_equal_to_the_mask_scores_one_everywhere():
    masks = square_masks()
    maps = masks.astype(np.float32)
    assert np.isnan(pointing_game(maps, masks)[0])  # no anomaly in frame 0: not scored
    for score in (pointing_game, energy_pointing_game, mask_iou, mask_auroc):
        np.testing.assert_allclose(score(maps, masks)[1:], 1.0)
    np.testing.assert_allclose(mask_auroc(1 - maps, masks)[1:], 0.0)  # the inverse: 0


def test_a_uniform_map_scores_the_area_share_and_a_random_one_about_it():
    masks = square_masks(frames=400, size=16)
    area = 24 / 256
    np.testing.assert_allclose(mask_area(masks)[1:], area)
    uniform = np.ones(masks.shape, np.float32)
    np.testing.assert_allclose(energy_pointing_game(uniform, masks)[1:], area)
    assert np.nansum(pointing_game(uniform, masks)) == 0  # a flat map points nowhere
    noise = np.random.default_rng(0).random(masks.shape).astype(np.float32)
    assert abs(np.nanmean(pointing_game(noise, masks)) - area) < 0.04
    assert abs(np.nanmean(mask_auroc(noise, masks)) - 0.5) < 0.02


def test_temporal_auroc():
    labels = np.array([0, 0, 1, 1, 1])
    assert temporal_auroc(np.array([0.1, 0.2, 0.9, 0.8, 0.7]), labels) == 1.0
    assert temporal_auroc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), labels) == 0.0
    assert np.isnan(temporal_auroc(np.ones(5), np.ones(5)))
    with pytest.raises(InputError, match="importance scores for"):
        temporal_auroc(np.ones(4), labels)


def test_deletion_on_a_model_that_reads_one_pixel():
    model = one_pixel_crnn(steps=3, size=8)
    clip = torch.rand(1, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    maps = np.zeros((3, 8, 8), np.float32)
    maps[:, 2, 3] = 1.0  # the truth: only pixel (2, 3) of each frame matters
    curves = spatial_curves(model, clip, maps, target=0, baseline="zeros", steps=4)
    with torch.no_grad():
        original = model(clip).softmax(1)[0, 0].item()
        erased = model(torch.zeros_like(clip)).softmax(1)[0, 0].item()
    deletion, insertion = curves["deletion"], curves["insertion"]
    assert deletion[0] == pytest.approx(original) and insertion[0] == pytest.approx(erased)
    np.testing.assert_allclose(deletion[1:], erased, rtol=1e-6)  # gone at the first step
    np.testing.assert_allclose(insertion[1:], original, rtol=1e-6)
    assert auc(deletion) < auc(curves["deletion_random"])
    assert auc(insertion) > auc(curves["insertion_random"])
    # a random order removes the three frames' pixels at different steps: no single drop
    assert curves["deletion_random"][1] > erased + 1e-3


def test_padding_is_left_out_of_pixel_counts_and_of_deletion():
    picture = np.zeros((4, 4), bool)
    picture[:, :2] = True  # the left half shows the video, the right half is letter-box padding
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 0, :2] = True  # two of the picture's eight pixels
    assert mask_area(masks, picture).tolist() == [0.25, 0.25]
    assert mask_area(masks).tolist() == [0.125, 0.125]
    maps = masks.astype(np.float32)
    maps[:, :, 2:] = 1.0  # as high on the padding as on the mask: only the picture counts
    assert mask_auroc(maps, masks, picture).tolist() == [1.0, 1.0]
    assert mask_auroc(maps, masks)[0] < 1
    with pytest.raises(InputError, match="picture mask"):
        mask_area(masks, picture[:3])
    model = one_pixel_crnn(steps=3, size=8)  # reads pixel (2, 3) only
    clip = torch.rand(1, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    shown = np.ones((8, 8), bool)
    shown[:3] = False  # rows 0–2, with the pixel the model reads, are padding
    curves = spatial_curves(
        model,
        clip,
        np.ones((3, 8, 8), np.float32),
        target=0,
        baseline="zeros",
        steps=4,
        picture=shown,
    )
    with torch.no_grad():
        original = model(clip).softmax(1)[0, 0].item()
        erased = model(torch.zeros_like(clip)).softmax(1)[0, 0].item()
    np.testing.assert_allclose(curves["deletion"], original, rtol=1e-6)  # never removed
    np.testing.assert_allclose(curves["insertion"], erased, rtol=1e-6)  # never revealed
    np.testing.assert_allclose(curves["deletion_random"], original, rtol=1e-6)


def test_temporal_curves_equal_replacing_frames_in_the_clip(tiny_model, tiny_clip):
    clip = tiny_clip[:1]
    importance = np.array([0.1, 0.9, 0.5, -0.2])
    curves = temporal_curves(tiny_model, clip, importance, target=2, baseline="mean")
    base = baseline_clip(tiny_model, clip, "mean")
    order = [1, 2, 0, 3]
    with torch.no_grad():
        for k in range(5):
            gone = clip.clone()
            gone[:, order[:k]] = base[:, order[:k]]
            shown = base.clone()
            shown[:, order[:k]] = clip[:, order[:k]]
            expected_deletion = tiny_model(gone).softmax(1)[0, 2].item()
            expected_insertion = tiny_model(shown).softmax(1)[0, 2].item()
            assert curves["deletion"][k] == pytest.approx(expected_deletion, rel=1e-5)
            assert curves["insertion"][k] == pytest.approx(expected_insertion, rel=1e-5)
    assert curves["deletion_random"][0] == pytest.approx(curves["deletion"][0])
    assert curves["deletion_random"][-1] == pytest.approx(curves["deletion"][-1])


def test_similarity_measures():
    a = np.random.default_rng(1).random((2, 16, 16))
    assert ssim(a, a) == pytest.approx(1.0) and rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert ssim(a, np.random.default_rng(2).random((2, 16, 16))) < 0.3
    assert rank_correlation(a, np.zeros_like(a)) == 0.0


def test_cascading_randomisation_leaves_the_model_alone_and_reports_each_stage(tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = cascading_randomisation(
        model, tiny_clip[:1], ["gradcam", "saliency"], ["frame_occlusion"], target=1
    )
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    stages = [s["stage"] for s in result.methods["gradcam"].stages]
    assert stages[:3] == ["head", "rnn", "backbone.features.34"]  # last conv first
    assert stages[-1] == "backbone.features.0"
    assert len(stages) == 2 + 16
    for name in ("gradcam", "saliency", "frame_occlusion"):
        entry = result.methods[name]
        assert -1 <= entry.randomisation_rank_correlation <= 1
        assert entry.passed == (abs(entry.randomisation_rank_correlation) < 0.5)
    assert result.random_logit_target != 1


def test_every_metric_declares_direction_and_category():
    for metric in METRICS.values():
        assert metric.category in ("faithfulness", "localisation", "intervention", "sanity")
        assert metric.arrow in ("↑", "↓")
        assert not metric.baseline or metric.baseline in METRICS
    assert (
        not METRICS["deletion_auc"].higher_is_better and METRICS["insertion_auc"].higher_is_better
    )


def test_xai_eval_end_to_end_on_a_small_synthetic_split(tmp_path, capsys):
    from tests.conftest import run_cli
    from vadx.data.synth import SynthConfig, generate
    from vadx.models import save_model

    generate(
        tmp_path / "data",
        SynthConfig(clips=(0, 0, 1), num_frames=12, size=(48, 48), classes=("fight", "normal")),
    )
    torch.manual_seed(0)
    save_model(CRNN(TINY.replace(class_names=("fight", "normal"))), tmp_path / "m")
    code, _, err = run_cli(
        [
            "xai-eval",
            str(tmp_path / "m"),
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "q"),
            "--methods",
            "gradcam,saliency",
            "--temporal",
            "frame_occlusion",
            "--sanity-clips",
            "1",
            "--steps",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    document = json.loads((tmp_path / "q" / "xai-eval.json").read_text())
    assert document["clips_scored"] == 1 and document["clips"][0]["class"] == "fight"
    gradcam = document["summary"]["gradcam"]
    for metric in (
        "pointing_game",
        "energy_pointing_game",
        "mask_area",
        "deletion_auc",
        "deletion_auc_random",
        "randomisation_rank_correlation",
    ):
        assert metric in gradcam, metric
    assert "temporal_deletion_auc" in document["summary"]["frame_occlusion"]
    table = (tmp_path / "q" / "xai-eval.md").read_text()
    assert "pointing_game ↑" in table and "deletion_auc ↓" in table and "baseline" in table
    assert (tmp_path / "q" / "xai-eval.png").stat().st_size > 1000
    for masks in (tmp_path / "data").rglob("*.masks.npz"):
        masks.unlink()
    code, _, err = run_cli(
        ["xai-eval", str(tmp_path / "m"), str(tmp_path / "data"), "--out", str(tmp_path / "r")],
        capsys,
    )
    assert code == 2 and "no anomalous clip with ground-truth masks" in err


def test_random_logit_compares_signed_frame_scores():
    # the pointwise model's two logits are y and −y: every frame moves them by opposite amounts,
    # so frame occlusion is perfectly class-sensitive (−1), though its magnitudes are equal
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    result = cascading_randomisation(model, clip, [], ["frame_occlusion"], target=0)
    assert result.random_logit_target == 1
    entry = result.methods["frame_occlusion"]
    assert entry.random_logit_rank_correlation == pytest.approx(-1.0)
    assert all(-1 <= s["rank_correlation"] <= 1 for s in entry.stages)


def test_pointing_game_tolerance_counts_a_peak_near_the_mask():
    masks = np.zeros((3, 20, 20), bool)
    masks[:, 5:10, 5:10] = True
    maps = np.zeros((3, 20, 20))
    maps[0, 7, 7] = 1  # inside
    maps[1, 7, 14] = 1  # 5 px right of the mask's last column (9)
    maps[2, 19, 19] = 1  # √(10² + 10²) ≈ 14.1 px from the corner (9, 9)
    assert pointing_game(maps, masks).tolist() == [1, 0, 0]
    assert pointing_game(maps, masks, tolerance=5).tolist() == [1, 1, 0]
    assert pointing_game(maps, masks, tolerance=4.9).tolist() == [1, 0, 0]
    assert pointing_game(maps, masks, tolerance=14.2).tolist() == [1, 1, 1]
    assert pointing_game(np.zeros((3, 20, 20)), masks, tolerance=30).tolist() == [0, 0, 0]
    assert pointing_tolerance((112, 112)) == 7.5 and pointing_tolerance((224, 160)) == 15
    with pytest.raises(InputError, match="tolerance"):
        pointing_game(maps, masks, tolerance=-1)


def test_xai_eval_document_keeps_its_keys_and_flattens_the_summary():
    from vadx.quality.sanity import MethodSanity, SanityChecks
    from vadx.quality.xai_eval import ClipScores, MethodSummary, MetricSummary, XaiEval

    checks = SanityChecks(
        target=1,
        random_logit_target=0,
        methods={
            "gradcam": MethodSanity(
                stages=[{"stage": "head", "rank_correlation": 0.9}],
                randomisation_rank_correlation=0.9,
                randomisation_ssim=None,
                random_logit_rank_correlation=0.1,
                passed=False,
            )
        },
    )
    result = XaiEval(
        data="d",
        split="test",
        methods=["gradcam"],
        temporal=["frame_occlusion"],
        layers={"gradcam": "block5_conv4"},
        model=None,
        clips_scored=1,
        faithfulness_clips=0,
        sanity_clips=1,
        steps=4,
        summary={
            "gradcam": MethodSummary(
                {"pointing_game": MetricSummary(mean=0.5, std=0.0, n=1)},
                randomisation_passed=False,
            ),
            "frame_occlusion": MethodSummary({"temporal_auroc": MetricSummary(1.0, 0.0, 1)}),
        },
        sanity=[checks],
        interventions=False,
        reliance=None,
        clips=[ClipScores("a.mp4", "fight", 1, {"gradcam": {"pointing_game": 0.5}})],
    )
    document = result.to_json()
    assert list(document) == [
        "data", "split", "methods", "temporal", "layers", "model", "clips_scored",
        "faithfulness_clips", "sanity_clips", "steps", "metrics", "summary", "sanity",
        "interventions", "reliance", "clips",
    ]  # fmt: skip
    assert document["summary"] == {
        "gradcam": {
            "pointing_game": {"mean": 0.5, "std": 0.0, "n": 1},
            "randomisation_passed": False,
        },
        "frame_occlusion": {"temporal_auroc": {"mean": 1.0, "std": 0.0, "n": 1}},
    }
    assert document["clips"] == [
        {
            "source": "a.mp4",
            "class": "fight",
            "predicted": 1,
            "scores": {"gradcam": {"pointing_game": 0.5}},
        }
    ]  # no ground_truth without interventions
    assert document["sanity"][0]["methods"]["gradcam"]["passed"] is False
    assert "randomisation_passed" not in result.summary["gradcam"].metrics
    assert result.summary["gradcam"].mean("pointing_game") == 0.5
