"""Occlusion in feature space equals occlusion by re-running the whole model; Shapley values."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch

from tests.explain_models import GRU_A, HEAD_C, pointwise_crnn, pointwise_output
from vadx.errors import ConfigError
from vadx.explain import (
    DEFAULT_TEMPORAL,
    FrameOcclusion,
    FrameShapley,
    GradCAMMass,
    GradientNorm,
    Occlusion,
)
from vadx.explain.baselines import baseline_clip, gaussian_blur
from vadx.explain.occlusion import patch_starts


def full_model_score(model, clip, target: int) -> torch.Tensor:
    with torch.no_grad():
        return model(clip)[:, target]


@pytest.mark.parametrize("baseline", ["mean", "zeros", "black", "blur", "previous", "drop"])
def test_frame_occlusion_in_feature_space_equals_rerunning_the_model(
    tiny_model, tiny_clip, baseline
):
    target = 3
    fast = FrameOcclusion(tiny_model, baseline=baseline).attribute(tiny_clip, target=target)
    base = baseline_clip(tiny_model, tiny_clip, "zeros" if baseline == "drop" else baseline)
    original = full_model_score(tiny_model, tiny_clip, target)
    slow = []
    for t in range(tiny_clip.shape[1]):
        if baseline == "drop":
            occluded = torch.cat([tiny_clip[:, :t], tiny_clip[:, t + 1 :]], dim=1)
        else:
            occluded = tiny_clip.clone()
            occluded[:, t] = base[:, t]
        slow.append(original - full_model_score(tiny_model, occluded, target))
    torch.testing.assert_close(fast, torch.stack(slow, 1), rtol=1e-4, atol=1e-6)
    assert fast.abs().sum() > 0


def test_frame_occlusion_by_hand_on_the_pointwise_model():
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    features = model.frame_features(clip)[0, :, 0].tolist()
    scores = FrameOcclusion(model, baseline="zeros").attribute(clip, "fight")[0]
    # a zero frame has feature ReLU(0) = 0
    expected = [
        pointwise_output(features) - pointwise_output([*features[:t], 0.0, *features[t + 1 :]])
        for t in range(4)
    ]
    torch.testing.assert_close(scores, torch.tensor(expected))


def test_spatial_occlusion_equals_occluding_the_clip_and_rerunning(tiny_model, tiny_clip):
    target, patch, stride = 0, 16, 8
    fast = Occlusion(
        tiny_model, patch=patch, stride=stride, baseline="blur", batch_frames=7
    ).attribute(tiny_clip, target)
    base = baseline_clip(tiny_model, tiny_clip, "blur")
    original = full_model_score(tiny_model, tiny_clip, target)
    total = torch.zeros(2, 4, 32, 32)
    count = torch.zeros(32, 32)
    starts = patch_starts(32, patch, stride)
    assert starts == [0, 8, 16]
    for y, x in itertools.product(starts, starts):
        count[y : y + patch, x : x + patch] += 1
        for t in range(4):
            occluded = tiny_clip.clone()
            occluded[:, t, :, y : y + patch, x : x + patch] = base[
                :, t, :, y : y + patch, x : x + patch
            ]
            drop = original - full_model_score(tiny_model, occluded, target)
            total[:, t, y : y + patch, x : x + patch] += drop[:, None, None]
    torch.testing.assert_close(fast, total / count, rtol=1e-4, atol=1e-6)


def test_patch_starts_cover_the_side_flush_with_the_end():
    assert patch_starts(10, 4, 3) == [0, 3, 6]
    assert patch_starts(11, 4, 3) == [0, 3, 6, 7]
    assert patch_starts(4, 4, 2) == [0]


def test_frame_shapley_equals_the_permutation_definition_and_is_efficient(tiny_model, tiny_clip):
    target = 2
    method = FrameShapley(tiny_model, segments=4, baseline="mean")
    out = method.attribute(tiny_clip, target, return_extras=True)
    base = baseline_clip(tiny_model, tiny_clip, "mean")

    @functools.cache
    def value(present: frozenset[int]) -> torch.Tensor:
        clip = base.clone()
        for t in present:
            clip[:, t] = tiny_clip[:, t]
        return full_model_score(tiny_model, clip, target)

    expected = torch.zeros(2, 4)
    for order in itertools.permutations(range(4)):
        present: frozenset[int] = frozenset()
        for player in order:
            before = value(present)
            present = present | {player}
            expected[:, player] += (value(present) - before) / math.factorial(4)
    torch.testing.assert_close(out.extras["segment_values"], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.raw, expected)  # one frame per segment
    gap = value(frozenset(range(4))) - value(frozenset())
    torch.testing.assert_close(out.raw.sum(1), gap, rtol=1e-4, atol=1e-6)


def test_frame_shapley_by_hand_on_the_pointwise_model_with_its_default_black_baseline():
    # y = c·Σ_t ½^(T−t+1)·tanh(a·f_t) is additive over frames, so each frame's Shapley value is
    # its own term minus the black frame's term
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    features = model.frame_features(clip)[0, :, 0].tolist()
    black = model.frame_features(baseline_clip(model, clip, "black"))[0, 0, 0].item()
    method = FrameShapley(model)
    assert method.settings() == {
        "segments": "one per frame",
        "baseline": "black",
        "permutations": "auto",
        "seed": 0,
    }
    expected = torch.tensor(
        [
            HEAD_C * 0.5 ** (5 - t) * (math.tanh(GRU_A * f) - math.tanh(GRU_A * black))
            for t, f in enumerate(features, start=1)
        ]
    )
    assert method.orders(4) == 0  # 16 coalitions: exact
    torch.testing.assert_close(method.attribute(clip, "fight")[0], expected)
    # an additive model's marginal gains are the same in every order: sampling is exact too
    sampled = FrameShapley(model, permutations=3).attribute(clip, "fight")[0]
    torch.testing.assert_close(sampled, expected)
    assert DEFAULT_TEMPORAL[0] == "frame_shapley"


def test_sampled_frame_shapley_is_efficient_and_near_the_exact_values(tiny_model, tiny_clip):
    exact = FrameShapley(tiny_model, permutations=0).attribute(tiny_clip, 1)
    sampled = FrameShapley(tiny_model, permutations=200, seed=1).attribute(tiny_clip, 1)
    # every order's gains telescope to y(clip) − y(all baselines)
    torch.testing.assert_close(sampled.sum(1), exact.sum(1), rtol=1e-4, atol=1e-5)
    assert (sampled - exact).abs().max() <= 0.1 * exact.abs().max()
    again = FrameShapley(tiny_model, permutations=200, seed=1).attribute(tiny_clip, 1)
    assert torch.equal(sampled, again)
    # 20 frames, one segment each: sampled by default (2^20 coalitions)
    assert FrameShapley(tiny_model).orders(20) == FrameShapley.PERMUTATIONS
    with pytest.raises(ConfigError, match="permutations must be ≥ 0"):
        FrameShapley(tiny_model, permutations=-1)
    with pytest.raises(ConfigError, match="or sample orders .permutations ≥ 1., got 20"):
        FrameShapley(tiny_model, permutations=0).attribute(torch.zeros(1, 20, 3, 32, 32), 1)


def test_frame_shapley_spreads_a_segment_value_over_its_frames(tiny_model, tiny_clip):
    out = FrameShapley(tiny_model, segments=2).attribute(tiny_clip, 0, return_extras=True)
    assert out.extras["segments"].tolist() == [[0, 1], [2, 3]]
    torch.testing.assert_close(out.raw[:, 0], out.extras["segment_values"][:, 0] / 2)
    torch.testing.assert_close(out.raw[:, 0], out.raw[:, 1])
    with pytest.raises(ConfigError, match="at most 12 segments"):
        FrameShapley(tiny_model, segments=13, permutations=0)


def test_gradient_norm_and_gradcam_mass_by_hand():
    from tests.explain_models import pointwise_feature_grads

    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    features = model.frame_features(clip)[0, :, 0]
    grads = torch.tensor(pointwise_feature_grads(features.tolist()))
    torch.testing.assert_close(GradientNorm(model).attribute(clip, "fight")[0], grads.abs())
    # cam_t = ∂y/∂f_t/(h·w)·A_t, so its mass is ∂y/∂f_t · mean(A_t) = ∂y/∂f_t · f_t
    mass = GradCAMMass(model, layer="relu").attribute(clip, "fight")[0]
    torch.testing.assert_close(mass, grads * features)


def test_gaussian_blur_keeps_constants_and_mass():
    flat = torch.full((1, 3, 9, 7), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    spike = torch.zeros(1, 1, 21, 21)
    spike[0, 0, 10, 10] = 1.0
    blurred = gaussian_blur(spike, 1.5)
    torch.testing.assert_close(blurred.sum(), torch.tensor(1.0))
    assert blurred[0, 0, 10, 10] == blurred.max() and blurred[0, 0, 10, 11] == blurred[0, 0, 11, 10]
