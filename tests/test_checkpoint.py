from __future__ import annotations

import json
import os

import pytest
import torch

import vadx
from tests.conftest import IMPORTED_SHAPE, TINY
from vadx.errors import CheckpointError
from vadx.models import CRNN, load_model, read_checkpoint, save_model
from vadx.models import checkpoint as checkpoint_module


@pytest.fixture
def saved(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "model", metadata={"note": "test", "epoch": 3})


def test_round_trip_gives_identical_logits(saved, tiny_model, tiny_clip):
    loaded = vadx.load_model(saved)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(tiny_clip), tiny_model(tiny_clip))
    assert loaded.config == tiny_model.config
    assert loaded.checkpoint.metadata == {"note": "test", "epoch": 3}


@pytest.mark.parametrize(
    "changes",
    [
        {"backbone": "efficientnet_lite0", "backbone_args": {}, "freeze": 5},
        {"rnn": "lstm", "pooling": "max", "class_names": ("alert", "normal")},
        {"rnn": "gru_reset_before", "rnn_bidirectional": True, "rnn_layers": 2},
        IMPORTED_SHAPE,
        {**IMPORTED_SHAPE, "rnn": "lstm", "pooling": "max", "head_layers": (), "head_hidden": (7,)},
    ],
    ids=["lite", "lstm-max", "bigru-reset-before", "imported-shape", "conv-stack-lstm-max"],
)
def test_round_trip_of_other_architectures(tmp_path, tiny_clip, changes):
    torch.manual_seed(0)
    model = CRNN(TINY, **changes).eval()
    loaded = load_model(save_model(model, tmp_path / "m"))
    with torch.no_grad():
        assert torch.equal(loaded(tiny_clip), model(tiny_clip))
    assert loaded.config == model.config
    assert loaded.parameter_counts() == model.parameter_counts()  # freezing restored


def test_checkpoints_from_before_the_reference_head_still_load(tmp_path):
    """A checkpoint records its head: one written with the old default (512, 128) and without
    the keys added since (rnn_bidirectional, head_layers) loads as it was."""
    torch.manual_seed(0)
    old = CRNN(head_hidden=(512, 128)).eval()
    assert old.parameter_counts()["all"]["total"] == 25_340_100
    path = save_model(old, tmp_path / "old")
    document = json.loads((path / "config.json").read_text())
    for key in ("rnn_bidirectional", "head_layers"):
        del document["model"]["architecture"][key]
    (path / "config.json").write_text(json.dumps(document))
    loaded = load_model(path)
    assert loaded.config.head_hidden == (512, 128) and loaded.config.head_layers == ()
    assert loaded.parameter_counts()["all"]["total"] == 25_340_100
    clip = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(clip), old(clip))


def test_config_json_records_everything_needed(saved, tiny_model):
    document = json.loads((saved / "config.json").read_text())
    assert document["format"] == "vadx.checkpoint" and document["format_version"] == 1
    assert document["vadx_version"] == vadx.__version__
    assert document["torch_version"] == torch.__version__
    assert document["model"]["classes"] == {
        "names": ["fight", "shooting", "fire", "normal"],
        "normal": "normal",
    }
    prep = document["model"]["preprocessing"]
    assert prep["num_frames"] == 4 and prep["frame_size"] == [32, 32]
    assert prep["mean"] == [0.485, 0.456, 0.406] and prep["std"] == [0.229, 0.224, 0.225]
    assert document["model"]["architecture"]["backbone_args"] == {"width": 0.0625}
    weights = document["weights"]
    assert weights["sha256"] == checkpoint_module.file_sha256(saved / "model.safetensors")
    assert weights["num_parameters"] == tiny_model.parameter_counts()["all"]["total"]
    assert sorted(os.listdir(saved)) == ["config.json", "model.safetensors"]


def test_weights_are_safetensors_not_pickle(saved):
    raw = (saved / "model.safetensors").read_bytes()
    header_length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_length])
    assert "backbone.features.0.weight" in header
    assert b"\x80\x02" not in raw[:2] and not raw.startswith(b"PK")  # no pickle, no zip


def test_saving_again_replaces_atomically_and_leaves_no_temporaries(saved, tiny_clip):
    torch.manual_seed(5)
    other = CRNN(TINY).eval()
    save_model(other, saved)
    with torch.no_grad():
        assert torch.equal(load_model(saved)(tiny_clip), other(tiny_clip))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_failed_save_keeps_previous_checkpoint(saved, monkeypatch, tiny_clip, tiny_model):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "file_sha256", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(CRNN(TINY), saved)
    monkeypatch.undo()
    with torch.no_grad():
        assert torch.equal(load_model(saved)(tiny_clip), tiny_model(tiny_clip))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_refuses_to_overwrite_something_else(tmp_path, tiny_model):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    with pytest.raises(CheckpointError, match="will not overwrite"):
        save_model(tiny_model, tmp_path / "notes")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="will not overwrite"):
        save_model(tiny_model, tmp_path / "file")
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"


def test_metadata_must_be_json(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save_model(tiny_model, tmp_path / "m", metadata={"tensor": torch.zeros(1)})
    assert not (tmp_path / "m").exists()


def test_load_accepts_the_files_inside(saved):
    assert load_model(saved / "config.json").config == load_model(saved).config
    assert read_checkpoint(saved / "model.safetensors").path == saved


def _edit_config(path, edit):
    document = json.loads((path / "config.json").read_text())
    edit(document)
    (path / "config.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "config.json").unlink(), "not a vadx checkpoint: it has no config.json"),
        (lambda p: (p / "config.json").write_text("{oops"), "config.json is not valid JSON"),
        (lambda p: (p / "config.json").write_text("[]"), "not a vadx checkpoint config"),
        (lambda p: (p / "model.safetensors").unlink(), "has no model.safetensors"),
        (
            lambda p: _edit_config(p, lambda d: d.update(format_version=99)),
            "format version 99.*upgrade vadx",
        ),
        (
            lambda p: _edit_config(p, lambda d: d["model"]["architecture"].update(wings=2)),
            "architecture has unknown key",
        ),
        (
            lambda p: _edit_config(p, lambda d: d["model"]["classes"].pop("names")),
            "classes is missing names",
        ),
        (
            lambda p: _edit_config(p, lambda d: d["model"]["architecture"].update(rnn="tcn")),
            "rnn must be one of",
        ),
        (lambda p: _edit_config(p, lambda d: d.pop("weights")), "missing 'weights'"),
        (
            lambda p: _edit_config(p, lambda d: d["model"]["architecture"].update(rnn_hidden="x")),
            "rnn_hidden must be an integer from 1 to 16,384",
        ),
    ],
)
def test_damaged_checkpoints_give_clear_errors(saved, damage, message):
    damage(saved)
    with pytest.raises(CheckpointError, match=message):
        load_model(saved)


def test_corrupted_weights_are_detected(saved):
    weights = saved / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt or was changed: its sha256"):
        load_model(saved)


def test_truncated_weights_without_verification_still_fail_clearly(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read .*model.safetensors"):
        load_model(saved, verify=False)


def test_weights_of_another_architecture_are_refused(saved, tmp_path):
    other = save_model(CRNN(TINY.replace(rnn_hidden=24)), tmp_path / "other")
    (saved / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    _edit_config(
        saved,
        lambda d: d["weights"].update(
            sha256=json.loads((other / "config.json").read_text())["weights"]["sha256"]
        ),
    )
    with pytest.raises(CheckpointError, match="does not match the architecture") as refused:
        load_model(saved)
    # the wording of backbone weights' refusals: the GRU's three gates of 24 units, not 16
    assert "wrong shapes rnn.weight_ih_l0: file (72, 32) vs model (48, 32), " in str(refused.value)


def test_missing_path_and_plain_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "model.pt").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="is a file; a vadx checkpoint is a directory"):
        load_model(tmp_path / "model.pt")
