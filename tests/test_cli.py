from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import vadx
from tests.conftest import run_cli
from vadx.models import load_model

TINY_ARGS = [
    "--width",
    "0.0625",
    "--rnn-hidden",
    "16",
    "--head",
    "8",
    "--frames",
    "4",
    "--size",
    "32",
]


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith(f"vadx {vadx.__version__} (torch {torch.__version__}")


def test_help_lists_the_commands(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in (
        "info",
        "new-model",
        "backbones",
        "demo",
        "train",
        "evaluate",
        "detect",
        "synth",
        "probe",
    ):
        assert command in out


def test_new_model_then_info(tmp_path, capsys):
    target = tmp_path / "tiny"
    code, out, err = run_cli(
        ["new-model", str(target), *TINY_ARGS, "--freeze", "2", "--fit", "stretch"], capsys
    )
    assert code == 0, err
    assert "saved" in out
    model = load_model(target)
    assert model.config.backbone_args == {"width": 0.0625} and model.config.freeze == 2
    code, out, _ = run_cli(["info", str(target)], capsys)
    assert code == 0
    assert "vgg19 (width=0.0625)" in out and "GRU 1×16" in out and "MLP 16 → 8 → 4" in out
    assert "fight, shooting, fire, normal" in out and "4 frames of 32×32 RGB, fit: stretch" in out
    assert "domain check" in out and "vadx calibrate" in out
    total = model.parameter_counts()["all"]["total"]
    assert f"{total:,}" in out
    assert model.checkpoint.model_id in out


def test_info_json_and_layers(tmp_path, capsys):
    target = tmp_path / "tiny"
    run_cli(
        ["new-model", str(target), *TINY_ARGS, "--classes", "alert,normal", "--rnn", "lstm"], capsys
    )
    code, out, _ = run_cli(["info", str(target), "--json", "--layers"], capsys)
    assert code == 0
    description = json.loads(out)
    assert description["model"]["classes"]["names"] == ["alert", "normal"]
    assert description["model"]["architecture"]["rnn"] == "lstm"
    assert description["layers"]["block5_conv4"] == "features.35"
    assert description["parameters"]["backbone"]["trainable"] > 0
    assert description["checkpoint"]["metadata"]["seed"] == 0
    assert description["checkpoint"]["domain"] is None
    assert description["model"]["preprocessing"]["fit"] == "stretch"


def test_new_model_with_builtin_lite_weights(tmp_path, capsys):
    target = tmp_path / "lite"
    code, _, err = run_cli(
        [
            "new-model",
            str(target),
            "--backbone",
            "efficientnet_lite0",
            "--weights",
            "imagenet",
            "--rnn-hidden",
            "16",
            "--freeze",
            "all",
        ],
        capsys,
    )
    assert code == 0, err
    info = load_model(target).checkpoint
    assert info.metadata["backbone_weights"].endswith("efficientnet-lite0-57934424.pth")


def test_backbones_lists_the_registry(capsys):
    code, out, _ = run_cli(["backbones"], capsys)
    assert code == 0
    assert "vgg19" in out and "efficientnet_lite0" in out and "block5_conv4" in out


def test_backbones_are_described_for_programs_too():
    from vadx.models.summary import describe_backbones

    described = {entry.name: asdict(entry) for entry in describe_backbones()}
    assert described["vgg19"] == {
        "name": "vgg19",
        "features": 512,
        "parameters": 20_024_384,
        "cam_layer": "block5_conv4",
        "layercam_layer": "block4_conv4",
        "weights": None,
    }
    assert described["efficientnet_lite0"]["weights"] == "imagenet"
    assert set(described["conv_stack"].values()) == {"conv_stack", None}  # built from a layout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "no/such/model"], "no checkpoint at no/such/model"),
        (["new-model", "{out}", "--freeze", "most"], "--freeze takes none, all or a number"),
        (["new-model", "{out}", "--head", "8,x"], "--head takes comma-separated integers"),
        (["new-model", "{out}", "--backbone", "resnet50"], "unknown backbone 'resnet50'"),
        (["new-model", "{out}", "--classes", "fight"], "at least two"),
        (["new-model", "{out}", "--weights", "missing.pth"], "weights file not found"),
        (["new-model", "{out}", "--width", "0.5", "--weights", "imagenet"], "not bundled"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, argv, message):
    argv = [a.replace("{out}", str(tmp_path / "m")) for a in argv]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in " ".join(err.split())
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_console_script_from_a_fresh_shell(tmp_path):
    """The installed ``vadx`` command, as a user runs it."""
    executable = Path(sys.executable).parent / "vadx"
    if not executable.exists():
        pytest.skip("vadx is not installed as a console script here (make install does it)")
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [str(executable), "info", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: no checkpoint at" in result.stderr and "Traceback" not in result.stderr


def test_help_starts_without_loading_torch():
    # `vadx --help` and `import vadx` stay light: torch loads when a command needs a model
    probe = (
        "import sys, vadx, vadx.cli; from typer.testing import CliRunner; "
        "result = CliRunner().invoke(vadx.cli.app, ['--help']); "
        "assert result.exit_code == 0 and 'explain' in result.output, result.output; "
        "print('torch' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout.strip() == "False", found.stderr
    assert vadx.load_model is vadx.models.load_model  # the names still import on first use
