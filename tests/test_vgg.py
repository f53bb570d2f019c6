from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import torchvision_vgg19_state_dict
from vadx.errors import ConfigError, WeightsError
from vadx.models import VGG19

TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def test_parameter_names_and_count_match_torchvision():
    net = VGG19()
    expected = [f"features.{i}.{p}" for i in TORCHVISION_CONV_INDICES for p in ("weight", "bias")]
    assert list(net.state_dict()) == expected
    assert sum(p.numel() for p in net.parameters()) == 20_024_384
    assert len(net.features) == 37 and net.out_channels == 512


def test_reference_frame_gives_3x3_maps():
    net = VGG19(width=0.0625)
    assert net(torch.zeros(1, 3, 112, 112)).shape == (1, 32, 3, 3)


@pytest.mark.parametrize(("width", "channels"), [(0.0625, 32), (0.25, 128), (0.5, 256)])
def test_width_scales_channels_keeps_depth(width, channels):
    net = VGG19(width=width)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16
    assert convs[0].out_channels == round(64 * width) and net.out_channels == channels


@pytest.mark.parametrize("width", [0, -1, 5, "wide"])
def test_bad_width_is_refused(width):
    with pytest.raises(ConfigError, match="width"):
        VGG19(width=width)


def test_torchvision_state_dict_loads_and_matches_functional_reference():
    state = torchvision_vgg19_state_dict(seed=3)
    net = VGG19().eval()
    net.load_pretrained(state)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key])
    # torchvision's vgg19().features, written out: conv+ReLU per conv, 2×2 max-pool per "M"
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    reference = x
    for i in range(37):
        if i in TORCHVISION_CONV_INDICES:
            w, b = state[f"features.{i}.weight"], state[f"features.{i}.bias"]
            reference = F.conv2d(reference, w, b, padding=1)
        elif i - 1 in TORCHVISION_CONV_INDICES:
            reference = F.relu(reference)
        else:
            reference = F.max_pool2d(reference, 2)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference, rtol=1e-4, atol=1e-4)


def test_wrong_shapes_are_reported_with_the_width_hint():
    net = VGG19(width=0.5)
    with pytest.raises(WeightsError, match=r"wrong shapes features\.0\.weight.*width 0\.5"):
        net.load_pretrained(torchvision_vgg19_state_dict())


def test_missing_keys_are_reported():
    state = torchvision_vgg19_state_dict()
    del state["features.34.bias"]
    with pytest.raises(WeightsError, match=r"missing keys features\.34\.bias"):
        VGG19().load_pretrained(state)


def test_state_dict_of_another_model_is_refused():
    with pytest.raises(WeightsError, match="no 'features.\\*' entries.*vgg19-dcbb9e9d"):
        VGG19().load_pretrained({"fc.weight": torch.zeros(2, 2)})


def test_failed_load_leaves_weights_untouched():
    net = VGG19()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torchvision_vgg19_state_dict()
    state["features.34.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError):
        net.load_pretrained(state)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_keras_aliases_point_at_activations_and_pools():
    net = VGG19(width=0.0625)
    assert net.aliases["block1_conv1"] == "features.1"
    assert net.aliases["block5_conv4"] == "features.35"
    assert net.aliases["block5_pool"] == "features.36"
    assert len([a for a in net.aliases if "_conv" in a]) == 16
    assert isinstance(net.get_layer("block5_conv4"), torch.nn.ReLU)
    assert isinstance(net.get_layer("features.34"), torch.nn.Conv2d)
    with pytest.raises(ConfigError, match="unknown layer 'block6_conv1'"):
        net.get_layer("block6_conv1")


def test_hook_on_conv_sees_pre_activation_values():
    # in-place ReLUs would overwrite what a hook on the conv captured
    net = VGG19(width=0.0625)
    seen = {}
    handle = net.get_layer("features.34").register_forward_hook(
        lambda m, i, o: seen.setdefault("conv", o)
    )
    try:
        net(torch.randn(2, 3, 32, 32))
    finally:
        handle.remove()
    assert (seen["conv"] < 0).any()


def test_batch_norm_variant_has_torchvision_vgg19_bn_layout():
    net = VGG19(batch_norm=True)
    assert sum(p.numel() for p in net.parameters()) == 20_035_392  # torchvision's vgg19_bn
    assert len(net.features) == 53
    assert isinstance(net.features[1], torch.nn.BatchNorm2d)
    assert (
        net.aliases["block1_conv1"] == "features.2" and net.aliases["block5_pool"] == "features.52"
    )
    assert isinstance(net.get_layer("block5_conv4"), torch.nn.ReLU)
    assert all(len(modules) == 2 for _, modules in net.freeze_units())  # conv + its BN
