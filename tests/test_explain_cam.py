"""Grad-CAM family and activation maps: exact values by hand, the per-frame loop reference."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY
from tests.explain_models import (
    COLOUR_WEIGHTS,
    hooks_left,
    loop_gradcam,
    pointwise_crnn,
    pointwise_feature_grads,
)
from vadx.errors import ConfigError
from vadx.explain import (
    ActivationMap,
    GradCAM,
    GradCAMPlusPlus,
    GuidedBackprop,
    GuidedGradCAM,
    LayerCAM,
    explain,
)
from vadx.explain.normalise import upsample
from vadx.models import CRNN


def pointwise_clip(seed: int = 0, steps: int = 4, size: int = 4) -> torch.Tensor:
    return torch.rand(1, steps, 3, size, size, generator=torch.Generator().manual_seed(seed))


def by_hand(clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations ``A`` (T, h, w) of the pointwise backbone and ``∂y/∂f_t`` (T,)."""
    weights = torch.tensor(COLOUR_WEIGHTS).view(1, 3, 1, 1)
    activations = (clip[0] * weights).sum(1).relu()
    grads = torch.tensor(pointwise_feature_grads(activations.mean((-2, -1)).tolist()))
    return activations, grads


def test_gradcam_frame_weighting_equals_the_hand_computed_map():
    model, clip = pointwise_crnn(), pointwise_clip()
    activations, feature_grads = by_hand(clip)
    pixels = activations.shape[-1] * activations.shape[-2]
    # G = ∂y/∂f_t / (h·w) at every pixel, so w_t = ∂y/∂f_t / (h·w) and cam = w_t · A_t
    expected = (feature_grads.view(-1, 1, 1) / pixels * activations).relu()
    cam = GradCAM(model, layer="relu").attribute(clip, target="fight")
    torch.testing.assert_close(cam[0], expected)
    assert cam[0, -1].sum() > cam[0, 0].sum() > 0  # the later frame weighs more: ½^(T−t)


def test_gradcam_clip_weighting_uses_one_weight_for_all_frames():
    model, clip = pointwise_crnn(), pointwise_clip()
    activations, feature_grads = by_hand(clip)
    pixels = activations.shape[-1] * activations.shape[-2]
    expected = feature_grads.mean() / pixels * activations
    cam = GradCAM(model, layer="relu", weighting="clip").attribute(clip, target="fight")
    torch.testing.assert_close(cam[0], expected)


def test_layercam_and_gradcam_plus_plus_by_hand():
    model, clip = pointwise_crnn(), pointwise_clip(1)
    activations, feature_grads = by_hand(clip)
    pixels = activations.shape[-1] * activations.shape[-2]
    g = (feature_grads / pixels).view(-1, 1, 1)
    torch.testing.assert_close(
        LayerCAM(model, layer="relu").attribute(clip, target="fight")[0], g * activations
    )
    # gated by the map at another layer: the geometric mean of both, each divided by its
    # largest value over the clip (here the conv's map: before the ReLU, the same positive part)
    single = (g * activations)[None]
    gated = LayerCAM(model, layer="relu", gate="conv").attribute(clip, target="fight")
    conv_map = LayerCAM(model, layer="conv", gate=None).attribute(clip, target="fight")
    expected = (single / single.max() * conv_map / conv_map.max()).sqrt()
    torch.testing.assert_close(gated, expected)
    assert LayerCAM(model, layer="relu", gate="relu").gate is None  # no layer gates itself
    alpha = g**2 / (2 * g**2 + activations.sum((-2, -1), keepdim=True) * g**3 + 1e-7)
    weight = pixels * alpha * g  # Σ_ij over h·w equal terms
    torch.testing.assert_close(
        GradCAMPlusPlus(model, layer="relu").attribute(clip, target="fight")[0],
        weight * activations,
    )


def test_explaining_the_other_class_flips_the_sign_and_relu_zeroes_the_map():
    model, clip = pointwise_crnn(), pointwise_clip()
    cam = GradCAM(model, layer="relu").attribute(clip, target="normal")
    assert torch.count_nonzero(cam) == 0  # ∂y/∂f < 0 everywhere: Grad-CAM's ReLU keeps nothing


def test_one_pass_gradcam_equals_the_per_frame_loop_reference(tiny_model, tiny_clip):
    for weighting_layer in ("block5_conv4", "block3_conv2"):
        fast = GradCAM(tiny_model, layer=weighting_layer).attribute(tiny_clip, target=1)
        slow = loop_gradcam(tiny_model, tiny_clip, weighting_layer, target=1)
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-7)
        assert (slow.flatten(1).sum(1) > 0).all()  # both videos have maps


def test_activation_map_is_the_channel_mean_and_top_channels_are_most_active(tiny_model, tiny_clip):
    captured = []
    layer = tiny_model.get_layer("block4_conv4")
    handle = layer.register_forward_hook(lambda m, i, out: captured.append(out.detach()))
    with torch.no_grad():
        tiny_model(tiny_clip)
    handle.remove()
    activations = captured[0].unflatten(0, tiny_clip.shape[:2])
    method = ActivationMap(tiny_model, layer="block4_conv4", top_k=3)
    torch.testing.assert_close(method.attribute(tiny_clip), activations.mean(2))
    out = method.attribute(tiny_clip, return_extras=True)
    expected = activations.mean((1, -2, -1)).argsort(1, descending=True)[:, :3]
    assert torch.equal(out.extras["channels"], expected)
    for b in range(2):
        for rank in range(3):
            torch.testing.assert_close(
                out.extras["channel_maps"][b, rank], activations[b, :, expected[b, rank]]
            )


def test_guided_gradcam_is_guided_saliency_times_upsampled_cam(tiny_model, tiny_clip):
    guided = GuidedBackprop(tiny_model).attribute(tiny_clip, target=0)
    cam = GradCAM(tiny_model).attribute(tiny_clip, target=0)
    both = GuidedGradCAM(tiny_model).attribute(tiny_clip, target=0)
    torch.testing.assert_close(both, guided * upsample(cam, tiny_clip.shape[-2:]))
    assert guided.abs().sum() > 0


def test_bad_settings_are_refused_with_the_choices(tiny_model):
    with pytest.raises(ConfigError, match="weighting must be one of frame, clip"):
        GradCAM(tiny_model, weighting="time")
    with pytest.raises(ConfigError, match="unknown layer 'block9'"):
        GradCAM(tiny_model, layer="block9")
    with pytest.raises(ConfigError, match="top_k must be a positive integer"):
        ActivationMap(tiny_model, top_k=0)
    with pytest.raises(ConfigError, match=r"CNN \+ sequence models .*Linear lacks backbone"):
        GradCAM(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_lstm_and_efficientnet_models_are_explained_too(tiny_clip):
    torch.manual_seed(0)
    lstm = CRNN(TINY.replace(rnn="lstm")).eval()
    assert GradCAM(lstm).attribute(tiny_clip).abs().sum() > 0
    lite = CRNN(TINY.replace(backbone="efficientnet_lite0", backbone_args={})).eval()
    # its default layer is called "head", like the CRNN's MLP head: the backbone's must win
    assert lite.default_layer == "head" and GradCAM(lite).layer == "head"
    default = GradCAM(lite).attribute(tiny_clip[:1, :2])
    assert default.shape == (1, 2, 1, 1) and hooks_left(lite) == 0
    cam = GradCAM(lite, layer="block6").attribute(tiny_clip[:1, :2])
    slow = loop_gradcam(lite, tiny_clip[:1, :2], "block6", int(lite(tiny_clip[:1, :2]).argmax()))
    torch.testing.assert_close(cam, slow, rtol=1e-4, atol=1e-7)


def test_layercam_looks_at_the_last_stride_8_layer_unless_told_otherwise(tiny_model, tiny_clip):
    # VGG19: block4_conv4 runs at 1/8 of the frame (32 px frames → 4×4 maps), Grad-CAM stays
    # at the last conv block (2×2)
    assert tiny_model.fine_layer == "block4_conv4" and LayerCAM(tiny_model).layer == "block4_conv4"
    assert GradCAM(tiny_model).layer == tiny_model.default_layer == "block5_conv4"
    assert LayerCAM(tiny_model).attribute(tiny_clip).shape == (2, 4, 4, 4)
    assert LayerCAM(tiny_model, layer="block5_conv4").attribute(tiny_clip).shape == (2, 4, 2, 2)
    # by default gated by the last conv block; an explicit layer stands alone
    assert LayerCAM(tiny_model).gate == "block5_conv4"
    assert LayerCAM(tiny_model, layer="block4_conv4").gate is None
    fine = LayerCAM(tiny_model, gate=None).attribute(tiny_clip, 0)
    last = LayerCAM(tiny_model, layer="block5_conv4").attribute(tiny_clip, 0)
    fine = fine / fine.flatten(1).amax(1)[:, None, None, None]
    last = last / last.flatten(1).amax(1)[:, None, None, None]
    slow = (fine * upsample(last, (4, 4)).clamp_min(0)).sqrt()
    torch.testing.assert_close(LayerCAM(tiny_model).attribute(tiny_clip, 0), slow)
    lite = CRNN(TINY.replace(backbone="efficientnet_lite0", backbone_args={})).eval()
    assert lite.fine_layer == "block4" and LayerCAM(lite).layer == "block4"
    assert LayerCAM(lite).attribute(torch.randn(1, 2, 3, 64, 64)).shape == (1, 2, 8, 8)
    e = explain(tiny_model, tiny_clip, methods=("layercam", "gradcam"), temporal=())
    assert e["layercam"].settings["layer"] == "block4_conv4"
    assert e["gradcam"].settings["layer"] == "block5_conv4"
    assert e["layercam"].display.shape == (2, 4, 32, 32)
    # a backbone that names no fine layer: LayerCAM uses its default layer
    pointwise = pointwise_crnn()
    assert pointwise.fine_layer == pointwise.default_layer == LayerCAM(pointwise).layer
