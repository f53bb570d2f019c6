"""The trust verdict calibrated on a model's validation scenes: match rates, the regression,
the checkpoint's section, and the verdicts that read it."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from tests.conftest import long_video, run_cli, tiny_checkpoint
from tests.explain_models import pointwise_crnn
from tests.test_trust import LIMITS, SHARES, _bright_square_clip, _with_maps
from vadx.data.synth import SynthConfig, generate
from vadx.errors import CheckpointError, InputError
from vadx.explain import explain
from vadx.models import load_model
from vadx.quality.trust import TrustSettings, trust_check
from vadx.quality.trust_calibration import map_outcomes
from vadx.quality.trust_prior import (
    FEATURES,
    MapOutcome,
    MethodRate,
    TrustCalibration,
    calibration_of,
    fit_calibration,
    save_trust_calibration,
)


def _calibration(intercept: float, rates=None, coefficients=None, classes=None):
    """A calibration that reads only what ``coefficients`` weigh (default: nothing: every map
    gets ``sigmoid(intercept)``)."""
    n = len(FEATURES)
    return TrustCalibration(
        methods=rates or {"saliency": MethodRate(25, 22), "gradcam": MethodRate(25, 5)},
        classes=classes or {},
        coefficients=tuple(coefficients or (0.0,) * n),
        intercept=intercept,
        centre=(0.0,) * n,
        scale=(1.0,) * n,
        clips=25,
    )


def _outcome(clip, method, matches, faithfulness, kind="fight"):
    values = {"faithfulness": faithfulness, "agreement": None, "stability": 0.4, "confidence": 0.9}
    return MapOutcome(clip, kind, method, matches, values)


def test_a_method_s_prior_is_its_smoothed_match_rate():
    rate = MethodRate(maps=8, matching=6)
    assert rate.rate == 0.75
    assert rate.log_odds == pytest.approx(math.log(7 / 3))  # (6 + 1) / (8 + 2) = 0.7
    assert MethodRate(4, 4).log_odds == pytest.approx(math.log(5))  # all matched: still finite


def test_the_probability_is_the_logistic_of_the_standardised_features():
    classes = {"saliency": {"fire": MethodRate(8, 2)}}
    calibration = dataclasses.replace(
        _calibration(0.5, coefficients=(1.0, 2.0, -1.0, 0.5), classes=classes),
        centre=(0.0, 0.1, 0.2, 0.8),
        scale=(2.0, 0.5, 1.0, 0.1),
    )
    values = {"faithfulness": 3.0, "agreement": None, "stability": 0.1, "confidence": 0.9}
    # fire: prior log(3/7), from saliency's fire scenes; fight, which it did not see: from all
    # of saliency's scenes, log(23/4); faithfulness clipped to 1; agreement not measured: its
    # centre (z = 0); stability not read
    for kind, prior in [("fire", math.log(3 / 7)), ("fight", math.log(23 / 4))]:
        z = [prior / 2, (1.0 - 0.1) / 0.5, 0.0, (0.9 - 0.8) / 0.1]
        logit = 0.5 + z[0] * 1.0 + z[1] * 2.0 + z[3] * 0.5
        assert calibration.probability("saliency", kind, values) == pytest.approx(
            1 / (1 + math.exp(-logit))
        )
    assert calibration.probability("layercam", "fire", values) is None  # a method not seen


def test_the_fit_counts_each_method_and_is_sklearn_s_regression_on_standardised_rows():
    outcomes = [
        _outcome(k, method, matches, faithfulness)
        for k, (method, matches, faithfulness) in enumerate(
            [("saliency", True, 0.2), ("saliency", True, 0.1), ("saliency", False, -0.1)] * 3
            + [("gradcam", False, 0.0), ("gradcam", True, 0.3), ("gradcam", False, -0.2)] * 2
        )
    ]
    outcomes[:3] = [dataclasses.replace(o, kind="fire") for o in outcomes[:3]]
    calibration = fit_calibration(outcomes)
    assert calibration.methods == {"saliency": MethodRate(9, 6), "gradcam": MethodRate(6, 2)}
    assert calibration.classes == {
        "saliency": {"fire": MethodRate(3, 2), "fight": MethodRate(6, 4)},
        "gradcam": {"fight": MethodRate(6, 2)},
    }
    assert calibration.clips == 15
    prior = {"fire": math.log(3 / 2), "fight": math.log(5 / 3)}  # saliency's: (2+1)/(3+2) …
    rows = np.array(
        [
            [prior[o.kind] if o.method == "saliency" else math.log(3 / 5),
             o.values["faithfulness"], np.nan, 0.9]
            for o in outcomes
        ]
    )  # fmt: skip
    # agreement never measured: centre 0, scale 1; confidence constant: scale 1
    centre = np.array([*rows[:, :2].mean(0), 0.0, 0.9])
    scale = np.array([*rows[:, :2].std(0), 1.0, 1.0])
    z = np.nan_to_num((rows - centre) / scale)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(z, [o.matches for o in outcomes])
    np.testing.assert_allclose(calibration.centre, centre)
    np.testing.assert_allclose(calibration.scale, scale)
    np.testing.assert_allclose(calibration.coefficients, reference.coef_[0], atol=1e-9)
    assert calibration.intercept == pytest.approx(reference.intercept_[0])
    for o, p in zip(outcomes, reference.predict_proba(z)[:, 1], strict=True):
        assert calibration.probability(o.method, o.kind, o.values) == pytest.approx(p)
    assert 0 <= calibration.cross_validated_auc <= 1


def test_a_fit_needs_maps_that_match_and_maps_that_do_not():
    with pytest.raises(InputError, match="no validation map"):
        fit_calibration([])
    with pytest.raises(InputError, match="every validation map matched"):
        fit_calibration([_outcome(k, "saliency", True, 0.1) for k in range(3)])


@settings(max_examples=25, deadline=None)
@given(
    coefficients=st.lists(st.floats(-5, 5), min_size=len(FEATURES), max_size=len(FEATURES)),
    intercept=st.floats(-5, 5),
    faithfulness=st.floats(-2, 2),
    agreement=st.one_of(st.none(), st.floats(-1, 1)),
)
def test_the_recorded_calibration_gives_the_same_probabilities(
    coefficients, intercept, faithfulness, agreement
):
    classes = {"saliency": {"fire": MethodRate(3, 1)}}
    calibration = _calibration(intercept, coefficients=coefficients, classes=classes)
    again = TrustCalibration.from_record(json.loads(json.dumps(dataclasses.asdict(
        calibration.describe()))))  # fmt: skip
    values = {"faithfulness": faithfulness, "agreement": agreement, "confidence": 0.7}
    for method in ("saliency", "gradcam"):
        assert again.probability(method, "fire", values) == pytest.approx(
            calibration.probability(method, "fire", values), abs=1e-5
        )


def test_the_checkpoint_keeps_the_calibration_tied_to_its_weights(tmp_path, capsys):
    path = tiny_checkpoint(tmp_path / "m")
    weights = (path / "model.safetensors").read_bytes()
    assert calibration_of(load_model(path)) is None
    save_trust_calibration(path, _calibration(1.0))
    assert (path / "model.safetensors").read_bytes() == weights
    model = load_model(path)
    assert calibration_of(model).methods == _calibration(1.0).methods
    code, out, err = run_cli(["info", str(path)], capsys)
    assert code == 0 and "saliency 22/25, gradcam 5/25" in out, err
    assert calibration_of(model).probability("saliency", "fire", {}) == pytest.approx(
        1 / (1 + math.e**-1)
    )
    document = json.loads((path / "config.json").read_text())
    document["trust_calibration"]["features"] = ["prior"]
    (path / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="trust calibration .* is invalid: it reads"):
        calibration_of(load_model(path))
    document["trust_calibration"]["weights_sha256"] = "0" * 64
    (path / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="measured on other weights; calibrate again"):
        load_model(path)


@pytest.fixture
def calibrated_square():
    """The pointwise model of test_trust, its bright-square clip explained by two maps on the
    square, and a way to give the model a calibration."""
    model = pointwise_crnn(4, 8)
    clip = _bright_square_clip(model)
    on = np.zeros((4, 8, 8))
    on[:, :3, :3] = 1.0
    e = explain(model, clip, 0, methods=["saliency", "gradcam"], temporal=[])
    e = _with_maps(e, {"saliency": on, "gradcam": on})

    def calibrate(calibration):
        section = {"weights_sha256": "x", **dataclasses.asdict(calibration.describe())}
        model.checkpoint = SimpleNamespace(trust_calibration=section, path=None)

    return model, e, on, calibrate


def test_a_calibrated_verdict_follows_the_estimated_chance_of_matching(calibrated_square):
    model, e, _, calibrate = calibrated_square
    plain = trust_check(model, e, thresholds=LIMITS)
    assert plain["saliency"].verdict == "trustworthy" and plain["saliency"].reasons == []
    # every check passes, but maps like these matched the ground truth in 1 of 5 scenes
    rates = {"saliency": MethodRate(5, 1), "gradcam": MethodRate(50, 45)}
    calibrate(_calibration(0.0, rates, coefficients=(1.0, 0, 0, 0)))
    verdicts = trust_check(model, e, thresholds=LIMITS)
    low, high = verdicts["saliency"], verdicts["gradcam"]
    assert low.score == pytest.approx(2 / 7) and low.verdict == "contradictory"  # sigmoid(log(2/5))
    assert high.score == pytest.approx(46 / 52) and high.verdict == "trustworthy"
    assert low.reasons[0] == (
        "Saliency matched the ground truth in 20% of this model's validation scenes (1 of 5 "
        "maps); with this clip's checks, an estimated 29% chance that this map does"
    )
    assert "Grad-CAM matched the ground truth in 90%" in high.reasons[0]
    # the explained class's rate, where the calibration saw the class
    fights = {"saliency": {"fight": MethodRate(4, 3)}}
    calibrate(_calibration(0.0, rates, coefficients=(1.0, 0, 0, 0), classes=fights))
    verdict = trust_check(model, e, thresholds=LIMITS)["saliency"]
    assert verdict.score == pytest.approx(4 / 6) and verdict.verdict == "weak"
    assert verdict.reasons[0].startswith(
        "Saliency matched the ground truth in 75% of this model's validation fight scenes (3 of "
        "4 maps; 20% over all classes)"
    )
    assert low.record().checks["reliability"].value == pytest.approx(0.2857, abs=1e-4)
    # between the thresholds: weak; the thresholds are settings
    middle = TrustSettings(perturbations=0, fractions=SHARES, reliable=0.9, unreliable=0.25)
    assert {k: v.verdict for k, v in trust_check(model, e, thresholds=middle).items()} == {
        "saliency": "weak",
        "gradcam": "weak",
    }
    uncalibrated = trust_check(model, e, thresholds=LIMITS, calibrated=False)
    assert [c.name for c in uncalibrated["saliency"].checks] == [
        c.name for c in plain["saliency"].checks
    ]


def test_a_calibrated_verdict_keeps_empty_maps_unseen_methods_and_the_domain(calibrated_square):
    model, e, on, calibrate = calibrated_square
    calibrate(_calibration(3.0, {"saliency": MethodRate(10, 9)}))  # 95 % for every map
    e = _with_maps(e, {"gradcam": np.zeros_like(on)})
    verdicts = trust_check(model, e, thresholds=LIMITS)
    assert verdicts["saliency"].verdict == "trustworthy"
    # an empty map is contradictory whatever the calibration; gradcam was not calibrated
    assert verdicts["gradcam"].verdict == "contradictory"
    assert "reliability" not in {c.name for c in verdicts["gradcam"].checks}
    outside = {"checked": True, "verdict": "outside", "score": 1.7}
    verdict = trust_check(model, e, domain=outside, thresholds=LIMITS)["saliency"]
    assert verdict.verdict == "weak"
    assert any("unlike the model's training data" in r for r in verdict.reasons)


def test_bad_reliability_thresholds_are_refused():
    with pytest.raises(InputError, match="unreliable ≤ reliable"):
        TrustSettings(reliable=0.4, unreliable=0.6)


def test_validation_maps_are_scored_as_the_benchmark_scores_them(tmp_path):
    from vadx.data.synth import scene_specs
    from vadx.quality.interventions import actor_scores, intervention_truth

    config = SynthConfig(clips=(0, 0, 2), num_frames=8, size=(48, 48), seed=5,
                         classes=("fight", "normal"))  # fmt: skip
    generate(tmp_path / "d", config)
    model = pointwise_crnn(4, 16)  # reads bright colours: the fighters' clothes among them
    specs = list(scene_specs(tmp_path / "d").values())
    limits = TrustSettings(perturbations=0)
    outcomes = map_outcomes(model, specs, ["saliency", "activation"], limits)
    assert {o.method for o in outcomes} == {"saliency", "activation"}
    fights = [s for s in specs if s.kind == "fight"]
    for o in outcomes:
        truth = intervention_truth(model, fights[o.clip], 0)
        e = explain(model, truth.clip.clip[None], 0, methods=[o.method], temporal=[])
        scores = actor_scores(e.maps[o.method].display[0], truth)
        expected = scores["decisive_actor_first"] == 1 and scores["actor_rank_correlation"] >= 0.5
        assert o.matches == expected
        assert set(o.values) == {"faithfulness", "agreement", "stability", "confidence", "domain"}
        assert o.kind == "fight"


def test_cli_calibrate_trust_records_the_rates_and_refuses_bad_input(tmp_path, capsys):
    from vadx.models import save_model

    config = SynthConfig(clips=(1, 3, 0), num_frames=8, size=(48, 48), seed=4,
                         classes=("fight", "normal"))  # fmt: skip
    generate(tmp_path / "data", config)
    path = save_model(pointwise_crnn(4, 16), tmp_path / "m")
    argv = ["calibrate-trust", str(path), str(tmp_path / "data"), "--method", "saliency,activation"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    section = json.loads((path / "config.json").read_text())["trust_calibration"]
    assert set(section["methods"]) == {"saliency", "activation"} and section["clips"] == 3
    assert "model id is unchanged" in out and calibration_of(load_model(path)) is not None
    plain = tmp_path / "plain"  # the same clips, not known as vadx synth scenes
    shutil.copytree(tmp_path / "data", plain)
    (plain / "manifest.json").unlink()
    code, _, err = run_cli([*argv[:2], str(plain)], capsys)
    assert code == 2 and "not a readable vadx synth manifest" in err, err
    for bad, message in [
        (["--method", "nope"], "--method 'nope': the map methods are"),
        (["--clips", "0"], "'--clips': must be an integer from 1 to 10,000"),
        (["--val", str(tmp_path / "missing")], "not found"),
    ]:
        code, _, err = run_cli([*argv, *bad], capsys)
        assert code == 2 and err.startswith("error: ") and message in err, err


def test_explain_trust_on_a_calibrated_model_records_the_reliability(tmp_path, capsys):
    from vadx.models import save_model

    path = save_model(pointwise_crnn(4, 16), tmp_path / "m")
    save_trust_calibration(path, _calibration(3.0, {"saliency": MethodRate(10, 9)}))
    video, _ = long_video(tmp_path / "v.mp4", 4, [("fight", 8)], (48, 64))
    argv = ["explain", str(path), str(video), "--out", str(tmp_path / "t"), "--trust"]
    code, _, err = run_cli([*argv, "--methods", "saliency,gradcam", "--temporal", "gradient_norm"],
                           capsys)  # fmt: skip
    assert code == 0, err
    trust = json.loads((tmp_path / "t" / "manifest.json").read_text())["trust"]
    saliency = trust["saliency"]
    assert saliency["checks"]["reliability"]["value"] == round(1 / (1 + math.exp(-3)), 4)
    assert saliency["verdict"] == "trustworthy" and saliency["score"] == pytest.approx(0.9526)
    assert saliency["reasons"][0].startswith(
        "Saliency matched the ground truth in 90% of this model's validation scenes (9 of 10 maps)"
    )
    # a method the calibration did not see, and frame curves: the checks' verdict alone
    assert "reliability" not in trust["gradcam"]["checks"]
    assert "reliability" not in trust["gradient_norm"]["checks"]
    assert "reliability pass" in (tmp_path / "t" / "report.html").read_text()
