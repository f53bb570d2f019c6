"""A folder of frames is a video everywhere a video file is (issue 29, item 3): ``detect``,
``explain``, a batch with frame-folder members, ``watch`` and ``compare`` — with the same
frames, the same results as reading the folder through the Python API."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import TINY, run_cli
from tests.videos import numbered_frames
from vadx.detect import DetectConfig, detect
from vadx.models import CRNN, save_model
from vadx.video import VideoReader, video_sha256


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    torch.manual_seed(0)
    model = save_model(CRNN(TINY), root / "model")
    frames = numbered_frames(30, moving=True)
    for name in ("cam1", "cam2"):
        folder = root / "archive" / name
        folder.mkdir(parents=True)
        for index, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{index:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return model, root / "archive", frames


def test_a_frame_folders_sha256_covers_every_frame_and_its_name(assets, tmp_path):
    _, archive, frames = assets
    folder = archive / "cam1"
    digest = video_sha256(folder)
    assert digest == video_sha256(folder) and digest != video_sha256(archive / "cam2" / "00000.png")
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    assert video_sha256(copy) == digest
    (copy / "00003.png").rename(copy / "00003b.png")  # same bytes, another order of names
    assert video_sha256(copy) != digest
    with VideoReader(folder) as video:
        assert np.array_equal(video.read([0, 29]).data, frames[[0, 29]])


def test_detect_and_explain_read_a_frame_folder(assets, tmp_path, capsys):
    model, archive, _ = assets
    folder = archive / "cam1"
    code, _, err = run_cli(
        ["detect", str(model), str(folder), "--out", str(tmp_path / "d")], capsys
    )
    assert code == 0, err
    written = json.loads((tmp_path / "d" / "events.json").read_text())
    assert written["video_sha256"] == video_sha256(folder)
    from vadx.models import load_model

    expected = detect(load_model(model), folder, DetectConfig())
    columns = (6, 7)  # anomaly, smoothed
    scores = np.loadtxt(tmp_path / "d" / "scores.csv", delimiter=",", skiprows=1, usecols=columns)
    assert np.allclose(scores[:, 0], expected.anomaly_score, atol=1e-4)
    assert np.allclose(scores[:, 1], expected.smoothed_score, atol=1e-4)
    explain = ["explain", str(model), str(folder), "--out", str(tmp_path / "e")]
    code, _, err = run_cli([*explain, "--methods", "gradcam", "--temporal", ""], capsys)
    assert code == 0, err
    assert (tmp_path / "e" / "report.html").is_file()


def test_a_batch_of_frame_folders_and_watching_one(assets, tmp_path, capsys):
    model, archive, _ = assets
    code, out, err = run_cli(
        ["detect", str(model), str(archive), "--out", str(tmp_path / "b")], capsys
    )
    assert code == 0, err
    assert "2 processed now, 0 already complete (skipped), 0 failed" in out
    watch = ["watch", str(model), str(archive / "cam1"), "--out", str(tmp_path / "w")]
    code, _, err = run_cli([*watch, "--no-explain"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["source_error"] is None and summary["metrics"]["frames_processed"] == 30
