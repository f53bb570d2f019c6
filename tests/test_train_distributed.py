from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_TRAIN_ARGS, run_cli
from tests.test_video_live import free_port
from vadx.data.synth import SynthConfig, generate
from vadx.models import load_model

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(clips=(3, 2, 0), num_frames=16, size=(48, 48), seed=5))
    return root


MODES = ["plain", "prefix-cache", "explained"]


@pytest.fixture(scope="module")
def ddp_runs(synth, tmp_path_factory):
    """One torchrun launch of 2 CPU processes that trains once per mode (tests/ddp_script.py):
    the launch's exit status and stderr, and the folder of the runs (one per mode)."""
    runs = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        str(HERE / "ddp_script.py"),
        str(synth),
        str(runs),
        *MODES,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stderr, runs


@pytest.mark.parametrize("mode", MODES)
def test_ddp_with_two_cpu_processes(ddp_runs, mode):
    code, stderr, runs = ddp_runs
    assert code == 0, stderr[-3000:]
    run = runs / mode
    digests = {(run / f"rank{r}.sha256").read_text() for r in (0, 1)}
    assert len(digests) == 1  # DDP kept both replicas identical
    assert (run / "rank1.epochs").read_text() == "2"
    history = json.loads((run / "history.json").read_text())
    assert len(history["epochs"]) == 2  # written once, by rank 0
    assert history["epochs"][0]["clips_per_second"] > 0
    if mode == "explained":
        assert history["epochs"][0]["train_explanation_loss"] > 0


def _vadx(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "vadx"), *args]


def test_kill_9_then_resume_ends_where_an_uninterrupted_run_ends(synth, tmp_path, capsys):
    if not Path(sys.executable).with_name("vadx").exists():
        pytest.skip("vadx is not installed as a console script here (make install does it)")
    epochs = ["--epochs", "4"]
    # the uninterrupted run in this process (the same command; a run is seeded and trains
    # alike in any process with the same number of threads), the others in their own
    argv = ["train", str(synth), "--out", str(tmp_path / "a"), *TINY_TRAIN_ARGS, *epochs]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err[-2000:]
    process = subprocess.Popen(
        _vadx("train", str(synth), "--out", str(tmp_path / "b"), *TINY_TRAIN_ARGS, *epochs),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "b" / "last" / "trainer.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads(state.read_text())["epoch"] < 3, "the run finished before it was killed"
    command = _vadx("train", str(synth), "--out", str(tmp_path / "b"), "--resume")
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first = load_model(tmp_path / "a" / "last").state_dict()
    second = load_model(tmp_path / "b" / "last").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_cli_bad_input_for_train_evaluate_detect(synth, tmp_path, capsys):
    import shutil

    import numpy as np

    from vadx.video import write_mp4

    one_class = tmp_path / "one"
    shutil.copytree(synth / "train" / "fire", one_class / "fire")
    code, _, err = run_cli(
        ["train", str(one_class), "--out", str(tmp_path / "r1"), *TINY_TRAIN_ARGS, "--epochs", "1"],
        capsys,
    )
    assert code == 2 and "at least two classes" in err
    code, _, err = run_cli(
        ["train", str(synth), "--out", str(tmp_path / "r2"), *TINY_TRAIN_ARGS, "--epochs", "1"],
        capsys,
    )
    assert code == 0, err
    code, _, err = run_cli(
        ["train", str(synth), "--out", str(tmp_path / "r2"), *TINY_TRAIN_ARGS], capsys
    )
    assert code == 2 and "already holds a training run; use --resume" in " ".join(err.split())
    short = write_mp4(tmp_path / "short.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=5)
    code, _, err = run_cli(
        ["detect", str(tmp_path / "r2" / "best"), str(short), "--out", str(tmp_path / "d")], capsys
    )
    assert code == 2 and "fewer than one window" in " ".join(err.split())
    weights = tmp_path / "r2" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    code, _, err = run_cli(
        [
            "evaluate",
            str(tmp_path / "r2" / "best"),
            str(synth),
            "--out",
            str(tmp_path / "e"),
            "--split",
            "val",
        ],
        capsys,
    )
    assert code == 2 and "corrupt or was changed" in " ".join(err.split())
    assert not (tmp_path / "d" / "events.json").exists() and not (tmp_path / "e").exists()
    code, _, err = run_cli(
        [
            "train",
            str(synth),
            "--out",
            str(tmp_path / "r3"),
            "--backbone",
            "vgg19",
            "--width",
            "0.0625",
        ],
        capsys,
    )
    assert code == 2 and "frozen but starts from random weights" in " ".join(err.split())
