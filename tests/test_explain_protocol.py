"""The methods' contract is a protocol of model stages: a model that is not a CRNN is explained
exactly like the CRNN computing the same function, and one that lacks a stage is told which."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests.explain_models import PlainPointwise, hooks_left, pointwise_crnn
from vadx.errors import ConfigError
from vadx.explain import (
    METHODS,
    TEMPORAL,
    FrameOcclusion,
    FrameShapley,
    GradCAM,
    IntegratedGradients,
    Occlusion,
    Saliency,
    explain,
)
from vadx.explain.protocol import ExplainableModel, check_explainable
from vadx.models import CRNN

EVERY = {
    "methods": list(METHODS),
    "temporal": list(TEMPORAL),
    "options": {"integrated_gradients": {"steps": 8}, "smoothgrad": {"samples": 3}},
}


@pytest.fixture
def clip() -> torch.Tensor:
    return torch.rand(2, 4, 3, 4, 4, generator=torch.Generator().manual_seed(3)) - 0.2


def test_the_plain_model_is_no_crnn_but_satisfies_the_protocol():
    plain = PlainPointwise()
    assert not isinstance(plain, CRNN) and not isinstance(plain.backbone, CRNN)
    assert isinstance(plain, ExplainableModel) and isinstance(pointwise_crnn(), ExplainableModel)
    check_explainable(plain)


def test_every_method_explains_a_non_crnn_model_like_the_crnn(clip):
    plain = explain(PlainPointwise(), clip, "fight", **EVERY)
    crnn = explain(pointwise_crnn(), clip, "fight", **EVERY)
    assert set(plain.maps) == set(METHODS) and set(plain.temporal) == set(TEMPORAL)
    np.testing.assert_allclose(plain.logits, crnn.logits, rtol=1e-6)
    for name in [*METHODS, *TEMPORAL]:
        mine, reference = plain[name].arrays(), crnn[name].arrays()
        assert mine.keys() == reference.keys(), name
        for key in mine:
            np.testing.assert_allclose(
                mine[key], reference[key], rtol=1e-5, atol=1e-7, err_msg=f"{name}/{key}"
            )
        assert plain[name].settings == crnn[name].settings, name
    assert np.abs(plain["gradcam"].raw).sum() > 0 and np.abs(plain["frame_shapley"].scores).sum()
    assert plain.model["id"] is None and plain.model["config"]["mean"][0] == 0.485


def test_methods_attribute_on_a_non_crnn_model_like_on_the_crnn(clip):
    plain, crnn = PlainPointwise(), pointwise_crnn()
    for method in (GradCAM, Saliency, FrameOcclusion):
        torch.testing.assert_close(
            method(plain).attribute(clip, "fight"), method(crnn).attribute(clip, "fight")
        )
    torch.testing.assert_close(
        Occlusion(plain, patch=2).attribute(clip, 0), Occlusion(crnn, patch=2).attribute(clip, 0)
    )
    raw, extras = IntegratedGradients(plain, steps=8).attribute(clip, 0, return_extras=True)
    expected = IntegratedGradients(crnn, steps=8).attribute(clip, 0, return_extras=True)
    torch.testing.assert_close(raw, expected.raw)
    torch.testing.assert_close(extras["delta"], expected.extras["delta"])


def test_a_non_crnn_model_comes_back_as_it_went_in(clip):
    plain = PlainPointwise().train()
    plain.rnn.eval()
    explain(plain, clip, methods=["gradcam", "guided_gradcam"], temporal=["frame_shapley"])
    assert plain.training and plain.backbone.training and not plain.rnn.training
    assert hooks_left(plain) == 0


class _Incomplete(nn.Module):
    """A model with the backbone's layers but neither pooling nor a sequence model."""

    class_names = ("fight", "normal")
    anomaly_indices = (0,)

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 1, 1))
        self.config = PlainPointwise().config

    def class_index(self, name_or_index: str | int) -> int:
        return 0

    def check_clip(self, clip: torch.Tensor) -> None:
        pass

    def frame_maps(self, clip: torch.Tensor) -> torch.Tensor:
        return self.backbone(clip.flatten(0, 1)).unflatten(0, clip.shape[:2])


def test_a_model_without_a_stage_is_refused_naming_what_it_lacks(clip):
    lacks = "_Incomplete lacks pool_maps, forward_features, backbone.get_layer, backbone.cam_layer"
    with pytest.raises(ConfigError, match=lacks):
        Saliency(_Incomplete())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=lacks):
        explain(_Incomplete(), clip, methods=(), temporal=())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="object lacks nn.Module"):
        FrameShapley(object())  # type: ignore[arg-type]
    assert not isinstance(_Incomplete(), ExplainableModel)
