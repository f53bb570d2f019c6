"""Input-gradient methods: by hand, against the per-frame loop, completeness of IG."""

from __future__ import annotations

import pytest
import torch

from tests.explain_models import (
    COLOUR_WEIGHTS,
    loop_saliency,
    pointwise_crnn,
    pointwise_feature_grads,
)
from vadx.errors import ConfigError
from vadx.explain import GradientXInput, GuidedBackprop, IntegratedGradients, Saliency, SmoothGrad
from vadx.explain.baselines import baseline_clip


def test_saliency_by_hand_on_the_pointwise_model():
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(0)) - 0.3
    weights = torch.tensor(COLOUR_WEIGHTS).view(1, 3, 1, 1)
    alive = (clip[0] * weights).sum(1) > 0
    features = ((clip[0] * weights).sum(1).relu()).mean((-2, -1))
    dy_df = torch.tensor(pointwise_feature_grads(features.tolist())).view(-1, 1, 1)
    # ∂y/∂x[t,c,i,j] = ∂y/∂f_t / (h·w) · w_c where the ReLU is open; max over c of |·|
    expected = dy_df.abs() / 16 * max(abs(w) for w in COLOUR_WEIGHTS) * alive
    torch.testing.assert_close(Saliency(model).attribute(clip, target="fight")[0], expected)
    gxi = GradientXInput(model).attribute(clip, target="fight")[0]
    torch.testing.assert_close(gxi, dy_df / 16 * (clip[0] * weights).sum(1) * alive)


def test_one_pass_saliency_equals_the_per_frame_loop(tiny_model, tiny_clip):
    fast = Saliency(tiny_model).attribute(tiny_clip, target=[0, 3])
    slow = torch.stack(
        [
            loop_saliency(tiny_model, tiny_clip[b : b + 1], target)[0]
            for b, target in ((0, 0), (1, 3))
        ]
    )
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-8)
    assert (fast.flatten(1).sum(1) > 0).all()


@pytest.mark.parametrize("baseline", ["zeros", "black", "blur"])
def test_integrated_gradients_is_complete(tiny_model, tiny_clip, baseline):
    method = IntegratedGradients(tiny_model, steps=48, baseline=baseline, batch_frames=16)
    attributions = method.attribute(tiny_clip, target=1)
    with torch.no_grad():
        gap = (
            tiny_model(tiny_clip)[:, 1]
            - tiny_model(baseline_clip(tiny_model, tiny_clip, baseline))[:, 1]
        )
    total = attributions.flatten(1).sum(1)
    torch.testing.assert_close(total, gap, rtol=0.02, atol=1e-4)
    assert gap.abs().min() > 1e-3  # the check is not trivially 0 = 0


def test_integrated_gradients_reports_its_completeness_delta(tiny_model, tiny_clip):
    method = IntegratedGradients(tiny_model, steps=8)
    raw, extras = method.attribute(tiny_clip, 2, return_extras=True)
    with torch.no_grad():
        gap = tiny_model(tiny_clip)[:, 2] - tiny_model(torch.zeros_like(tiny_clip))[:, 2]
    torch.testing.assert_close(extras["delta"], gap - raw.flatten(1).sum(1))
    torch.testing.assert_close(method.attribute(tiny_clip, 2), raw)


def test_attribute_returns_the_extras_the_engine_records(tiny_model, tiny_clip):
    from vadx.explain import explain
    from vadx.explain.base import Output

    e = explain(
        tiny_model,
        tiny_clip,
        2,
        methods=["integrated_gradients"],
        temporal=[],
        options={"integrated_gradients": {"steps": 8}},
    )
    out = IntegratedGradients(tiny_model, steps=8).attribute(tiny_clip, 2, return_extras=True)
    assert isinstance(out, Output) and set(out.extras) == set(e["integrated_gradients"].extras)
    recorded = e["integrated_gradients"]
    torch.testing.assert_close(out.extras["delta"], torch.tensor(recorded.extras["delta"]))
    torch.testing.assert_close(out.raw, torch.tensor(recorded.raw))


def test_integrated_gradients_memory_does_not_grow_with_steps(tiny_model, tiny_clip):
    """Internal batching: the largest batch seen by the backbone is bounded by batch_frames."""
    seen: list[int] = []
    handle = tiny_model.backbone.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        IntegratedGradients(tiny_model, steps=40, batch_frames=16).attribute(tiny_clip)
    finally:
        handle.remove()
    assert max(seen) <= 16 and sum(seen) >= 40 * 8


def test_integrated_gradients_accepts_a_baseline_tensor_and_rejects_a_bad_one(
    tiny_model, tiny_clip
):
    grey = torch.full((3, 1, 1), 0.1)
    out = IntegratedGradients(tiny_model, steps=4, baseline=grey).attribute(tiny_clip)
    assert out.shape == (2, 4, 32, 32)
    with pytest.raises(ConfigError, match="does not broadcast"):
        IntegratedGradients(tiny_model, baseline=torch.zeros(5, 2)).attribute(tiny_clip)
    with pytest.raises(ConfigError, match="baseline must be one of"):
        IntegratedGradients(tiny_model, baseline="grey")
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        IntegratedGradients(tiny_model, steps=0)


def test_smoothgrad_is_seeded_and_tends_to_saliency_as_noise_vanishes(tiny_model, tiny_clip):
    one = SmoothGrad(tiny_model, samples=3, seed=5).attribute(tiny_clip)
    again = SmoothGrad(tiny_model, samples=3, seed=5, batch_frames=8).attribute(tiny_clip)
    torch.testing.assert_close(one, again)
    other = SmoothGrad(tiny_model, samples=3, seed=6).attribute(tiny_clip)
    assert not torch.allclose(one, other)
    quiet = SmoothGrad(tiny_model, samples=2, noise=1e-7).attribute(tiny_clip)
    torch.testing.assert_close(
        quiet, Saliency(tiny_model).attribute(tiny_clip), rtol=1e-3, atol=1e-6
    )


def test_guided_backprop_passes_only_positive_gradients_through_relus():
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(0)) - 0.3
    # the gradient reaching the ReLU is ∂y/∂f_t/(h·w) > 0 for "fight": guided == plain saliency
    torch.testing.assert_close(
        GuidedBackprop(model).attribute(clip, "fight"), Saliency(model).attribute(clip, "fight")
    )
    # for "normal" it is negative everywhere: the guided rule blocks all of it
    assert torch.count_nonzero(GuidedBackprop(model).attribute(clip, "normal")) == 0
    assert torch.count_nonzero(Saliency(model).attribute(clip, "normal")) > 0
