from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.videos import bikes_mp4
from vadx.data import VideoDataset, folder_samples, read_masks
from vadx.data.synth import (
    SYNTH_CLASSES,
    Intervention,
    SceneSpec,
    SynthConfig,
    clip_seed,
    generate,
    load_background,
    render_clip,
    scene_specs,
)
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
    assert item.masks.shape == (8, *SIZE) and item.frame_labels.shape == (8,)


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
        ({"num_frames": 4}, "num_frames must be an integer from 8 to 100,000"),
        ({"size": (32, 32)}, "size must be an integer from 48 to 4,096"),
        ({"classes": ("fight", "robbery")}, "classes must be among"),
        ({"fps": 0}, "fps must be a finite number from 0.1 to 1,000"),
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


# --------------------------------------------------------------------------- counterfactuals
def _spec(kind, seed=(3, 1), scene_seed=None):
    return SceneSpec(kind, seed, SIZE, FRAMES, scene_seed)


@pytest.mark.parametrize("kind", SYNTH_CLASSES)
def test_a_clip_drawn_again_without_change_equals_the_original(kind):
    original = render_clip(kind, (3, 1), SIZE, FRAMES)
    again = _spec(kind).render(Intervention())
    for name in ("frames", "masks", "frame_labels", "ids"):
        assert np.array_equal(getattr(original, name), getattr(again, name)), name
    assert again.actors == original.actors and again.start == original.start


def test_the_actors_are_named_and_own_their_pixels():
    clip = render_clip("fight", (3, 1), SIZE, FRAMES)
    assert clip.anomaly_actors == ("fighter-1", "fighter-2")
    assert {"walker-1", "fighter-1", "fighter-2"} <= set(clip.actors)
    owners = {o for owners in clip.actors.values() for o in owners}
    assert set(np.unique(clip.ids)) <= owners | {0}
    # the mask is the anomaly's actors' pixels from the anomaly's start on
    anomaly = clip.actor_masks("fighter-1") | clip.actor_masks("fighter-2")
    assert np.array_equal(clip.masks[clip.start :], anomaly[clip.start :])
    with pytest.raises(InputError, match="no actor 'nobody'"):
        clip.actor_masks("nobody")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_removing_an_actor_changes_its_pixels_only(seed):
    spec = _spec("shooting", (seed, 5))
    original = spec.render()
    for name in original.actors:
        without = spec.render(Intervention({name}))
        changed = (original.frames != without.frames).any(-1)
        own = original.actor_masks(name)
        if name == "shadow":  # it darkens whatever it falls on, not only bare ground
            assert changed.any()
            continue
        assert not (changed & ~own).any(), f"{name}: pixels changed outside the actor"
        if own.sum() >= 20:
            assert changed[own].mean() > 0.8, f"{name}: its pixels left unchanged"
        assert not without.actor_masks(name).any(), name


def test_removal_in_some_frames_leaves_the_others_as_they_were():
    spec = _spec("shooting", (4, 4))
    original, removed = spec.render(), spec.render(Intervention({"anomaly"}))
    part = spec.render(Intervention({"anomaly"}, frames=(10, 15)))
    assert np.array_equal(part.frames[:10], original.frames[:10])
    assert np.array_equal(part.frames[15:], original.frames[15:])  # smoke and bullets go on
    assert np.array_equal(part.frames[10:15], removed.frames[10:15])
    assert not np.array_equal(original.frames[10:15], removed.frames[10:15])


def test_the_context_redrawn_keeps_the_anomaly():
    spec = _spec("fire", (2, 2))
    original = spec.render()
    redrawn = spec.render(Intervention(context_seed=(9, 9)))
    assert redrawn.start == original.start
    assert not np.array_equal(redrawn.frames, original.frames)
    assert np.array_equal(
        redrawn.frames, render_clip("fire", (2, 2), SIZE, FRAMES, scene_seed=(9, 9)).frames
    )
    # the fire is drawn identically; only what stands in front of it may hide parts of it
    both = original.masks & redrawn.masks
    assert both.sum() > 0.8 * min(original.masks.sum(), redrawn.masks.sum())
    assert np.array_equal(original.ids[both], redrawn.ids[both])


@pytest.mark.parametrize("shift", [-3, 4])
def test_the_anomaly_shifted_in_time(shift):
    spec = _spec("fight", (1, 1))
    original, shifted = spec.render(), spec.render(Intervention(shift=shift))
    assert shifted.start == original.start + shift
    assert shifted.frame_labels.tolist() == [0] * shifted.start + [1] * (FRAMES - shifted.start)
    huge = spec.render(Intervention(shift=10_000))
    assert huge.start == FRAMES - 1


def test_an_unknown_actor_is_refused():
    with pytest.raises(InputError, match="no actor lamp-post in this clip; it has walker-1"):
        _spec("fire").render(Intervention({"lamp-post"}))
    with pytest.raises(InputError, match="first, stop"):
        Intervention({"anomaly"}, frames=(5, 2))


def test_in_the_controlled_family_only_the_anomaly_differs_between_classes(tmp_path):
    config = SynthConfig(clips=(2, 0, 1), num_frames=FRAMES, size=SIZE, seed=5, family="controlled")
    specs = scene_specs(generate(tmp_path / "data", config))
    assert len(specs) == 12
    by_clip = {}
    for spec in specs.values():
        by_clip.setdefault(spec.scene_seed, {})[spec.kind] = spec
    assert len(by_clip) == 3
    for group in by_clip.values():
        normal = group["normal"].render().frames
        for kind in ("fight", "shooting", "fire"):
            clip = group[kind].render()
            assert not np.array_equal(clip.frames, normal)
            assert np.array_equal(group[kind].render(Intervention({"anomaly"})).frames, normal)
    default = scene_specs(generate(tmp_path / "default", replace(config, family="default")))
    assert all(spec.scene_seed is None for spec in default.values())
    with pytest.raises(InputError, match="family must be one of default, controlled"):
        SynthConfig(family="paired")


def test_scene_specs_draw_the_written_clips_again(tmp_path):
    config = SynthConfig(clips=(1, 0, 0), num_frames=FRAMES, size=SIZE, seed=2, classes=("fire",))
    manifest = generate(tmp_path / "data", config)
    ((video, spec),) = scene_specs(tmp_path / "data").items()
    masks, _ = read_masks(video.with_name(video.stem + ".masks.npz"))
    assert np.array_equal(spec.render().masks, masks)
    (tmp_path / "other.json").write_text('{"generator": "something"}')
    with pytest.raises(InputError, match="was not written by vadx synth"):
        scene_specs(tmp_path / "other.json")
    with pytest.raises(InputError, match="not a readable vadx synth manifest"):
        scene_specs(tmp_path / "missing")
    assert manifest.is_file()
