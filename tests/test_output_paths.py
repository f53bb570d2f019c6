"""Output paths and the processes that share them (issue 29, items 4–6): an empty path is no
path, a name as long as the file system allows is written, a dangling link is followed, a
device is never replaced, names that are not UTF-8 and closed pipes are no failure; two
processes never write one output at once, and what a killed run left is cleared by the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import TINY, run_cli
from tests.test_reliability import assert_one_error_line
from tests.videos import make_video, numbered_frames
from vadx.files import claim, hidden_name, path_text, release_claims
from vadx.models import CRNN, save_model


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    torch.manual_seed(0)
    return save_model(CRNN(TINY), root / "model"), make_video(
        root / "video.mp4", numbered_frames(30, moving=True)
    )


def detect_argv(assets, out) -> list[str]:
    return ["detect", str(assets[0]), str(assets[1]), "--out", str(out)]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["detect", "m", "v", "--out", ""], "--out is empty: give a path"),
        (["detect", "m", "v", "--out="], "--out is empty: give a path"),
        (["detect", "m", "", "--out", "o"], "VIDEO is empty: give a path"),
        (["explain", "", "v", "--out", "o"], "MODEL is empty: give a path"),
        (["synth", ""], "OUT is empty: give a path"),
    ],
)
def test_an_empty_path_is_no_path(argv, names, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, names)
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder


def test_the_empty_strings_other_options_take_are_kept(tmp_path, capsys):
    # --temporal '' means "no estimator": only paths are refused when empty
    _, _, err = run_cli(
        ["explain", "m", "v", "--out", str(tmp_path / "o"), "--temporal", ""], capsys
    )
    assert "is empty" not in err and "no checkpoint at m" in err


def test_a_name_as_long_as_the_file_system_allows_is_written(assets, tmp_path, capsys):
    out = tmp_path / ("x" * 250)
    code, _, err = run_cli(detect_argv(assets, out), capsys)
    assert code == 0, err
    assert (out / "events.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no staging, no lock left
    assert len(os.fsencode(hidden_name(tmp_path / ("é" * 200), ".partial-"))) + 8 <= 255


def test_a_dangling_link_is_followed(assets, tmp_path, capsys):
    link = tmp_path / "latest"
    link.symlink_to(tmp_path / "runs" / "today")
    code, _, err = run_cli(detect_argv(assets, link), capsys)
    assert code == 0, err
    assert link.is_symlink() and (tmp_path / "runs" / "today" / "events.json").is_file()


def test_a_device_is_never_replaced_by_an_output(assets, tmp_path, capsys):
    argv = ["watch", str(assets[0]), str(assets[1]), "--out", str(tmp_path / "w")]
    code, _, err = run_cli([*argv, "--annotate", "/dev/null", "--no-explain"], capsys)
    assert_one_error_line(code, err, "--annotate /dev/null is not a regular file")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run_cli(
        ["detect", str(assets[0]), "--list", str(fifo), "--out", str(tmp_path / "d")], capsys
    )
    assert_one_error_line(code, err, f"--list {fifo} is not a regular file")  # never blocks


def test_names_that_are_not_utf8_and_files_of_random_bytes(assets, tmp_path, capsys):
    archive = tmp_path / "archive"
    archive.mkdir()
    odd = os.fsdecode(b"caf\xe9.mp4")
    (archive / odd).write_bytes(assets[1].read_bytes())
    code, _, err = run_cli(
        ["detect", str(assets[0]), str(archive), "--out", str(tmp_path / "b")], capsys
    )
    assert code == 0, err
    assert path_text(odd) == "caf\\xe9.mp4"
    assert "caf\\xe9.mp4" in (tmp_path / "b" / "videos.csv").read_text(encoding="utf-8")
    noise = tmp_path / "noise.txt"
    noise.write_bytes(bytes(range(256)) * 4)
    code, _, err = run_cli(
        [
            "evaluate",
            str(assets[0]),
            str(archive),
            "--out",
            str(tmp_path / "e"),
            "--annotations",
            str(noise),
        ],
        capsys,
    )
    assert_one_error_line(code, err, "is not a temporal annotation file (not UTF-8 text)")


def test_a_closed_pipe_is_not_an_error(assets):
    shell = f"{sys.executable} -m vadx info {assets[0]} --layers | head -1; echo ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "0", done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr


def test_two_processes_never_write_one_output(assets, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from vadx.files import claim
                claim(Path({str(out)!r}), "--out")
                print("claimed", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        code, _, err = run_cli(detect_argv(assets, out), capsys)
        assert_one_error_line(code, err, f"--out {out} is being written by another vadx process")
        assert f"(pid {holder.pid})" in err and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli(detect_argv(assets, out), capsys)  # its lock died with it
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_same_process_claims_once_and_gives_claims_back(tmp_path):
    target = tmp_path / "run"
    claim(target, "--out")
    claim(target, "--out")  # again: already this process's
    lock = tmp_path / hidden_name(target, ".lock")
    assert lock.read_text() == str(os.getpid())
    release_claims()
    assert not lock.exists()


def test_what_a_killed_run_left_is_cleared_by_the_next(assets, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(detect_argv(assets, out), capsys)
    assert code == 0, err
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from vadx.cli import main
        import vadx.detect.files as d
        real = d.write_detection_files
        def killed(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # after writing into the staging folder
        d.write_detection_files = killed
        main({detect_argv(assets, out)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert len(left) == 1  # what SIGKILL leaves
    before = json.loads((out / "events.json").read_text())
    code, _, err = run_cli(detect_argv(assets, out), capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert json.loads((out / "events.json").read_text())["events"] == before["events"]
