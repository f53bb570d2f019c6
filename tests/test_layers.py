"""The layer a CAM method reads, chosen by faithfulness and recorded in the checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import TINY, run_cli, tiny_checkpoint
from vadx.data.synth import SynthConfig, generate
from vadx.errors import CheckpointError, ConfigError, InputError
from vadx.explain import explain
from vadx.models import load_model
from vadx.quality.faithfulness import auc, spatial_curves
from vadx.quality.layers import (
    candidate_layers,
    choose_layer,
    layer_methods,
    save_layers,
)


@pytest.fixture
def clips():
    generator = torch.Generator().manual_seed(3)
    return [
        (torch.rand(1, TINY.num_frames, 3, *TINY.frame_size, generator=generator), k % 4)
        for k in range(2)
    ]


def test_candidates_end_a_stage_at_stride_8_or_coarser(tiny_model):
    # 32-px frames: block3_pool is 4×4 (stride 8); block4_pool and block5_conv1…4 share one
    # shape, so block5_conv4 stands for them; block5_pool ends the backbone
    assert candidate_layers(tiny_model) == [
        "block3_pool", "block4_conv4", "block5_conv4", "block5_pool",
    ]  # fmt: skip


def test_the_layer_with_the_lowest_mean_deletion_area_is_chosen(tiny_model, clips):
    layers = ["block4_conv4", "block5_conv4"]
    choice = choose_layer(tiny_model, clips, "gradcam", layers, steps=4)
    reference = {}
    for name in layers:  # the slow way: every curve in full
        areas = []
        for clip, target in clips:
            e = explain(tiny_model, clip, target, methods=["gradcam"], temporal=[], layer=name)
            curves = spatial_curves(tiny_model, clip, e.maps["gradcam"].display[0], target, steps=4)
            areas.append(auc(curves["deletion"]))
        reference[name] = float(np.mean(areas))
    assert choice.deletion_auc == pytest.approx(reference, abs=1e-6)
    assert choice.layer == min(reference, key=reference.get)
    assert choice.clips == 2 and choice.describe().criterion == "deletion_auc"


def test_bad_requests_are_refused(tiny_model, clips):
    with pytest.raises(ConfigError, match="does not read one layer"):
        choose_layer(tiny_model, clips, "saliency")
    with pytest.raises(ConfigError, match="unknown layer"):
        choose_layer(tiny_model, clips, "gradcam", ["nope"])
    with pytest.raises(InputError, match="no clips"):
        choose_layer(tiny_model, [], "gradcam")
    assert {"gradcam", "layercam", "gradcam_plus_plus", "guided_gradcam"} <= set(layer_methods())


def test_a_recorded_choice_is_every_later_explanation_s_default(tmp_path, clips):
    path = tiny_checkpoint(tmp_path / "m")
    document = json.loads((path / "config.json").read_text())
    document["metadata"]["note"] = "kept"  # the rest of config.json: left as it was
    (path / "config.json").write_text(json.dumps(document))
    from vadx.quality.layers import LayerChoice

    def choice(method, layer):
        return LayerChoice(method, layer, {layer: 0.5}, 2, 4)

    save_layers(path, [choice("gradcam", "block4_conv4")])
    save_layers(path, [choice("layercam", "block4_conv4")])  # the first one is kept
    saved = json.loads((path / "config.json").read_text())
    assert saved["metadata"]["note"] == "kept"
    assert set(saved["explanation_layers"]["methods"]) == {"gradcam", "layercam"}
    model = load_model(path)
    assert model.explanation_layers == {"gradcam": "block4_conv4", "layercam": "block4_conv4"}
    clip, target = clips[0]
    e = explain(model, clip, target, methods=["gradcam", "layercam"], temporal=[])
    assert e["gradcam"].settings == {"layer": "block4_conv4", "weighting": "frame"}
    # a chosen layer is read alone, as if given: no gate
    assert e["layercam"].settings == {"layer": "block4_conv4", "gate": None}
    given = explain(model, clip, target, methods=["gradcam"], temporal=[], layer="block5_conv4")
    assert given["gradcam"].settings["layer"] == "block5_conv4"  # an explicit layer wins


def test_a_choice_for_other_weights_or_an_unknown_layer_is_refused(tmp_path):
    from vadx.quality.layers import LayerChoice

    path = tiny_checkpoint(tmp_path / "m")
    save_layers(path, [LayerChoice("gradcam", "block4_conv4", {}, 1, 4)])
    document = json.loads((path / "config.json").read_text())
    document["explanation_layers"]["methods"]["gradcam"]["layer"] = "block9_conv9"
    (path / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="gradcam: unknown layer 'block9_conv9'"):
        load_model(path)
    document["explanation_layers"]["weights_sha256"] = "0" * 64
    (path / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="chosen for other weights; choose them again"):
        load_model(path)
    # saving again for these weights starts afresh
    save_layers(path, [LayerChoice("layercam", "block5_conv4", {}, 1, 4)])
    assert load_model(path).explanation_layers == {"layercam": "block5_conv4"}


def test_spatial_curves_can_leave_out_curves_and_the_rest_are_unchanged(tiny_model, clips):
    clip, target = clips[0]
    maps = np.random.default_rng(0).random((TINY.num_frames, *TINY.frame_size))
    full = spatial_curves(tiny_model, clip, maps, target, steps=4)
    lean = spatial_curves(
        tiny_model, clip, maps, target, steps=4, kinds=("deletion",), random=False
    )
    assert set(full) == {"deletion", "insertion", "deletion_random", "insertion_random"}
    assert set(lean) == {"deletion"}
    np.testing.assert_allclose(lean["deletion"], full["deletion"], atol=1e-6)


def test_cli_choose_layer_records_the_choice_end_to_end(tmp_path, capsys):
    generate(tmp_path / "data", SynthConfig(clips=(2, 2, 0), num_frames=8, size=(48, 48), seed=4))
    path = tiny_checkpoint(tmp_path / "m")
    argv = ["choose-layer", str(path), str(tmp_path / "data"), "--clips", "2", "--steps", "3"]
    code, out, err = run_cli([*argv, "--method", "gradcam,gradcam_plus_plus"], capsys)
    assert code == 0, err
    assert "saved in" in out and "model id is unchanged" in out
    chosen = json.loads((path / "config.json").read_text())["explanation_layers"]["methods"]
    assert set(chosen) == {"gradcam", "gradcam_plus_plus"}
    for entry in chosen.values():
        areas = entry["deletion_auc"]
        assert set(areas) == set(candidate_layers(load_model(path)))
        assert entry["layer"] == min(areas, key=areas.get) and entry["clips"] == 2
    assert load_model(path).explanation_layers["gradcam"] == chosen["gradcam"]["layer"]
    for bad, message in [
        (["--method", "saliency"], "a layer can be chosen for gradcam"),
        (["--layers", "nope"], "unknown layer 'nope'"),
        (["--clips", "0"], "'--clips': must be an integer from 1 to 10,000"),
    ]:
        code, _, err = run_cli([*argv, *bad], capsys)
        assert code == 2 and err.startswith("error: ") and message in err, err
