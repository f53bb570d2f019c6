"""Batches, evaluation and xai-eval shared among processes by torchrun (issue 19): two
processes on one machine, and two "machines" (two torchrun agents meeting at a rendezvous on
127.0.0.1), write exactly what one process writes. Every process runs one thread, as the one
process it is compared with: a thread pool of another size sums floats in another order, and
the last bits of a probability may differ (docs/batch.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_checkpoint
from tests.streams import free_port
from tests.test_batch import QUICK, make_archive, tree
from vadx.data.synth import SynthConfig, generate

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1", "VADX_THREADS": "1"}


def one_process(argv: list[str]) -> subprocess.Popen:
    """``python -m vadx ARGV`` started, not awaited: one process of one thread leaves a core
    idle beside it, which the torchrun launch it is compared with can use."""
    return subprocess.Popen(
        [sys.executable, "-m", "vadx", *argv],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def torchrun(argv: list[str], nproc: int = 2, **node) -> subprocess.Popen:
    """``torchrun … -m vadx ARGV``: ``nproc`` processes on a standalone rendezvous, or with
    ``node`` (``nnodes``, ``endpoint``) one machine of several."""
    if node:
        launch = [
            "--nnodes",
            str(node["nnodes"]),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            node["endpoint"],
            "--rdzv-id",
            "vadx-test",
        ]
    else:
        launch = ["--standalone"]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
        "--nproc-per-node",
        str(nproc),
        "-m",
        "vadx",
        *argv,
    ]
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    archive = make_archive(root / "archive")
    model = tiny_checkpoint(root / "model")
    single = root / "single"
    started = one_process(["detect", str(model), str(archive), "--out", str(single), *QUICK])
    finished: list[tuple[int, str, str]] = []

    def batch_of_one_process() -> Path:
        """The one process's batch, awaited on first use (the first test's launch runs
        beside it)."""
        if not finished:
            finished.append(finish(started))
        code, _, err = finished[0]
        assert code == 2, err  # the damaged video
        return single

    yield archive, model, batch_of_one_process
    started.kill()  # a selection of tests that never needed it
    started.communicate()


def test_two_processes_write_what_one_process_writes(setup, tmp_path):
    archive, model, batch_of_one_process = setup
    out = tmp_path / "out"
    code, text, err = finish(
        torchrun(["detect", str(model), str(archive), "--out", str(out), *QUICK])
    )
    assert code != 0  # a rank exited 2: the damaged video, which torchrun reports as failed
    assert "5 video(s): 5 processed now by 2 processes" in text
    assert "error: 1 of 5 videos failed (cam2/broken.mp4)" in err
    done: dict[str, set[str]] = {"0": set(), "1": set()}
    for rank, key in re.findall(r"rank (\d): (?:\d+/\d+ )?(\S+?):? (?:\d+ event|failed)", err):
        done[rank].add(key)
    assert done["0"] and done["1"] and not done["0"] & done["1"]  # each video by one rank
    assert len(done["0"] | done["1"]) == 5
    assert tree(out) == tree(batch_of_one_process())


def test_two_machines_on_loopback_write_what_one_process_writes(setup, tmp_path):
    archive, model, batch_of_one_process = setup
    out = tmp_path / "out"
    endpoint = f"127.0.0.1:{free_port()}"
    argv = ["detect", str(model), str(archive), "--out", str(out), *QUICK]
    nodes = [torchrun(argv, nproc=1, nnodes=2, endpoint=endpoint) for _ in range(2)]
    results = [finish(node) for node in nodes]
    said = "".join(text for _, text, _ in results)
    assert said.count("5 video(s): 5 processed now by 2 processes") == 1  # rank 0 alone tells
    assert tree(out) == tree(batch_of_one_process())


def test_a_rerun_with_more_processes_skips_what_one_process_did(setup, tmp_path):
    archive, model, batch_of_one_process = setup
    single = batch_of_one_process()
    out = tmp_path / "out"
    os_copy = subprocess.run(["cp", "-a", str(single), str(out)], check=True)
    assert os_copy.returncode == 0
    _code, text, _ = finish(
        torchrun(["detect", str(model), str(archive), "--out", str(out), *QUICK])
    )
    assert "1 processed now by 2 processes, 4 already complete (skipped), 1 failed" in text
    assert tree(out) == tree(single)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(clips=(1, 1, 2), num_frames=12, size=(48, 48), seed=3))
    return root


def test_sharded_evaluation_equals_one_process(setup, synth, tmp_path):
    model = setup[1]
    argv = ["evaluate", str(model), str(synth), "--workers", "0", "--batch-size", "3"]
    one = one_process([*argv, "--out", str(tmp_path / "one")])
    code, text, err = finish(torchrun([*argv, "--out", str(tmp_path / "two")]))
    one_code, _, one_err = finish(one)
    assert one_code == 0, one_err
    assert code == 0, err
    assert text.count("accuracy") == 1  # rank 0 tells, once
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert sum(metrics["per_class"][name]["support"] for name in metrics["per_class"]) == 8


def test_sharded_xai_eval_equals_one_process(setup, synth, tmp_path):
    model = setup[1]
    argv = [
        "xai-eval",
        str(model),
        str(synth),
        "--methods",
        "gradcam,saliency",
        "--temporal",
        "frame_occlusion",
        "--faithfulness-clips",
        "3",
        "--sanity-clips",
        "1",
        "--steps",
        "4",
    ]
    one = one_process([*argv, "--out", str(tmp_path / "one")])
    code, _, err = finish(torchrun([*argv, "--out", str(tmp_path / "two")]))
    one_code, _, one_err = finish(one)
    assert one_code == 0, one_err
    assert code == 0, err
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    document = json.loads((tmp_path / "one" / "xai-eval.json").read_text())
    assert document["clips_scored"] == 6 and document["sanity_clips"] == 1
