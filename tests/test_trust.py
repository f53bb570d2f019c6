"""The trust check of one explanation, on hand-built models whose answers are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.explain_models import pointwise_crnn
from vadx.errors import InputError
from vadx.explain import explain
from vadx.quality import trust as trust_module
from vadx.quality.trust import TrustSettings, trust_check

STEPS, SIZE = 4, 8
#: 8×8 frames have 256 pixels: the default shares (0.5–2 %) would remove 1–5 of them
SHARES = (0.02, 0.05, 0.1)
LIMITS = TrustSettings(perturbations=0, fractions=SHARES)


def _bright_square_clip(model) -> torch.Tensor:
    """Frames dark but for a bright 3×3 square at the top left, in the model's input space."""
    frames = torch.zeros(1, STEPS, 3, SIZE, SIZE)
    frames[..., :3, :3] = 1.0
    mean = torch.tensor(model.config.mean)[:, None, None]
    std = torch.tensor(model.config.std)[:, None, None]
    return (frames - mean) / std


def _with_maps(e, maps: dict[str, np.ndarray]):
    """``e`` with its display maps replaced by hand-made ones ``(T, H, W)``."""
    replaced = {
        name: dataclasses.replace(a, display=maps[name][None]) if name in maps else a
        for name, a in e.maps.items()
    }
    return dataclasses.replace(e, maps=replaced)


@pytest.fixture
def square():
    model = pointwise_crnn(STEPS, SIZE)
    clip = _bright_square_clip(model)
    on = np.zeros((STEPS, SIZE, SIZE))
    on[:, :3, :3] = 1.0
    return model, clip, on


def test_a_map_on_what_the_model_reads_passes_and_one_beside_it_is_contradicted(square):
    # the pointwise model's only evidence is the bright square (ReLU of a weighted colour sum,
    # averaged): blurring the square lowers the fight logit; blurring the dark pixels around
    # it spreads the light and raises it
    model, clip, on = square
    e = explain(model, clip, 0, methods=["saliency", "gradcam"], temporal=[])
    e = _with_maps(e, {"saliency": on, "gradcam": 1.0 - on})
    verdicts = trust_check(model, e, thresholds=LIMITS)
    on_square = {c.name: c for c in verdicts["saliency"].checks}
    beside = {c.name: c for c in verdicts["gradcam"].checks}
    assert on_square["faithfulness"].status == "pass" and on_square["faithfulness"].value > 0.1
    assert beside["faithfulness"].status == "fail" and beside["faithfulness"].value <= 0
    # the two maps are each other's complement: they point in opposite places
    assert on_square["agreement"].status == beside["agreement"].status == "fail"
    assert on_square["agreement"].value == pytest.approx(-1.0)
    assert verdicts["gradcam"].verdict == verdicts["saliency"].verdict == "contradictory"
    assert "no more than removing random pixels" in verdicts["gradcam"].reasons[0]
    assert any("point elsewhere" in r for r in verdicts["saliency"].reasons)


def test_methods_that_agree_on_a_faithful_map_are_trustworthy(square):
    model, clip, on = square
    e = explain(model, clip, 0, methods=["saliency", "gradcam"], temporal=[])
    blurred = on.copy()
    blurred[:, 3, :3] = 0.5  # nearly the same map
    e = _with_maps(e, {"saliency": on, "gradcam": blurred})
    verdicts = trust_check(model, e, thresholds=LIMITS)
    for verdict in verdicts.values():
        assert verdict.verdict == "trustworthy", verdict.reasons
        assert verdict.reasons == [] and 0 < verdict.score <= 1
    record = verdicts["saliency"].record()
    assert record.verdict == "trustworthy"
    assert set(record.checks) == {
        "faithfulness", "agreement", "stability", "confidence", "domain",
    }  # fmt: skip
    assert record.checks["stability"].status == "skipped"
    assert record.checks["domain"].status == "skipped"  # no domain statistics
    written = dataclasses.asdict(record)  # the JSON: keys in this order
    assert list(written) == ["verdict", "score", "reasons", "checks"]
    assert list(written["checks"]["domain"]) == ["value", "status", "reason"]


def test_a_model_that_ignores_its_input_is_flagged(square):
    model, clip, _ = square
    with torch.no_grad():
        model.head[0].weight.zero_()
        model.head[0].bias.copy_(torch.tensor([1.0, 0.0]))
    e = explain(model, clip, 0, methods=["saliency", "gradcam", "activation"],
                temporal=["frame_occlusion"])  # fmt: skip
    verdicts = trust_check(model, e)
    assert set(verdicts) == {"saliency", "gradcam", "activation", "frame_occlusion"}
    for verdict in verdicts.values():
        assert verdict.verdict == "contradictory"
        assert "does not depend on the frames" in verdict.reasons[0]


def test_an_empty_map_is_flagged(square):
    model, clip, on = square
    e = explain(model, clip, 0, methods=["saliency", "gradcam"], temporal=[])
    e = _with_maps(e, {"saliency": on, "gradcam": np.zeros_like(on)})
    verdict = trust_check(model, e, thresholds=LIMITS)["gradcam"]
    assert verdict.verdict == "contradictory"
    assert "empty" in verdict.reasons[0]


def test_confidence_and_the_domain_make_a_map_weak(square):
    model, clip, on = square
    e = explain(model, clip, 0, methods=["saliency"], temporal=[])
    e = _with_maps(e, {"saliency": on})
    probability = float(e.probabilities[0, 0])
    strict = TrustSettings(
        perturbations=0, fractions=SHARES, confident=min(1.0, probability + 0.01)
    )
    outside = {"checked": True, "verdict": "outside", "score": 1.7}
    verdict = trust_check(model, e, domain=outside, thresholds=strict)["saliency"]
    checks = {c.name: c for c in verdict.checks}
    assert verdict.verdict == "weak"
    assert checks["confidence"].status == "weak" and checks["domain"].status == "weak"
    assert checks["agreement"].status == "skipped"  # one map: nothing to compare with
    assert any("not confident" in r for r in verdict.reasons)
    assert any("unlike the model's training data" in r for r in verdict.reasons)
    inside = {"checked": True, "verdict": "inside", "score": 0.4}
    assert trust_check(model, e, domain=inside, thresholds=LIMITS)["saliency"].verdict == (
        "trustworthy"
    )


def test_a_frame_curve_ranking_the_frames_the_model_remembers_first_is_faithful(square):
    # the GRU halves its memory every frame: the last frame weighs most, the first least
    model, clip, _ = square
    clip = clip * torch.linspace(0.6, 1.4, STEPS)[None, :, None, None, None]
    e = explain(model, clip, 0, methods=["saliency"], temporal=["gradient_norm"])
    recency = np.arange(1.0, STEPS + 1)
    right = dataclasses.replace(e.temporal["gradient_norm"], scores=recency[None])
    wrong = dataclasses.replace(e.temporal["gradient_norm"], scores=-recency[None])
    limits = LIMITS
    for curve, status in ((right, "pass"), (wrong, "fail")):
        e2 = dataclasses.replace(e, temporal={"gradient_norm": curve})
        check = {
            c.name: c for c in trust_check(model, e2, thresholds=limits)["gradient_norm"].checks
        }
        assert check["faithfulness"].status == status, check["faithfulness"]


def test_the_stability_check_reads_the_same_maps_again(square):
    model, clip, _ = square
    clip = clip + 0.3 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    e = explain(model, clip, 0, methods=["saliency", "gradcam"], temporal=[])
    calm = trust_check(model, e, thresholds=TrustSettings(noise=0.001))
    for verdict in calm.values():
        stability = {c.name: c for c in verdict.checks}["stability"]
        assert stability.status == "pass" and stability.value > 0.9
    shaken = trust_check(model, e, thresholds=TrustSettings(noise=1.0, stable=0.99))
    saliency = {c.name: c for c in shaken["saliency"].checks}["stability"]
    assert saliency.status == "weak" and "changes under noise" in saliency.reason


def test_only_changed_frames_go_through_the_cnn_again_with_the_same_result(square):
    model, clip, _ = square
    variants = clip.repeat(3, 1, 1, 1, 1)
    variants[1, 2] += 1.0  # one frame changed
    variants[2] = 0.0  # all of them
    with torch.no_grad():
        features = model.frame_features(clip)[0]
        fast = trust_module._frame_probabilities(model, variants, clip[0], features, 0)
        slow = model(variants).softmax(1)[:, 0].numpy()
    np.testing.assert_allclose(fast, slow, atol=1e-6)


def test_bad_thresholds_and_batches_are_refused(square):
    model, clip, _ = square
    with pytest.raises(InputError, match="faithful must be in"):
        TrustSettings(faithful=float("nan"))
    with pytest.raises(InputError, match="fractions"):
        TrustSettings(fractions=(0.0, 0.5))
    e = explain(model, clip.repeat(2, 1, 1, 1, 1), 0, methods=["saliency"], temporal=[])
    with pytest.raises(InputError, match="one clip"):
        trust_check(model, e)


def test_the_control_takes_as_many_pixels_in_the_same_frames_and_top_breaks_ties_at_random():
    rng = np.random.default_rng(0)
    chosen = torch.zeros(2, 5, 1, 6, 6, dtype=torch.bool)
    chosen[0, 1, 0, :2, :3] = True  # 6 pixels in frame 1
    chosen[1, 1, 0, :2, :3] = True
    chosen[1, 4, 0, 5, :] = True  # and 6 in frame 4
    eligible = np.ones((5, 6, 6), bool)
    eligible[:, :, 0] = False  # a letter-box column
    control = trust_module._same_frames_at_random(chosen, eligible, rng)
    assert torch.equal(control.flatten(2).sum(-1), chosen.flatten(2).sum(-1))
    assert not control[..., 0].any()  # never on the padding
    values = np.array([3.0, 1.0, 3.0, 3.0, 0.0])
    picks = {tuple(sorted(trust_module._top(values, 2, rng))) for _ in range(50)}
    assert picks == {(0, 2), (0, 3), (2, 3)}  # two of the three tied maxima, each pair seen
    assert sorted(trust_module._top(values, 4, rng)) == [0, 1, 2, 3]
