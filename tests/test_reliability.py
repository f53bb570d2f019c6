"""Reliability (issue 17): every expected failure of every command is one ``error:`` line and
exit status 2, with nothing half-written; runs stopped at any point recover; checkpoints are
reproducible; truncated videos are reported.

The matrix runs the CLI in-process; only the signal tests start processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY, TINY_TRAIN_ARGS, run_cli
from tests.streams import free_port
from tests.videos import make_video, numbered_frames
from vadx.data.synth import SynthConfig, generate
from vadx.models import CRNN, load_model, save_model
from vadx.video import write_mp4

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Models, videos and files the cases refer to by ``{name}``."""
    root = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    model = CRNN(TINY)
    paths = {
        "model": save_model(model, root / "model"),
        "pad_model": save_model(CRNN(TINY.replace(fit="pad")), root / "pad_model"),
        "video": make_video(root / "video.mp4", numbered_frames(30, moving=True)),
        "short": make_video(root / "short.mp4", numbered_frames(3)),
        "wide": make_video(root / "wide.mp4", np.full((8, 4, 2000, 3), 90, np.uint8)),
        "file": root / "a-file",
        "text": root / "notes.txt",
        "folder": root / "a-folder",
        "damaged_model": root / "damaged",
    }
    paths["file"].write_text("not a folder")
    paths["text"].write_text("not a video")
    paths["folder"].mkdir()
    shutil.copytree(paths["model"], paths["damaged_model"])
    weights = paths["damaged_model"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    return paths


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(clips=(3, 2, 0), num_frames=16, size=(48, 48), seed=5))
    return root


# (argv, what the error line must name); {out} is a fresh path no case may create
MATRIX = {
    # "²" is a digit to str.isdigit but no class index (was: a ValueError traceback)
    "explain-target-superscript": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--target", "²"],
        "unknown class '²'",
    ),
    # import-keras and export (issue 18)
    "import-keras-out-is-a-file": (
        ["import-keras", "{text}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "import-keras-not-a-model": (
        ["import-keras", "{text}", "--out", "{out}"],
        "{text} is neither a Keras archive",
    ),
    "import-keras-missing": (
        ["import-keras", "{folder}/none.keras", "--out", "{out}"],
        "no Keras model at {folder}/none.keras",
    ),
    "export-under-a-file": (["export", "{model}", "--onnx", "{file}/m.onnx"], "{file} is a file"),
    "export-damaged-model": (
        ["export", "{damaged_model}", "--onnx", "{out}/m.onnx"],
        "{damaged_model}",
    ),
    # outputs that cannot be written
    "detect-out-is-a-file": (
        ["detect", "{model}", "{video}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "detect-out-under-a-file": (
        ["detect", "{model}", "{video}", "--out", "{file}/sub"],
        "{file} is a file",
    ),
    "detect-out-under-proc": (
        ["detect", "{model}", "{video}", "--out", "/proc/vadx-out"],
        "--out /proc/vadx-out cannot be written",
    ),
    "detect-out-under-sys": (
        ["detect", "{model}", "{video}", "--out", "/sys/vadx-out"],
        "--out /sys/vadx-out cannot be written",
    ),
    "explain-out-is-a-file": (
        ["explain", "{model}", "{video}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "compare-out-under-proc": (
        ["compare", "{model}", "{model}", "{video}", "--out", "/proc/vadx-out"],
        "--out /proc/vadx-out",
    ),
    "evaluate-out-is-a-file": (
        ["evaluate", "{model}", "{folder}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "xai-eval-out-under-a-file": (
        ["xai-eval", "{model}", "{folder}", "--out", "{file}/x"],
        "{file} is a file",
    ),
    "train-out-is-a-file": (["train", "{folder}", "--out", "{file}"], "--out {file} is a file"),
    "train-out-holds-other-files": (
        ["train", "{folder}", "--out", "{model}"],
        "{model} is not empty and holds no training run (config.json, model.safetensors)",
    ),
    "new-model-under-a-file": (["new-model", "{file}/m"], "OUT {file}/m cannot be created"),
    "new-model-under-proc": (["new-model", "/proc/vadx-model"], "OUT /proc/vadx-model"),
    "synth-under-a-file": (["synth", "{file}/s"], "OUT {file}/s cannot be created"),
    "demo-out-is-a-file": (["demo", "--out", "{file}"], "--out {file} is a file"),
    "watch-out-is-a-file": (
        ["watch", "{model}", "{video}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "watch-annotate-is-a-folder": (
        ["watch", "{model}", "{video}", "--out", "{out}", "--annotate", "{folder}"],
        "--annotate {folder} is a folder",
    ),
    "serve-data-dir-under-a-file": (
        ["serve", "{model}", "--data-dir", "{file}/d"],
        "--data-dir {file}/d cannot be created",
    ),
    "calibrate-missing-model": (
        ["calibrate", "/proc/vadx-model", "{folder}"],
        "no checkpoint at /proc/vadx-model",
    ),
    "calibrate-trust-missing-model": (
        ["calibrate-trust", "/proc/vadx-model", "{folder}"],
        "no checkpoint at /proc/vadx-model",
    ),
    "choose-layer-missing-model": (
        ["choose-layer", "/proc/vadx-model", "{folder}"],
        "no checkpoint at /proc/vadx-model",
    ),
    "choose-layer-clips-zero": (
        ["choose-layer", "{model}", "{folder}", "--clips", "0"],
        "'--clips': must be an integer from 1 to 10,000, got '0'",
    ),
    "learn-normal-missing-footage": (
        ["learn-normal", "{model}", "{folder}/gone.mp4", "--out", "{out}"],
        "video not found: {folder}/gone.mp4",
    ),
    "learn-normal-out-is-a-file": (
        ["learn-normal", "{model}", "{video}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "update-normal-not-a-normality-model": (
        ["update-normal", "{model}", "{video}", "--out", "{out}"],
        "is not a normality model",
    ),
    "update-normal-out-is-a-file": (
        ["update-normal", "{model}", "{video}", "--out", "{file}"],
        "--out {file} is a file",
    ),
    "choose-layer-not-a-cam-method": (
        ["choose-layer", "{model}", "{folder}", "--method", "saliency"],
        "a layer can be chosen for gradcam",
    ),
    "import-boxes-not-annotations": (
        ["import-boxes", "{text}", "{video}"],
        "unknown annotation format .txt",
    ),
    "import-boxes-out-is-a-folder": (
        ["import-boxes", "{text}", "{video}", "--out", "{folder}"],
        "--out {folder} is a folder",
    ),
    # inputs
    "train-given-a-video": (["train", "{video}", "--out", "{out}"], "is a video, not a dataset"),
    "evaluate-given-a-video": (
        ["evaluate", "{model}", "{video}", "--out", "{out}"],
        "is a video, not a dataset",
    ),
    "compare-missing-video": (
        ["compare", "{model}", "{model}", "{folder}/gone.mp4", "--out", "{out}"],
        "video not found: {folder}/gone.mp4",
    ),
    "detect-missing-video": (
        ["detect", "{model}", "{folder}/gone.mp4", "--out", "{out}"],
        "video not found: {folder}/gone.mp4",
    ),
    "detect-text-file": (
        ["detect", "{model}", "{text}", "--out", "{out}"],
        "{text} is not a video FFmpeg can read",
    ),
    "detect-damaged-checkpoint": (
        ["detect", "{damaged_model}", "{video}", "--out", "{out}"],
        "corrupt or was changed",
    ),
    "detect-no-video": (["detect", "{model}", "--out", "{out}"], "give a VIDEO"),
    "detect-batch-missing-video": (
        ["detect", "{model}", "{video}", "{folder}/gone.mp4", "--out", "{out}"],
        "video not found: {folder}/gone.mp4",
    ),
    "detect-batch-folder-without-videos": (
        ["detect", "{model}", "{folder}", "--out", "{out}"],
        "{folder} holds no video file",
    ),
    "detect-batch-missing-list": (
        ["detect", "{model}", "--list", "{folder}/none.txt", "--out", "{out}"],
        "--list {folder}/none.txt cannot be read",
    ),
    "detect-batch-damaged-checkpoint": (
        ["detect", "{damaged_model}", "{video}", "{short}", "--out", "{out}"],
        "corrupt or was changed",
    ),
    "detect-batch-suppress-without-statistics": (
        ["detect", "{model}", "{video}", "{short}", "--out", "{out}", "--domain", "suppress"],
        "domain 'suppress' needs domain statistics",
    ),
    "explain-batch-needs-flagged": (
        ["explain", "{model}", "{video}", "{short}", "--out", "{out}"],
        "add --windows flagged",
    ),
    "explain-batch-with-detection": (
        [
            "explain",
            "{model}",
            "{video}",
            "{short}",
            "--out",
            "{out}",
            "--windows",
            "flagged",
            "--detection",
            "{folder}",
        ],
        "a batch detects each",
    ),
    "explain-batch-unknown-target": (
        [
            "explain",
            "{model}",
            "{video}",
            "{short}",
            "--out",
            "{out}",
            "--windows",
            "flagged",
            "--target",
            "nope",
        ],
        "nope",
    ),
    "info-missing-model": (["info", "{folder}/none"], "no checkpoint at {folder}/none"),
    "info-file-as-model": (["info", "{file}"], "{file} is a file"),
    "probe-missing-video": (["probe", "{folder}/gone.mp4"], "video not found"),
    "new-model-over-a-checkpoint": (["new-model", "{model}"], "give --force to replace it"),
    "train-resume-nothing": (
        ["train", "{folder}", "--out", "{out}", "--resume"],
        "nothing to resume: {out} holds no training run",
    ),
    "train-override-alone": (
        ["train", "{folder}", "--out", "{out}", "--override"],
        "--override changes the settings of a resumed run",
    ),
    "watch-missing-file": (
        ["watch", "{model}", "{folder}/gone.mp4", "--out", "{out}"],
        "video not found: {folder}/gone.mp4",
    ),
    "watch-text-source": (
        ["watch", "{model}", "{text}", "--out", "{out}", "--no-explain"],
        "the source failed for good",
    ),
    "watch-nothing-listening": (
        [
            "watch",
            "{model}",
            "tcp://127.0.0.1:{closed_port}",
            "--out",
            "{out}",
            "--no-explain",
            "--max-retries",
            "1",
        ],
        "the source failed for good",
    ),
    "serve-port-in-use": (
        ["serve", "{model}", "--port", "{busy_port}", "--data-dir", "{out}"],
        "--port {busy_port} on 127.0.0.1 is in use",
    ),
    # options, refused before any work
    "evaluate-batch-size-negative": (
        ["evaluate", "{model}", "{folder}", "--out", "{out}", "--batch-size", "-1"],
        "'--batch-size': must be an integer from 1 to 4,096, got '-1'",
    ),
    "evaluate-workers-negative": (
        ["evaluate", "{model}", "{folder}", "--out", "{out}", "--workers", "-2"],
        "'--workers': must be an integer from 0 to 256, got '-2'",
    ),
    "calibrate-batch-size-zero": (
        ["calibrate", "{model}", "{folder}", "--batch-size", "0"],
        "'--batch-size': must be an integer from 1 to 4,096, got '0'",
    ),
    "explain-unknown-target": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--target", "bogus"],
        "unknown class 'bogus'",
    ),
    "explain-target-out-of-range": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--target", "9"],
        "9",
    ),
    "explain-opacity": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--opacity", "3"],
        "'--opacity': must be a finite number from 0 to 1, got '3'",
    ),
    "explain-colormap": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--colormap", "nope"],
        "unknown colormap 'nope'",
    ),
    "explain-weighting": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--weighting", "x"],
        "weighting must be one of frame, clip",
    ),
    "explain-normalisation": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--normalisation", "x"],
        "normalisation must be one of",
    ),
    "explain-view": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--view", "x"],
        "unknown view 'x'",
    ),
    "explain-method": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--methods", "nope"],
        "unknown method 'nope'",
    ),
    "compare-target": (
        ["compare", "{model}", "{model}", "{video}", "--out", "{out}", "--target", "bogus"],
        "unknown class 'bogus'",
    ),
    "explain-end-before-start": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--start", "20", "--end", "10"],
        "--end 10 is before --start 20 (video {video})",
    ),
    "explain-span-outside-with-timeline": (
        ["explain", "{model}", "{video}", "--out", "{out}", "--start", "25", "--end", "40"],
        "frame span 25–40 is not inside {video}",
    ),
    "explain-span-outside": (
        [
            "explain",
            "{model}",
            "{video}",
            "--out",
            "{out}",
            "--start",
            "25",
            "--end",
            "40",
            "--no-timeline",
        ],
        "frame span 25–40 is not inside {video}: it has 30 frames",
    ),
    "detect-too-short-for-the-model": (
        ["detect", "{model}", "{short}", "--out", "{out}", "--step", "1"],
        "the model needs a video of at least 4 frames",
    ),
    "detect-step-too-large": (
        ["detect", "{model}", "{video}", "--out", "{out}", "--step", "20"],
        "use a smaller --step (at most 9)",
    ),
    "detect-thresholds": (
        ["detect", "{model}", "{video}", "--out", "{out}", "--on", "0.2", "--off", "0.5"],
        "thresholds need 0 ≤ off ≤ on ≤ 1",
    ),
    "detect-suppress-without-statistics": (
        ["detect", "{model}", "{video}", "--out", "{out}", "--domain", "suppress"],
        "domain 'suppress' needs domain statistics",
    ),
    "synth-clips": (["synth", "{out}", "--clips", "1,2"], "--clips takes three counts"),
    # issue 29, item 8
    "synth-classes-repeat": (
        ["synth", "{out}", "--classes", "fight,fight"],
        "classes must not repeat, got ('fight', 'fight')",
    ),
    "train-workers-negative": (
        ["train", "{folder}", "--out", "{out}", "--workers", "-1"],
        "'--workers': must be an integer from 0 to 256, got '-1'",
    ),
    "train-epochs-zero": (
        ["train", "{folder}", "--out", "{out}", "--epochs", "0"],
        "'--epochs': must be an integer from 1 to 100,000, got '0'",
    ),
    "demo-epochs-zero": (
        ["demo", "--out", "{out}", "--epochs", "0"],
        "'--epochs': must be an integer from 1 to 100,000, got '0'",
    ),
    "demo-clips-zero": (
        ["demo", "--out", "{out}", "--clips", "0,0,0"],
        "--clips takes three counts of at least 1",
    ),
    "watch-max-frames-zero": (
        ["watch", "{model}", "{video}", "--out", "{out}", "--max-frames", "0"],
        "'--max-frames': must be an integer from 1 to 1,000,000,000",
    ),
    "watch-duration-negative": (
        ["watch", "{model}", "{video}", "--out", "{out}", "--duration", "-1"],
        "'--duration': must be a finite number from 0.001 to 1,000,000,000",
    ),
    "xai-eval-steps-zero": (
        ["xai-eval", "{model}", "{folder}", "--out", "{out}", "--steps", "0"],
        "'--steps': must be an integer from 1 to 1,000, got '0'",
    ),
    "new-model-freeze": (["new-model", "{out}", "--freeze", "most"], "--freeze takes none, all"),
    "serve-empty-token": (
        ["serve", "{model}", "--token", "", "--port", "0", "--data-dir", "{out}"],
        "the token is empty: every request would pass as authorised",
    ),
    "serve-port-range": (
        ["serve", "{model}", "--port", "70000", "--data-dir", "{out}"],
        "'--port': must be an integer from 0 to 65,535, got '70000'",
    ),
}


def _fill(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace("{" + key + "}", value)
    return text


def assert_one_error_line(code: int, err: str, names: str) -> None:
    """Exit status 2; stderr's only ``error:`` line names ``names``; no traceback, and no
    empty line (a progress bar's) anywhere."""
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert names in " ".join(err.split()), err
    assert "Traceback" not in err and "UserWarning" not in err
    assert all(line.strip() for line in err.splitlines()), repr(err)


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly where a command starts its real work (the CNN over frames, explaining)."""
    import vadx.detect
    import vadx.explanations.video

    def work(*args, **kwargs):
        raise AssertionError("work started before the failure was found")

    monkeypatch.setattr(vadx.detect, "video_features", work)
    monkeypatch.setattr(vadx.explanations.video, "explain_frames", work)


@pytest.mark.parametrize("case", list(MATRIX))
def test_every_failure_is_one_error_line_and_writes_nothing(
    case, assets, tmp_path, capsys, no_work
):
    argv, names = MATRIX[case]
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {key: str(path) for key, path in assets.items()}
    values.update(
        out=str(tmp_path / "out"),
        closed_port=str(free_port()),
        busy_port=str(busy.getsockname()[1]),
    )
    before = sorted(p.name for p in assets["model"].parent.iterdir())
    weights = (assets["model"] / "model.safetensors").read_bytes()
    with busy:
        code, _, err = run_cli([_fill(a, values) for a in argv], capsys)
    assert_one_error_line(code, err, _fill(names, values))
    if case.startswith(("watch-text", "watch-nothing")):  # it watched: its record stays
        assert json.loads((tmp_path / "out" / "summary.json").read_text())["source_error"]
    else:
        assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in assets["model"].parent.iterdir()) == before
    assert (assets["model"] / "model.safetensors").read_bytes() == weights
    assert not any(p.name.startswith(".") for p in Path(assets["file"]).parent.iterdir())


def test_the_matrix_covers_every_command():
    from vadx.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    covered = {argv[0] for argv, _ in MATRIX.values()}
    assert commands - covered == {"backbones"}  # takes nothing that can be wrong


def test_an_unexpected_exception_is_a_traceback_and_a_request_to_report_it(
    assets, tmp_path, capsys, monkeypatch
):
    import vadx.detect

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(vadx.detect, "detect", broken)
    code, _, err = run_cli(
        ["detect", str(assets["model"]), str(assets["video"]), "--out", str(tmp_path / "d")], capsys
    )
    assert code == 1
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err
    assert err.strip().splitlines()[-1].startswith("error: unexpected failure in vadx")
    assert "please report it" in err and not (tmp_path / "d").exists()


def test_a_2000x4_video_is_explained(assets, tmp_path, capsys):
    code, _, err = run_cli(
        [
            "explain",
            str(assets["pad_model"]),
            str(assets["wide"]),
            "--out",
            str(tmp_path / "e"),
            "--methods",
            "gradcam",
            "--temporal",
            "",
            "--no-timeline",
        ],
        capsys,
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["source"]["size"] == [4, 2000]
    assert manifest["preprocessing"]["picture_share"] == pytest.approx(1 / 32, abs=1e-6)


# ----------------------------------------------------------------------------- outputs
def test_detect_outputs_appear_together_and_replace_earlier_ones(assets, tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "events.json").write_text("{}")
    (out / "mine.txt").write_text("kept")
    code, _, err = run_cli(
        ["detect", str(assets["model"]), str(assets["video"]), "--out", str(out)], capsys
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.mp4",
        "events.json",
        "mine.txt",
        "scores.csv",
        "scores.png",
    ]
    assert json.loads((out / "events.json").read_text())["windows"] == 27  # 30 frames, stride 1
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no staging left beside it


SIGTERM_DURING_ENCODING = """
import pathlib, sys, time
import vadx.video.encode
from vadx.cli import main

write = vadx.video.encode.Mp4Writer.write

def slow(self, frame):
    write(self, frame)
    if self.count == 3:
        pathlib.Path(sys.argv[1]).touch()
        time.sleep(120)

vadx.video.encode.Mp4Writer.write = slow
main(sys.argv[2:])
"""


@pytest.mark.parametrize("earlier", [False, True])
def test_sigterm_while_detect_encodes_leaves_nothing_half_written(assets, tmp_path, earlier):
    out = tmp_path / "d"
    if earlier:  # a finished earlier detection stays as it was
        out.mkdir()
        (out / "events.json").write_text('{"earlier": true}')
    marker = tmp_path / "encoding"
    process = _start(
        SIGTERM_DURING_ENCODING,
        marker,
        "detect",
        str(assets["model"]),
        str(assets["video"]),
        "--out",
        str(out),
    )
    _wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM; unfinished outputs were removed" in err and "Traceback" not in err
    if earlier:
        assert [p.name for p in out.iterdir()] == ["events.json"]
        assert json.loads((out / "events.json").read_text()) == {"earlier": True}
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["encoding", *(["d"] * earlier)])


def _start(script: str, marker: Path, *argv: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(marker), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(marker: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the process never reached the point to stop it at"
        time.sleep(0.05)


def test_an_interrupted_synth_leaves_nothing(tmp_path):
    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(
            tmp_path / "s",
            SynthConfig(clips=(2, 1, 0), num_frames=8, size=(48, 48)),
            progress=interrupt,
        )
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- training runs
KILLED_BEFORE_THE_FIRST_CHECKPOINT = """
import pathlib, sys, time
import vadx.train.loop
from vadx.cli import main

def never_ends(*args, **kwargs):
    pathlib.Path(sys.argv[1]).touch()
    time.sleep(600)

vadx.train.loop._run_epoch = never_ends
main(sys.argv[2:])
"""


def test_a_run_killed_before_its_first_checkpoint_resumes_or_restarts(synth, tmp_path, capsys):
    run = ["train", str(synth), *TINY_TRAIN_ARGS, "--epochs", "2"]
    marker = tmp_path / "training"
    process = _start(KILLED_BEFORE_THE_FIRST_CHECKPOINT, marker, *run, "--out", str(tmp_path / "a"))
    _wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["train_config.json"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    code, _, err = run_cli(["train", str(synth), "--out", str(tmp_path / "a"), "--resume"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*run, "--out", str(tmp_path / "b")], capsys)  # starts over
    assert code == 0, err
    histories = [json.loads((tmp_path / r / "history.json").read_text()) for r in "ab"]
    assert [[e["epoch"] for e in h["epochs"]] for h in histories] == [[0, 1], [0, 1]]
    resumed, restarted = (load_model(tmp_path / r / "last").state_dict() for r in "ab")
    assert all(torch.equal(resumed[k], restarted[k]) for k in resumed)


def test_a_frame_size_below_the_backbones_says_the_minimum(synth, tmp_path, capsys):
    argv = ["train", str(synth), "--out", str(tmp_path / "r"), "--size", "2"]
    code, _, err = run_cli([*argv, "--backbone", "efficientnet_lite0"], capsys)
    assert_one_error_line(code, err, "frame_size (2, 2) is too small: efficientnet_lite0 needs")
    assert "at least 32×32" in err and not (tmp_path / "r").exists()


def test_resume_names_changed_settings_and_needs_override(synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    (data / "train" / "fire" / "broken.mp4").write_bytes(b"\x00" * 100)
    out = str(tmp_path / "run")
    code, _, err = run_cli(
        [
            "train",
            str(data),
            "--out",
            out,
            *TINY_TRAIN_ARGS,
            "--epochs",
            "1",
            "--lr",
            "0.001",
            "--skip-bad",
        ],
        capsys,
    )
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and warning[0].startswith("warning: skipped 1 of 13 videos"), err
    assert "<string>" not in err and "UserWarning" not in err
    last = (tmp_path / "run" / "last" / "model.safetensors").read_bytes()

    code, _, err = run_cli(
        [
            "train",
            str(data),
            "--out",
            out,
            "--resume",
            "--skip-bad",
            "--epochs",
            "2",
            "--lr",
            "0.1",
        ],
        capsys,
    )
    assert_one_error_line(
        code, err, "--epochs 2 (the run: 1); --lr 0.1 (the run: 0.001); give --override"
    )
    code, _, err = run_cli(
        ["train", str(data), "--out", out, "--resume", "--skip-bad", "--size", "64", "--override"],
        capsys,
    )
    assert_one_error_line(code, err, "cannot resume " + out + " with other --size")
    assert (tmp_path / "run" / "last" / "model.safetensors").read_bytes() == last

    code, _, err = run_cli(
        [
            "train",
            str(data),
            "--out",
            out,
            "--resume",
            "--skip-bad",
            "--epochs",
            "2",
            "--lr",
            "0.1",
            "--override",
        ],
        capsys,
    )
    assert code == 0, err
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert [(e["epoch"], e["lr"]) for e in history] == [(0, 0.001), (1, pytest.approx(0.1))]
    recorded = json.loads((tmp_path / "run" / "train_config.json").read_text())["train"]
    assert (recorded["epochs"], recorded["lr"]) == (2, 0.1)


# ----------------------------------------------------------------------------- checkpoints
def test_the_same_weights_give_the_same_bytes_and_model_id(tmp_path):
    torch.manual_seed(0)
    model = CRNN(TINY)
    saved = [save_model(model, tmp_path / f"m{k}", metadata={"b": 1, "a": 2}) for k in range(8)]
    assert len({(path / "model.safetensors").read_bytes() for path in saved}) == 1
    assert len({load_model(path).checkpoint.model_id for path in saved}) == 1
    again = load_model(saved[0])
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_new_model_replaces_a_checkpoint_only_with_force(tmp_path, capsys):
    target = str(tmp_path / "m")
    tiny = ["--width", "0.0625", "--rnn-hidden", "8", "--head", "8", "--frames", "4"]
    assert run_cli(["new-model", target, *tiny], capsys)[0] == 0
    first = load_model(target).checkpoint.model_id
    code, _, err = run_cli(["new-model", target, *tiny, "--seed", "1"], capsys)
    assert_one_error_line(code, err, f"{target} already holds a checkpoint: give --force")
    assert load_model(target).checkpoint.model_id == first
    assert run_cli(["new-model", target, *tiny, "--seed", "1", "--force"], capsys)[0] == 0
    assert load_model(target).checkpoint.model_id != first
    assert run_cli(["new-model", str(tmp_path / "n"), *tiny, "--seed", "1"], capsys)[0] == 0
    assert load_model(tmp_path / "n").checkpoint.model_id == load_model(target).checkpoint.model_id


# ----------------------------------------------------------------------------- damaged input
def test_a_truncated_video_is_reported_and_recorded(assets, tmp_path, capsys):
    frames = np.random.default_rng(0).integers(0, 255, (40, 48, 64, 3), dtype=np.uint8)
    whole = write_mp4(tmp_path / "whole.mp4", frames, fps=10)  # index first (+faststart)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, _, err = run_cli(
        ["detect", str(assets["model"]), str(cut), "--out", str(tmp_path / "d"), "--no-annotate"],
        capsys,
    )
    assert code == 0, err
    warning = [line for line in " ".join(err.split()).split("note:")[0].split("warning: ")[1:]]
    assert warning == [
        f"{cut} is truncated or damaged: decoding stopped at frame 17, the "
        "container announces 40 frames; the missing end is left out "
    ]
    info = json.loads((tmp_path / "d" / "events.json").read_text())["video_info"]
    assert (info["num_frames"], info["announced_frames"], info["truncated"]) == (17, 40, True)
    code, _, err = run_cli(
        ["detect", str(assets["model"]), str(whole), "--out", str(tmp_path / "w"), "--no-annotate"],
        capsys,
    )
    info = json.loads((tmp_path / "w" / "events.json").read_text())["video_info"]
    assert (info["num_frames"], info["announced_frames"], info["truncated"]) == (40, 40, False)
    assert "warning" not in err


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["detect", "m", "v", "--out", "o", "--stride", "abc"], "Invalid value for '--stride'"),
        (["detect", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["evaluate", "m", "d"], "Missing option '--out'"),
    ],
)
def test_what_the_parser_refuses_is_one_error_line_too(argv, names, capsys):
    code, out, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, names)
    assert "--help)" in err and "╭" not in err + out  # no usage box
