from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.videos import bikes_mp4
from vadx.data import VideoDataset, folder_samples, read_masks
from vadx.data.synth import SynthConfig, clip_seed, generate, load_background, render_clip
from vadx.errors import InputError
from vadx.video import VideoReader

SIZE, FRAMES = (64, 64), 24


@pytest.mark.parametrize("kind", ["fight", "shooting", "fire"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masks_cover_exactly_what_the_anomaly_changes(kind, seed):
    with_anomaly = render_clip(kind, (seed, 7), SIZE, FRAMES)
    without = render_clip(kind, (seed, 7), SIZE, FRAMES, include_anomaly=False)
    start = with_anomaly.start
    assert 0 < start < FRAMES
    assert not with_anomaly.masks[:start].any()
    assert with_anomaly.frame_labels.tolist() == [0] * start + [1] * (FRAMES - start)
    changed = (with_anomaly.frames != without.frames).any(-1)
    for t in range(start, FRAMES):
        mask = with_anomaly.masks[t]
        assert not (changed[t] & ~mask).any(), f"frame {t}: pixels changed outside the mask"
        if mask.sum() >= 4:
            assert changed[t][mask].mean() > 0.8, f"frame {t}: mask pixels left unchanged"
    visible = [with_anomaly.masks[t].sum() > 0 for t in range(start, FRAMES)]
    assert np.mean(visible) > 0.9  # the anomaly is on screen (rarely fully occluded)


def test_normal_clips_have_no_anomaly():
    clip = render_clip("normal", 3, SIZE, FRAMES)
    assert clip.start is None and not clip.masks.any() and not clip.frame_labels.any()


def test_fire_grows():
    clip = render_clip("fire", 4, SIZE, 40)
    area = clip.masks.reshape(40, -1).sum(1)
    assert area[-1] > 3 * max(area[clip.start], 1)


def test_same_seed_same_clip_different_seed_different_clip():
    a, b = render_clip("fight", 5, SIZE, FRAMES), render_clip("fight", 5, SIZE, FRAMES)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    c = render_clip("fight", 6, SIZE, FRAMES)
    assert not np.array_equal(a.frames, c.frames)


def test_clip_seeds_do_not_depend_on_the_dataset_size():
    assert clip_seed(0, "fire", "val", 3) == (0, 2, 1, 3)


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generated_dataset_is_deterministic_and_loads(tmp_path):
    config = SynthConfig(clips=(2, 1, 1), num_frames=FRAMES, size=SIZE, seed=11)
    manifest_path = generate(tmp_path / "a", config)
    generate(tmp_path / "b", config)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    manifest = json.loads(manifest_path.read_text())
    assert len(manifest["clips"]) == 16 and manifest["config"]["seed"] == 11
    samples, classes = folder_samples(tmp_path / "a", split="train")
    assert classes == ("fight", "fire", "normal", "shooting") and len(samples) == 8
    assert all(s.masks is not None for s in samples)
    entry = next(c for c in manifest["clips"] if c["class"] == "fight" and c["split"] == "val")
    masks, labels = read_masks(tmp_path / "a" / entry["masks"])
    rendered = render_clip("fight", tuple(entry["seed"]), SIZE, FRAMES)
    assert (
        np.array_equal(masks, rendered.masks) and labels.tolist() == rendered.frame_labels.tolist()
    )
    assert masks.reshape(FRAMES, -1).sum(1).tolist() == entry["mask_area"]
    with VideoReader(tmp_path / "a" / entry["video"]) as video:
        decoded = video.read_range().data
    error = np.abs(decoded.astype(int) - rendered.frames).mean()
    assert error < 6  # H.264 at crf 18 on noisy frames
    dataset = VideoDataset(samples, classes, num_frames=8, frame_size=SIZE)
    item = dataset[0]
    assert item["masks"].shape == (8, *SIZE) and item["frame_labels"].shape == (8,)


def test_other_seed_other_dataset(tmp_path):
    generate(tmp_path / "a", SynthConfig(clips=(1, 0, 0), num_frames=FRAMES, size=SIZE, seed=1))
    generate(tmp_path / "b", SynthConfig(clips=(1, 0, 0), num_frames=FRAMES, size=SIZE, seed=2))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "b")


def test_real_background(tmp_path):
    background = load_background(bikes_mp4(), SIZE, limit=30)
    assert background.shape == (30, *SIZE, 3)
    clip = render_clip("fire", 1, SIZE, FRAMES, background=background)
    without = render_clip("fire", 1, SIZE, FRAMES, background=background, include_anomaly=False)
    changed = (clip.frames != without.frames).any(-1)
    assert not (changed & ~clip.masks).any()
    config = SynthConfig(clips=(1, 0, 0), num_frames=FRAMES, size=SIZE, background=str(bikes_mp4()))
    generate(tmp_path / "bg", config, progress=None)
    assert len(list((tmp_path / "bg" / "train").rglob("*.mp4"))) == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"clips": (0, 0, 0)}, "three counts"),
        ({"num_frames": 4}, "at least 8 frames"),
        ({"size": (32, 32)}, "at least 48×48"),
        ({"classes": ("fight", "robbery")}, "classes must be among"),
        ({"fps": 0}, "fps must be positive"),
    ],
)
def test_bad_configs(changes, message):
    with pytest.raises(InputError, match=message):
        SynthConfig(**changes)


def test_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="is not a vadx synth dataset"):
        generate(tmp_path, SynthConfig(clips=(1, 0, 0), num_frames=FRAMES, size=SIZE))


def test_cli(tmp_path, capsys):
    out = tmp_path / "synth"
    code, stdout, _ = run_cli(
        [
            "synth",
            str(out),
            "--clips",
            "1,1,0",
            "--frames",
            "16",
            "--size",
            "48",
            "--classes",
            "fire,normal",
        ],
        capsys,
    )
    assert code == 0 and "wrote 4 clips" in stdout
    assert sorted(p.name for p in (out / "val").iterdir()) == ["fire", "normal"]
    code, _, stderr = run_cli(["synth", str(tmp_path / "x"), "--clips", "1,1"], capsys)
    assert code == 2 and "three counts" in stderr


def test_probe_cli(capsys):
    code, stdout, _ = run_cli(["probe", str(bikes_mp4()), "--json"], capsys)
    assert code == 0
    assert json.loads(stdout)["num_frames"] == 250
