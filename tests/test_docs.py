"""The examples in the README and in docstrings run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import vadx

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # the blocks build on each other, as in a reader's session
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "small" / "config.json").is_file()


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in lines[:8] if line.startswith("make ")]
    assert [c.split()[1] for c in commands] == ["demo", "test"]


MODULES = sorted(m.name for m in pkgutil.walk_packages(vadx.__path__, "vadx."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_domain_doc_python_example_runs(tmp_path, monkeypatch):
    """docs/domain.md's UCF-Crime example, on tiny videos and a tiny model (same calls)."""
    from vadx.data.synth import render_long
    from vadx.models import load_model
    from vadx.video import write_mp4

    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "domain.md").read_text(), re.S)
    small = ', backbone_args={"width": 0.0625}, num_frames=4, frame_size=(32, 32), rnn_hidden=8'
    for old, new in (
        ('fit="stretch")', f'fit="stretch"{small})'),
        ("window=20", "window=4"),
        ("stride=10", "stride=6"),
        ("step=2", "step=3"),
        ("epochs=30", "epochs=1, workers=0"),
    ):
        assert old in block, old
        block = block.replace(old, new)
    monkeypatch.chdir(tmp_path)
    videos = tmp_path / "ucf-crime" / "videos"
    lines = {"train": [], "val": []}
    for k, (kind, label) in enumerate([("fight", "Fighting"), ("fire", "Arson")] * 2):
        long = render_long(k, [("normal", 18), (kind, 18), ("normal", 12)], (48, 64))
        write_mp4(videos / label / f"{label}{k:03d}_x264.mp4", long.frames, fps=10)
        lines["train" if k < 2 else "val"].append(f"{label}{k:03d}_x264.mp4 {label} 18 35 -1 -1")
    for split, rows in lines.items():
        (tmp_path / "ucf-crime" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    namespace: dict = {}
    exec(compile(block, "docs/domain.md", "exec"), namespace)
    trained = load_model(tmp_path / "runs" / "ucf" / "best")
    assert trained.config.fit == "stretch" and trained.domain is not None


def test_ground_truth_doc_python_example_runs():
    """docs/ground-truth.md's counterfactual clips, as written."""
    (block,) = re.findall(
        r"```python\n(.*?)```", (ROOT / "docs" / "ground-truth.md").read_text(), re.S
    )
    namespace: dict = {}
    exec(compile(block, "ground-truth.md", "exec"), namespace)
    clip, without = namespace["clip"], namespace["without"]
    assert set(clip.actors) >= {"walker-1", "fighter-1", "fighter-2"}
    assert clip.actors["fighter-1"] == (1000,) and clip.actors["fighter-2"] == (1001,)
    assert not without.actor_masks("fighter-1").any() and clip.actor_masks("fighter-1").any()
    assert namespace["later"].start == clip.start + 5


def test_trust_doc_python_example_runs(tmp_path, monkeypatch, tiny_model, tiny_clip):
    """docs/trust.md's example, as written, on a tiny model and video."""
    import json

    import numpy as np

    from vadx.explain import explain
    from vadx.video import write_mp4

    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "trust.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    frames = np.random.default_rng(0).integers(0, 255, (12, 48, 48, 3), dtype=np.uint8)
    write_mp4(tmp_path / "cam3.mp4", frames, fps=10)
    namespace = {
        "model": tiny_model,
        "explanation": explain(tiny_model, tiny_clip[:1], methods=["layercam", "gradcam"]),
    }
    exec(compile(block, "docs/trust.md", "exec"), namespace)
    assert namespace["verdicts"]["layercam"].verdict in ("trustworthy", "weak", "contradictory")
    assert "trust" in json.loads((tmp_path / "expl" / "manifest.json").read_text())
