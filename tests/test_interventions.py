"""Ground truth from interventions on synthetic scenes (vadx.quality.interventions).

Exact values on the pointwise model (tests.explain_models, differentiable by hand): the logit
drops are computed here from the rendered frames with numpy and the model's formula. The
feature-space shortcut for segment removals is checked against drawing those clips for real;
the scores against hand-computed Spearman correlations and ROC-AUCs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.explain_models import COLOUR_WEIGHTS, pointwise_crnn, pointwise_output
from vadx.data.synth import Intervention, SceneSpec, SynthConfig, generate
from vadx.errors import InputError
from vadx.models import CRNN, save_model
from vadx.quality import xai_eval
from vadx.quality.interventions import (
    GroundTruth,
    ModelClip,
    actor_scores,
    evidence_pointing_game,
    intervention_truth,
    model_clip,
    temporal_truth_scores,
)
from vadx.video.preprocess import fit_frames
from vadx.video.sampling import even_indices

SIZE, FRAMES, STEPS = (48, 48), 24, 6
SPEC = SceneSpec("fight", (2, 9), SIZE, FRAMES)


def _fight_logit(model, frames: np.ndarray) -> float:
    """The pointwise model's fight logit by hand: sample, resize, normalise, then
    ``f_t = mean ReLU(Σ_c w_c x_c)`` and the GRU's closed form."""
    config = model.config
    picked, _, _ = fit_frames(frames[even_indices(FRAMES, STEPS)], config.frame_size, config.fit)
    x = (picked / 255.0 - np.array(config.mean)) / np.array(config.std)
    features = np.maximum(x @ np.array(COLOUR_WEIGHTS), 0).mean((1, 2))
    return pointwise_output(features.tolist())


def test_actor_drops_are_the_logit_differences_computed_by_hand():
    model = pointwise_crnn(steps=STEPS, size=16)
    truth = intervention_truth(model, SPEC, target=0)
    original = _fight_logit(model, SPEC.render().frames)
    assert truth.logit == pytest.approx(original, abs=1e-5)
    assert truth.actors == tuple(SPEC.render().actors)
    for name, drop in zip(truth.actors, truth.actor_logit_drop, strict=True):
        without = _fight_logit(model, SPEC.render(Intervention({name})).frames)
        assert drop == pytest.approx(original - without, abs=1e-5), name
    removed = _fight_logit(model, SPEC.render(Intervention({"anomaly"})).frames)
    assert truth.anomaly_logit_drop == pytest.approx(original - removed, abs=1e-5)
    # the normal logit is minus the fight logit: the probability follows
    assert truth.probability == pytest.approx(1 / (1 + np.exp(-2 * original)), abs=1e-5)


def _tiny_crnn(seed: int, **options) -> CRNN:
    torch.manual_seed(seed)
    model = CRNN(
        backbone_args={"width": 0.0625},
        rnn_hidden=6,
        head_hidden=(4,),
        num_frames=8,
        frame_size=SIZE,
        **options,
    )
    return model.eval()


@pytest.mark.parametrize("segment", [1, 2, 4])
def test_segment_drops_equal_clips_drawn_without_the_anomaly_in_those_frames(segment):
    model = _tiny_crnn(seed=3)
    truth = intervention_truth(model, SPEC, target=1, segment=segment)
    indices = even_indices(FRAMES, 8)
    expected = []
    for start in range(0, 8, segment):
        last = min(start + segment, 8) - 1
        frames = (int(indices[start]), int(indices[last]) + 1)
        clip = model_clip(model, SPEC.render(Intervention({"anomaly"}, frames=frames))).clip
        with torch.no_grad():
            logit = float(model(clip[None])[0, 1])
        expected += [truth.logit - logit] * (last - start + 1)
    np.testing.assert_allclose(truth.frame_logit_drop, expected, atol=1e-5)


def test_the_decisive_set_is_a_smallest_set_whose_removal_flips_the_decision():
    model = pointwise_crnn(steps=STEPS, size=16)
    base = intervention_truth(model, SPEC, target=0)
    drops = np.sort(base.actor_logit_drop)[::-1]
    # fight − normal = 2·y + b: put the boundary between the largest single drop and the sum
    # of the two largest, so that one actor alone never flips it and two do
    assert drops[0] > drops[1] > 0
    margin = drops[0] + 0.5 * drops[1]
    with torch.no_grad():
        model.head[0].bias.copy_(torch.tensor([-2 * base.logit + 2 * margin, 0.0]))
    truth = intervention_truth(model, SPEC, target=0, max_set=3)
    assert truth.predicted == 0 and not truth.actor_flips.any()
    assert truth.decisive_set is not None and len(truth.decisive_set) == 2
    clip = model_clip(model, SPEC.render(Intervention(set(truth.decisive_set)))).clip
    with torch.no_grad():
        assert int(model(clip[None])[0].argmax()) == 1
    # with the boundary between twice the largest drop and twice the second, one actor flips
    with torch.no_grad():
        model.head[0].bias.copy_(torch.tensor([-2 * base.logit + drops[0] + drops[1], 0.0]))
    alone = intervention_truth(model, SPEC, target=0)
    assert alone.decisive_set == (base.actors[int(base.actor_logit_drop.argmax())],)
    assert alone.actor_flips.sum() == 1


def test_bad_settings_are_refused():
    model = pointwise_crnn(steps=STEPS, size=16)
    with pytest.raises(InputError, match="segment and max_set must be ≥ 1"):
        intervention_truth(model, SPEC, segment=0)
    with pytest.raises(InputError, match="target 5 is not a class index of 2 classes"):
        intervention_truth(model, SPEC, target=5)


def _truth(drops, regions, decisive=None, frame_drops=None) -> GroundTruth:
    names = tuple("abcdef"[: len(drops)])
    return GroundTruth(
        target=0,
        predicted=0,
        logit=5.0,
        probability=0.9,
        actors=names,
        anomaly_actors=names[:1],
        actor_logit_drop=np.asarray(drops, float),
        actor_probability_drop=np.asarray(drops, float) / 10,
        actor_flips=np.array([n in (decisive or ()) and len(decisive) == 1 for n in names]),
        regions=np.asarray(regions),
        anomaly_logit_drop=float(drops[0]),
        anomaly_flips=decisive is not None,
        frame_logit_drop=None if frame_drops is None else np.asarray(frame_drops, float),
        decisive_set=decisive,
        clip=ModelClip(torch.zeros(1), np.zeros(1, int), np.ones((2, 8), bool)),
    )


def _regions(count: int) -> np.ndarray:
    """Actor k owns column k of a 1-frame, 2×8 clip; the last owns nothing (not visible)."""
    regions = np.zeros((count, 1, 2, 8), bool)
    for k in range(count - 1):
        regions[k, 0, :, k] = True
    return regions


def test_actor_scores_by_hand():
    # drops 3, 1, 0.0005 (below 5 % of 3: no evidence), −1 (against: no evidence) and an
    # invisible actor (left out)
    truth = _truth([3, 1, 0.0005, -1, 0], _regions(5), decisive=("a",))
    maps = np.zeros((1, 2, 8))
    maps[0, :, :4] = [2, 3, 1, 0]  # masses 4, 6, 2, 0 against evidence 3, 1, 0, 0
    # mass ranks 3 4 2 1; the tie at 0 broken by the masses: truth ranks 4 3 2 1
    # Σd² = 2, ρ = 1 − 6·2 / (4·15) = 0.8
    scores = actor_scores(maps, truth)
    assert scores == {"actor_rank_correlation": pytest.approx(0.8), "decisive_actor_first": 0.0}
    maps[0, :, :4] = [4, 3, 1, 0]
    assert actor_scores(maps, truth) == {
        "actor_rank_correlation": pytest.approx(1.0),
        "decisive_actor_first": 1.0,
    }
    maps[0, :, :4] = [3, 3, 1, 0]  # a tie for the most mass is a miss
    assert actor_scores(maps, truth)["decisive_actor_first"] == 0.0
    # a decisive set of two: the most-attributed actor need only be one of them
    pair = _truth([3, 1, 0.0005, -1, 0], _regions(5), decisive=("a", "b"))
    maps[0, :, :4] = [1, 3, 1, 0]
    assert actor_scores(maps, pair)["decisive_actor_first"] == 1.0
    # a constant map says nothing
    assert np.isnan(actor_scores(np.ones((1, 2, 8)), truth)["actor_rank_correlation"])
    with pytest.raises(InputError, match="do not match the clip"):
        actor_scores(np.ones((2, 2, 8)), truth)


def test_the_pointing_game_counts_only_frames_where_the_anomaly_is_evidence():
    # 4 frames of 2×8; the anomaly ("a") owns columns 0–1, a walker ("b") columns 4–5
    regions = np.zeros((2, 4, 2, 8), bool)
    regions[0, :, :, :2] = True
    regions[1, :, :, 4:6] = True
    regions[0, 3] = False  # frame 3 does not show the anomaly
    # frame drops: frame 0 below 5 % of the largest (no evidence), 1 and 2 evidence, 3 unseen
    truth = _truth([2, 0], regions, frame_drops=[0.01, 1.0, 2.0, 3.0])
    raw = np.zeros((4, 2, 2))  # 2×2 cells: the anomaly lies in the left column of cells
    raw[0, 0, 1] = 5  # frame 0 points away: not scored
    raw[1, 1, 0] = 5  # a hit
    raw[2, 0, 0] = raw[2, 0, 1] = 5  # a tie between a hit and a miss: 0.5
    raw[3, 0, 1] = 5  # no anomaly in view: not scored
    assert evidence_pointing_game(raw, truth) == {"pointing_game_evidence": pytest.approx(0.75)}
    none = _truth([2, 0], regions, frame_drops=[0.0, 0.0, 0.0, 0.0])
    assert np.isnan(evidence_pointing_game(raw, none)["pointing_game_evidence"])
    assert evidence_pointing_game(raw, _truth([2, 0], regions)) == {}


def test_temporal_truth_scores_by_hand():
    truth = _truth([1, 0, 0], _regions(3), frame_drops=[0, 0.1, 2, 4, 0.5, 3])
    # singled out: drops ≥ 2 (half of 4) → frames 2, 3, 5
    assert temporal_truth_scores(np.array([0, 0.1, 2, 4, 0.5, 3]), truth) == {
        "temporal_rank_correlation": pytest.approx(1.0),
        "temporal_truth_auroc": 1.0,
    }
    reverse = temporal_truth_scores(-np.array([0, 0.1, 2, 4, 0.5, 3]), truth)
    assert reverse["temporal_truth_auroc"] == 0.0
    # drops 0 and 0.1 are below 5 % of 4: tied at 0, broken as the scores rank them; score
    # ranks 6 5 3 1 4 2 against truth ranks 2 1 4 6 3 5: Σd² = 68, ρ = 1 − 6·68 / (6·35)
    assert reverse["temporal_rank_correlation"] == pytest.approx(1 - 68 / 35)
    # positives (frames 2, 3, 5) score 1, 1, 0; negatives (0, 1, 4) score 0, 0, 1: of the 9
    # pairs the positive wins 4, ties 4 (half each) and loses 1 → (4 + 2) / 9
    partial = temporal_truth_scores(np.array([0, 0, 1, 1, 1, 0]), truth)
    assert partial["temporal_truth_auroc"] == pytest.approx(6 / 9)
    assert temporal_truth_scores(np.zeros(6), _truth([1], _regions(1))) == {}
    with pytest.raises(InputError, match="frame scores for"):
        temporal_truth_scores(np.zeros(5), truth)


def _xai_eval_cli(tmp_path, out: str, methods: str, capsys, *extra: str):
    """``vadx xai-eval`` of tmp_path/model on tmp_path/data into tmp_path/out, frame occlusion
    as the temporal estimator, no faithfulness curves or sanity checks."""
    return run_cli(
        [
            "xai-eval",
            str(tmp_path / "model"),
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / out),
            "--methods",
            methods,
            "--temporal",
            "frame_occlusion",
            "--faithfulness-clips",
            "0",
            "--sanity-clips",
            "0",
            *extra,
        ],
        capsys,
    )


def test_xai_eval_scores_every_method_against_the_interventions(tmp_path, capsys):
    config = SynthConfig(
        clips=(0, 0, 2), num_frames=16, size=SIZE, seed=31, classes=("fire", "normal")
    )
    generate(tmp_path / "data", config)
    model = _tiny_crnn(seed=0, class_names=("fire", "normal"))
    save_model(model, tmp_path / "model")
    code, _, err = _xai_eval_cli(tmp_path, "eval", "gradcam,layercam", capsys)
    assert code == 0, err
    document = json.loads((tmp_path / "eval" / "xai-eval.json").read_text())
    assert document["interventions"] is True
    assert document["reliance"]["clips"] == 2
    for clip in document["clips"]:
        truth = clip["ground_truth"]
        assert set(truth["actors"]) >= {"fire"} and len(truth["frame_logit_drop"]) == 8
        for method in ("gradcam", "layercam"):
            scores = set(clip["scores"][method])
            assert {"actor_rank_correlation", "decisive_actor_first"} <= scores
            assert "pointing_game_evidence" in scores
        assert "temporal_truth_auroc" in clip["scores"]["frame_occlusion"]
    assert "What the model's decisions rest on" in (tmp_path / "eval" / "xai-eval.md").read_text()
    code, _, err = _xai_eval_cli(tmp_path, "off", "gradcam", capsys, "--no-interventions")
    assert code == 0, err
    assert json.loads((tmp_path / "off" / "xai-eval.json").read_text())["reliance"] is None
    # two models side by side against the same interventions, in one table
    save_model(_tiny_crnn(seed=1, class_names=("fire", "normal"), rnn="lstm"), tmp_path / "lstm")
    code, out, err = run_cli(
        [
            "compare",
            str(tmp_path / "model"),
            str(tmp_path / "lstm"),
            "--ground-truth",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "cmp"),
            "--method",
            "gradcam,layercam",
            "--temporal",
            "frame_occlusion",
        ],
        capsys,
    )
    assert code == 0, err
    table = json.loads((tmp_path / "cmp" / "compare-ground-truth.json").read_text())
    assert [row["model"] for row in table["models"]] == ["model", "lstm"]
    assert "LSTM 6" in table["models"][1]["architecture"]
    for row in table["models"]:
        own = json.loads((tmp_path / "cmp" / row["folder"] / "xai-eval.json").read_text())
        assert row["reliance"] == own["reliance"] and row["clips"] == 2
        assert row["scores"]["gradcam"]  # the tiny models move their logits too little for frames
        for method, metrics in row["scores"].items():
            for metric, value in metrics.items():
                assert value == own["summary"][method][metric]["mean"]
    markdown = (tmp_path / "cmp" / "compare-ground-truth.md").read_text()
    assert markdown.count("\n") == 4 and "gradcam decisive_actor_first ↑" in markdown
    assert "gradcam decisive_actor_first" in out
    code, _, err = run_cli(
        [
            "compare",
            str(tmp_path / "model"),
            "--ground-truth",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "cmp2"),
        ],
        capsys,
    )
    assert code == 2 and err.startswith("error:") and "vadx synth" in err


def test_a_synth_dataset_that_cannot_be_drawn_again_is_scored_without_interventions(tmp_path):
    config = SynthConfig(clips=(0, 0, 1), num_frames=16, size=SIZE, seed=3, classes=("fire",))
    manifest = generate(tmp_path / "data", config)
    document = json.loads(manifest.read_text())
    document["config"]["background"] = str(tmp_path / "gone.mp4")  # moved away since
    manifest.write_text(json.dumps(document))
    model = _tiny_crnn(seed=0, class_names=("fire", "normal"))
    settings = {
        "methods": ["gradcam"],
        "temporal": ["frame_occlusion"],
        "faithfulness_clips": 0,
        "sanity_clips": 0,
    }
    with pytest.warns(UserWarning, match="scored without interventions: .*gone.mp4"):
        result = xai_eval(model, tmp_path / "data", tmp_path / "eval", **settings)
    assert result.reliance is None and result.clips[0].ground_truth is None
    written = json.loads((tmp_path / "eval" / "xai-eval.json").read_text())
    assert "ground_truth" not in written["clips"][0]
    with pytest.raises(InputError, match="interventions need a dataset written by vadx synth"):
        xai_eval(model, tmp_path / "data", tmp_path / "eval2", interventions=True, **settings)
