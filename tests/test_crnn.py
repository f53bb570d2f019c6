from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tests.conftest import TINY
from vadx.errors import ConfigError, InputError
from vadx.models import CRNN, CRNNConfig, fold_time, unfold_time
from vadx.models.backbones import Backbone, register_backbone
from vadx.models.backbones import base as backbone_base


def test_default_model_is_the_reference_architecture():
    model = CRNN()
    counts = model.parameter_counts()
    assert counts["backbone"]["total"] == 20_024_384  # VGG19 features
    gru = 3 * (1024 * 512 + 1024 * 1024 + 2 * 1024)  # GRU 512 → 1024
    assert counts["rnn"]["total"] == gru == 4_724_736
    # three hidden layers 1024 → 512 → 128, then the class layer
    head = (1024 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 128 + 128) + (128 * 4 + 4)
    assert counts["head"]["total"] == head == 1_640_580
    assert counts["all"]["total"] == 20_024_384 + gru + head == 26_389_700
    assert model.class_names == ("fight", "shooting", "fire", "normal")
    assert model.config.num_frames == 20 and model.config.frame_size == (112, 112)
    assert [m.p for m in model.head if isinstance(m, nn.Dropout)] == [0.5, 0.5, 0.5]
    assert model.config.mean == (0.485, 0.456, 0.406)
    assert model.default_layer == "block5_conv4"


def per_frame_loop_logits(model: CRNN, clip: torch.Tensor) -> torch.Tensor:
    """The Keras-style reference: each frame of each video through the CNN on its own."""
    videos = []
    for video in clip:
        features = [model.pool_maps(model.backbone(frame[None]))[0] for frame in video]
        videos.append(model.forward_features(torch.stack(features)[None])[0])
    return torch.stack(videos)


@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 3), steps=st.integers(1, 5), pooling=st.sampled_from(["avg", "max"]))
def test_folded_forward_equals_per_frame_loop(batch, steps, pooling):
    torch.manual_seed(0)
    model = CRNN(TINY.replace(pooling=pooling)).eval()
    clip = torch.randn(batch, steps, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), per_frame_loop_logits(model, clip))


def test_stages_compose_to_forward(tiny_model, tiny_clip):
    with torch.no_grad():
        logits = tiny_model(tiny_clip)
        maps = tiny_model.frame_maps(tiny_clip)
        features = tiny_model.frame_features(tiny_clip)
        assert maps.shape == (2, 4, 32, 1, 1) and features.shape == (2, 4, 32)
        assert torch.equal(tiny_model.forward_maps(maps), logits)
        assert torch.equal(tiny_model.forward_features(features), logits)
        assert tiny_model.rnn_outputs(features).shape == (2, 4, 16)


def test_pooling_values():
    maps = torch.tensor([[1.0, 2.0], [3.0, 10.0]]).view(1, 1, 1, 2, 2)
    assert CRNN(TINY).pool_maps(maps).item() == 4.0
    assert CRNN(TINY.replace(pooling="max")).pool_maps(maps).item() == 10.0


def test_fold_and_unfold_are_inverse_and_clip_major():
    x = torch.arange(2 * 3 * 5).view(2, 3, 5)
    folded = fold_time(x)
    assert folded.shape == (6, 5) and torch.equal(folded[4], x[1, 1])
    assert torch.equal(unfold_time(folded, 2, 3), x)


def test_permuting_videos_permutes_logits(tiny_model, tiny_clip):
    with torch.no_grad():
        logits = tiny_model(tiny_clip)
        swapped = tiny_model(tiny_clip.flip(0))
    torch.testing.assert_close(swapped, logits.flip(0))


def test_every_frame_reaches_the_decision(tiny_model, tiny_clip):
    with torch.no_grad():
        base = tiny_model(tiny_clip)
        for t in range(tiny_clip.shape[1]):
            changed = tiny_clip.clone()
            changed[0, t] += 3.0
            logits = tiny_model(changed)
            assert not torch.allclose(logits[0], base[0])
            assert torch.equal(logits[1], base[1])  # the other video is untouched


def test_lstm_and_stacked_rnn():
    model = CRNN(TINY.replace(rnn="lstm", rnn_layers=2)).eval()
    assert isinstance(model.rnn, nn.LSTM) and model.rnn.num_layers == 2
    assert model(torch.randn(1, 3, 3, 32, 32)).shape == (1, 4)


def test_freeze_all_none_and_last_n():
    model = CRNN(TINY.replace(freeze="all"))
    counts = model.parameter_counts()
    assert counts["backbone"]["trainable"] == 0
    assert counts["rnn"]["trainable"] == counts["rnn"]["total"]
    model.freeze_backbone(2)  # block5_conv3 and block5_conv4: 2 × (32·32·9 + 32)
    assert model.parameter_counts()["backbone"]["trainable"] == 2 * (32 * 32 * 9 + 32)
    assert model.config.freeze == 2
    assert model.backbone.features[34].weight.requires_grad
    assert not model.backbone.features[30].weight.requires_grad
    model.freeze_backbone("none")
    assert model.parameter_counts()["backbone"]["trainable"] == counts["backbone"]["total"]
    with pytest.raises(ConfigError, match="has 16"):
        model.freeze_backbone(17)


def test_frozen_batchnorm_keeps_running_statistics():
    model = CRNN(TINY.replace(backbone="efficientnet_lite0", freeze=3, backbone_args={}))
    model.train()
    frozen_bn = model.backbone._bn0
    trainable_bn = model.backbone._bn1
    assert not frozen_bn.training and trainable_bn.training
    before = frozen_bn.running_mean.clone()
    model(torch.randn(1, 2, 3, 32, 32))
    assert torch.equal(frozen_bn.running_mean, before)
    assert model.head.training


def test_dropout_active_only_in_training(tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY.replace(dropout=0.9))
    model.train()
    assert not torch.equal(model(tiny_clip), model(tiny_clip))
    model.eval()
    assert torch.equal(model(tiny_clip), model(tiny_clip))


def test_layers_by_alias_canonical_and_model_names(tiny_model):
    assert tiny_model.get_layer("block5_conv4") is tiny_model.backbone.features[35]
    assert tiny_model.get_layer("features.34") is tiny_model.backbone.features[34]
    assert tiny_model.get_layer("backbone.features.35") is tiny_model.backbone.features[35]
    assert tiny_model.get_layer("rnn") is tiny_model.rnn
    assert tiny_model.layer_names()["block3_pool"] == "features.18"
    with pytest.raises(ConfigError, match="unknown layer"):
        tiny_model.get_layer("conv99")


def test_classes_and_anomaly_indices(tiny_model):
    assert tiny_model.class_index("fire") == 2 and tiny_model.class_index(3) == 3
    assert tiny_model.anomaly_indices == [0, 1, 2]
    with pytest.raises(ConfigError, match="the model's classes are fight, shooting"):
        tiny_model.class_index("robbery")
    with pytest.raises(ConfigError, match="out of range"):
        tiny_model.class_index(4)
    binary = CRNN(TINY.replace(class_names=("alert", "normal")))
    assert binary.anomaly_indices == [0] and binary.num_classes == 2


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (torch.zeros(4, 3, 32, 32), r"unsqueeze\(0\)"),
        (torch.zeros(1, 4, 1, 32, 32), r"\(B, T, 3, H, W\), got shape \(1, 4, 1, 32, 32\)"),
        (torch.zeros(1, 4, 3, 32, 32, dtype=torch.uint8), "uint8"),
        (torch.zeros(1, 4, 3, 16, 32), "at least 32×32"),
        (torch.zeros(1, 0, 3, 32, 32), "at least one clip and frame"),
        ([[1.0]], "got list"),
    ],
)
def test_bad_clips_are_refused_clearly(tiny_model, clip, message):
    with pytest.raises(InputError, match=message):
        tiny_model(clip)


def test_bad_features_are_refused(tiny_model):
    with pytest.raises(InputError, match=r"\(B, T, 32\)"):
        tiny_model.forward_features(torch.zeros(1, 4, 31))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_names": ("only",)}, "at least two"),
        ({"class_names": ("a", "a")}, "duplicates"),
        ({"normal_class": "calm"}, "normal_class 'calm'"),
        ({"pooling": "sum"}, "pooling must be one of avg, max"),
        ({"rnn": "transformer"}, "rnn must be one of"),
        ({"rnn_hidden": 0}, "rnn_hidden must be an integer from 1 to 16,384"),
        ({"head_hidden": (8, -1)}, "head_hidden"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"frame_size": (32,)}, "frame_size"),
        ({"freeze": "some"}, "freeze must be"),
        ({"freeze": True}, "freeze must be"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be at least 0.001"),
        ({"mean": (0.1, 0.2)}, "three finite numbers"),
        (
            {"backbone": "resnet"},
            "unknown backbone 'resnet'; available: conv_stack, efficientnet_lite0.*vgg19",
        ),
        ({"backbone_args": {"depth": 3}}, "bad arguments for backbone 'vgg19'"),
        ({"colour": "red"}, r"unknown CRNN option\(s\) \['colour'\]"),
    ],
)
def test_bad_configs_are_refused_clearly(changes, message):
    with pytest.raises(ConfigError, match=message):
        CRNN(TINY, **changes)


def test_config_round_trips_through_json_form():
    config = CRNN(TINY.replace(freeze=3, rnn="lstm")).config
    again = CRNNConfig.from_dict(config.to_dict())
    assert again == config
    assert config.to_dict()["preprocessing"]["mean"] == [0.485, 0.456, 0.406]


def test_registry_plugs_in_a_new_backbone(monkeypatch):
    monkeypatch.setattr(backbone_base, "_REGISTRY", dict(backbone_base._REGISTRY))

    @register_backbone("test_mean_rgb")
    class MeanRGB(Backbone):
        """Averages each 8×8 patch: channels stay RGB, so the math is hand-checkable."""

        min_input_size = 8

        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AvgPool2d(8)
            self.out_channels = 3
            self.aliases = {"patches": "pool"}
            self.default_layer = "patches"

        def forward(self, frames):
            return self.pool(frames)

        def layer_names(self):
            return ["pool"]

        def freeze_units(self):
            return []

    model = CRNN(TINY.replace(backbone="test_mean_rgb", backbone_args={}))
    clip = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(1, 2, 3, 16, 16)
    features = model.frame_features(clip)
    torch.testing.assert_close(features, clip.mean(dim=(-2, -1)))
    assert model.get_layer("patches") is model.backbone.pool
    assert model.config.mean == (0.485, 0.456, 0.406)
    with pytest.raises(ConfigError, match="already registered"):
        register_backbone("test_mean_rgb")(lambda: None)
