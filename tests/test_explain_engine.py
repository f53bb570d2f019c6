"""explain(): one call, every method, batches, targets, hooks, state, saving."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from tests.conftest import TINY
from tests.explain_models import hooks_left, pointwise_crnn
from vadx.errors import ConfigError, InputError
from vadx.explain import METHODS, TEMPORAL, GradCAM, explain, resolve_target
from vadx.explain.hooks import stack_calls
from vadx.models import CRNN

FAST_OPTIONS = {
    "occlusion": {"patch": 16},
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 2},
}


def test_every_method_in_one_call_has_the_documented_shapes(tiny_model, tiny_clip):
    e = explain(
        tiny_model, tiny_clip, methods=list(METHODS), temporal=list(TEMPORAL), options=FAST_OPTIONS
    )
    assert set(e.maps) == set(METHODS) and set(e.temporal) == set(TEMPORAL)
    for name, a in e.maps.items():
        assert a.display.shape == (2, 4, 32, 32), name
        assert a.frame_scores.shape == (2, 4), name
        assert a.display.max() <= 1.0 + 1e-6 and a.display.min() >= 0, name
        np.testing.assert_allclose(a.frame_scores, a.raw.sum((-2, -1)), rtol=1e-5, atol=1e-7)
    assert e["gradcam"].raw.shape == (2, 4, 2, 2)  # the layer's resolution
    assert e["saliency"].raw.shape == (2, 4, 32, 32)
    for f in e.temporal.values():
        assert f.scores.shape == (2, 4)
    assert e.probabilities.shape == (2, 4)
    np.testing.assert_allclose(e.probabilities.sum(1), 1, rtol=1e-5)
    assert set(e.seconds) == {"shared_pass", *METHODS, *TEMPORAL}


def test_shared_pass_results_equal_single_method_results(tiny_model, tiny_clip):
    e = explain(
        tiny_model,
        tiny_clip,
        target=1,
        methods=["gradcam", "saliency"],
        temporal=["gradient_norm"],
        layer="block4_conv4",
        weighting="clip",
    )
    alone = GradCAM(tiny_model, layer="block4_conv4", weighting="clip").attribute(tiny_clip, 1)
    np.testing.assert_allclose(e["gradcam"].raw, alone.numpy(), rtol=1e-6)
    assert e["gradcam"].settings == {"layer": "block4_conv4", "weighting": "clip"}


def test_clip_normalisation_keeps_which_frame_mattered_and_frame_loses_it():
    model = pointwise_crnn()
    clip = torch.rand(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    joint = explain(model, clip, "fight", methods=["gradcam"], temporal=[])["gradcam"]
    per_frame = explain(
        model, clip, "fight", methods=["gradcam"], temporal=[], normalisation="frame"
    )["gradcam"]
    peaks = joint.display.max((-2, -1))[0]
    assert peaks[-1] == pytest.approx(1.0) and peaks[0] < 0.5  # later frames matter more
    np.testing.assert_allclose(per_frame.display.max((-2, -1)), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(joint.raw, per_frame.raw)


def test_permuting_videos_permutes_explanations_and_no_video_gets_zeros():
    model = pointwise_crnn()
    clips = torch.rand(3, 4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    e = explain(model, clips, "fight", methods=["gradcam", "saliency"])
    order = [2, 0, 1]
    p = explain(model, clips[order], "fight", methods=["gradcam", "saliency"])
    for name in ("gradcam", "saliency"):
        np.testing.assert_allclose(p[name].raw, e[name].raw[order], rtol=1e-5, atol=1e-8)
        assert (np.abs(e[name].raw).reshape(3, -1).sum(1) > 0).all()
    for name in e.temporal:
        np.testing.assert_allclose(p[name].scores, e[name].scores[order], rtol=1e-5, atol=1e-8)
    single = explain(model, clips[1:2], "fight", methods=["gradcam"])
    np.testing.assert_allclose(single["gradcam"].raw[0], e["gradcam"].raw[1], rtol=1e-5)


def test_targets_are_resolved_per_video_and_validated(tiny_model, tiny_clip):
    e = explain(tiny_model, tiny_clip, target=["fire", 0], methods=["gradcam"], temporal=[])
    assert e.target_names == ("fire", "fight") and e.targets.tolist() == [2, 0]
    anomaly = explain(tiny_model, tiny_clip, target="anomaly", methods=["saliency"], temporal=[])
    normal = tiny_model.class_index("normal")
    assert normal not in anomaly.targets.tolist()
    with pytest.raises(ConfigError, match="got 3 targets for a batch of 2 videos"):
        explain(tiny_model, tiny_clip, target=[0, 1, 2])
    with pytest.raises(ConfigError, match="unknown class 'riot'"):
        explain(tiny_model, tiny_clip, target="riot")
    with pytest.raises(ConfigError, match="one scalar per row"):
        explain(tiny_model, tiny_clip, target=lambda z: z)


def test_a_callable_target_is_explained_on_every_pass(tiny_model, tiny_clip):
    def margin(logits):
        return logits[:, 0] - logits[:, 3]

    e = explain(
        tiny_model,
        tiny_clip,
        target=margin,
        methods=["integrated_gradients"],
        options={"integrated_gradients": {"steps": 32}},
    )
    with torch.no_grad():
        gap = margin(tiny_model(tiny_clip)) - margin(tiny_model(torch.zeros_like(tiny_clip)))
    np.testing.assert_allclose(
        e["integrated_gradients"].raw.reshape(2, -1).sum(1), gap.numpy(), rtol=0.02, atol=1e-4
    )
    assert e.target_names == ("custom", "custom") and e.targets.tolist() == [-1, -1]


def test_resolve_target_doc_cases(tiny_model):
    logits = torch.tensor([[0.0, 2.0, 1.0, 5.0], [3.0, 0.0, 1.0, 0.5]])
    assert resolve_target(tiny_model, logits, None).names == ("normal", "fight")
    assert resolve_target(tiny_model, logits, "anomaly").names == ("shooting", "fight")
    target = resolve_target(tiny_model, logits, 2)
    torch.testing.assert_close(
        target.scores(torch.cat([logits, logits])), torch.tensor([1.0, 1.0, 1.0, 1.0])
    )
    videos = torch.tensor([1, 1, 0])
    torch.testing.assert_close(target.scores(logits[videos], videos), torch.tensor([1.0, 1, 1]))


def test_no_hook_survives_a_call_even_one_that_raises(tiny_model, tiny_clip):
    before = hooks_left(tiny_model)
    explain(
        tiny_model, tiny_clip, methods=list(METHODS), temporal=list(TEMPORAL), options=FAST_OPTIONS
    )
    assert hooks_left(tiny_model) == before == 0
    calls = {"n": 0}

    def fails_later(logits):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom")
        return logits[:, 0]

    for method in ("guided_backprop", "gradcam"):
        calls["n"] = 0
        with pytest.raises(RuntimeError, match="boom"):
            explain(tiny_model, tiny_clip, target=fails_later, methods=[method, "smoothgrad"])
        assert hooks_left(tiny_model) == 0


def test_the_model_is_left_exactly_as_it_was(tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY.replace(freeze=2)).train()
    frozen_flags = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grad_flags = {k: p.requires_grad for k, p in model.named_parameters()}
    e = explain(model, tiny_clip, methods=["gradcam", "saliency", "guided_gradcam"])
    a = explain(model, tiny_clip, methods=["gradcam"])
    np.testing.assert_array_equal(e["gradcam"].raw, a["gradcam"].raw)  # dropout was off
    assert {name: m.training for name, m in model.named_modules()} == frozen_flags
    assert {k: p.requires_grad for k, p in model.named_parameters()} == grad_flags
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_backbone_run_in_a_loop_over_time_is_stacked_in_order(tiny_clip):
    class LoopCRNN(CRNN):
        def frame_maps(self, clip):
            return torch.stack([self.backbone(clip[:, t]) for t in range(clip.shape[1])], 1)

    torch.manual_seed(0)
    folded = CRNN(TINY).eval()
    looped = LoopCRNN(TINY).eval()
    looped.load_state_dict(folded.state_dict())
    a = explain(folded, tiny_clip, target=1, methods=["gradcam", "activation"])
    b = explain(looped, tiny_clip, target=1, methods=["gradcam", "activation"])
    for name in ("gradcam", "activation"):
        np.testing.assert_allclose(b[name].raw, a[name].raw, rtol=1e-5, atol=1e-8)

    class SkippingCRNN(CRNN):
        def frame_maps(self, clip):
            kept = [self.backbone(clip[:, t]) for t in range(0, clip.shape[1], 2)]
            return torch.stack([m for m in kept for _ in (0, 1)], 1)

    skipping = SkippingCRNN(TINY).eval()
    with pytest.raises(InputError, match=r"ran 2 time\(s\) with \[2, 2\] frames"):
        explain(skipping, tiny_clip, methods=["gradcam"])
    assert hooks_left(skipping) == 0


def test_stack_calls_layouts():
    folded = torch.arange(6.0).view(6, 1)  # (B·T) clip-major, B=2, T=3
    assert stack_calls([folded], "x", 2, 3)[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 5]]
    loop = [
        torch.tensor([[0.0], [3.0]]),
        torch.tensor([[1.0], [4.0]]),
        torch.tensor([[2.0], [5.0]]),
    ]
    assert stack_calls(loop, "x", 2, 3)[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_bad_arguments_say_what_to_do(tiny_model, tiny_clip):
    with pytest.raises(ConfigError, match="unknown method 'gradcam\\+\\+'; choose from"):
        explain(tiny_model, tiny_clip, methods=["gradcam++"])
    with pytest.raises(ConfigError, match="unknown temporal estimator 'attention'"):
        explain(tiny_model, tiny_clip, temporal=["attention"])
    with pytest.raises(ConfigError, match="smoothgrad has no setting steps; its settings: samples"):
        explain(tiny_model, tiny_clip, methods=["smoothgrad"], options={"smoothgrad": {"steps": 3}})
    with pytest.raises(ConfigError, match="options given for methods not requested: occlusion"):
        explain(tiny_model, tiny_clip, options={"occlusion": {"patch": 4}})
    with pytest.raises(ConfigError, match="normalisation must be one of clip, frame, none"):
        explain(tiny_model, tiny_clip, normalisation="global")
    with pytest.raises(InputError, match="use clip.unsqueeze\\(0\\)"):
        explain(tiny_model, tiny_clip[0])


def test_results_are_immutable_and_save_writes_arrays_and_a_manifest(
    tiny_model, tiny_clip, tmp_path
):
    e = explain(
        tiny_model, tiny_clip, target="anomaly", temporal=["frame_occlusion", "frame_shapley"]
    )
    with pytest.raises(ValueError, match="read-only"):
        e["gradcam"].raw[0, 0, 0, 0] = 1.0
    with pytest.raises(TypeError):
        e.maps["x"] = None  # type: ignore[index]
    with pytest.raises(KeyError, match="no method 'lime'"):
        e["lime"]
    out = e.save(tmp_path / "explanation")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "anomaly" and manifest["normalisation"] == "clip"
    assert manifest["maps"]["gradcam"]["settings"] == {
        "layer": "block5_conv4",
        "weighting": "frame",
    }
    assert manifest["temporal"]["frame_occlusion"]["settings"] == {"baseline": "mean"}
    assert manifest["clip_sha256"] == hashlib.sha256(tiny_clip.numpy().tobytes()).hexdigest()
    assert manifest["clip_shape"] == [2, 4, 3, 32, 32] and manifest["versions"]["vadx"]
    np.testing.assert_array_equal(e.clip, tiny_clip.numpy())
    assert manifest["model"]["config"]["architecture"]["rnn_hidden"] == 16
    with np.load(out / "explanation.npz") as arrays:
        np.testing.assert_array_equal(arrays["gradcam/display"], e["gradcam"].display)
        np.testing.assert_array_equal(
            arrays["frame_shapley/segment_values"], e["frame_shapley"].extras["segment_values"]
        )
        assert "activation/channels" in arrays
    assert sorted(p.name for p in out.iterdir()) == ["explanation.npz", "manifest.json"]


def test_the_catalogue_names_exactly_the_registered_methods():
    from vadx import catalogue
    from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL

    assert tuple(METHODS) == catalogue.METHOD_NAMES and tuple(TEMPORAL) == catalogue.TEMPORAL_NAMES
    assert DEFAULT_METHODS == catalogue.DEFAULT_METHODS
    assert DEFAULT_TEMPORAL == catalogue.DEFAULT_TEMPORAL


def test_a_methods_kind_says_which_registry_it_joins_and_how_its_result_reads(
    tiny_model, tiny_clip
):
    from vadx.explain.engine import REGISTERED

    assert [cls.name for cls in REGISTERED] == [*METHODS, *TEMPORAL]
    assert {cls.kind for cls in METHODS.values()} == {"spatial"}
    assert {cls.kind for cls in TEMPORAL.values()} == {"temporal"}
    e = explain(tiny_model, tiny_clip, methods=["gradcam"], temporal=["gradient_norm"])
    assert e["gradcam"].display.shape == (2, 4, 32, 32)  # a map, shown
    assert e["gradient_norm"].scores.shape == (2, 4)  # frame scores


def test_the_shared_pass_is_read_only(tiny_model, tiny_clip):
    import dataclasses

    from vadx.explain.passes import Need, run_pass

    need = Need(layers=frozenset({"block5_conv4"}), layer_grads=True)
    shared = run_pass(tiny_model, tiny_clip, None, need)
    assert shared.gradients["block5_conv4"].shape == shared.activations["block5_conv4"].shape
    with pytest.raises(dataclasses.FrozenInstanceError):
        shared.gradients = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        shared.activations["block5_conv4"] = shared.clip  # type: ignore[index]


def test_on_host_keeps_the_structure_of_typed_records():
    from vadx.explain.base import Output
    from vadx.explain.result import on_host

    raw = torch.ones(2, 3, requires_grad=True) * 2
    tree = ({"a": Output(raw, {"delta": torch.arange(2)})}, None, "text")
    host = on_host(tree)
    out = host[0]["a"]
    assert isinstance(out, Output) and host[1:] == (None, "text")
    assert not out.raw.requires_grad and out.raw.device.type == "cpu"
    assert torch.equal(out.raw, raw.detach()) and out.extras["delta"].tolist() == [0, 1]


def test_the_settings_come_as_keywords_or_as_one_object(tiny_model, tiny_clip):
    from vadx.explain import MethodChoices
    from vadx.explanations.clip import ExplainSettings

    keywords = {"methods": ("gradcam",), "temporal": ("gradient_norm",), "weighting": "clip"}
    by_keywords = explain(tiny_model, tiny_clip, 1, **keywords)
    for settings in (MethodChoices(**keywords), ExplainSettings(**keywords)):
        by_object = explain(tiny_model, tiny_clip, 1, settings=settings)
        assert list(by_object.maps) == ["gradcam"] and list(by_object.temporal) == ["gradient_norm"]
        assert by_object["gradcam"].settings["weighting"] == "clip"
        np.testing.assert_array_equal(by_object["gradcam"].raw, by_keywords["gradcam"].raw)
    with pytest.raises(ConfigError, match="as keywords or as one settings object"):
        explain(tiny_model, tiny_clip, settings=MethodChoices(), methods=("saliency",))
