from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from tests.videos import frame_numbers, make_video, numbered_frames
from vadx.data import (
    MaskError,
    VideoDataset,
    VideoSample,
    available_splits,
    collate_clips,
    folder_samples,
    frame_mask_samples,
    list_file_samples,
    make_loader,
    read_masks,
    temporal_samples,
    write_masks,
)
from vadx.errors import InputError
from vadx.video import Augment, VideoError, clip_to_frames

CLASSES = ("fight", "shooting", "fire", "normal")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def video(path, count=20, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_video(path, numbered_frames(count, 32, 32), codec="ffv1", pix_fmt="bgr0", **kwargs)


@pytest.fixture
def tree(tmp_path):
    """root/{train,test}/<class>/<video>.mkv; one video has a mask sidecar."""
    root = tmp_path / "data"
    for split in ("train", "test"):
        video(root / split / "fight" / "f1.mkv")
        video(root / split / "normal" / "n1.mkv", count=25)
    video(root / "train" / "fire" / "x1.mkv", count=30)
    masks = np.zeros((20, 32, 32), bool)
    masks[10:, 8:16, 8:16] = True
    write_masks(root / "train" / "fight" / "f1.masks.npz", masks, masks.any((1, 2)).astype(int))
    (root / "train" / "fight" / "notes.txt").write_text("ignored: not a video")
    return root


def test_folder_layout_with_splits(tree):
    assert available_splits(tree) == ["test", "train"]
    samples, classes = folder_samples(tree, split="train")
    assert classes == ("fight", "fire", "normal")
    assert [(s.source.name, classes[s.label]) for s in samples] == [
        ("f1.mkv", "fight"),
        ("x1.mkv", "fire"),
        ("n1.mkv", "normal"),
    ]
    assert samples[0].masks.name == "f1.masks.npz" and samples[1].masks is None
    samples, classes = folder_samples(tree, class_names=CLASSES, split="test")
    assert classes == CLASSES and [s.label for s in samples] == [0, 3]


def test_folder_layout_errors(tree, tmp_path):
    with pytest.raises(InputError, match="choose one with split="):
        folder_samples(tree)
    with pytest.raises(InputError, match="has no split 'val'; it has test, train"):
        folder_samples(tree, split="val")
    with pytest.raises(InputError, match="folder 'fire' is not a class of the model"):
        folder_samples(tree, class_names=("fight", "normal"), split="train")
    with pytest.raises(InputError, match="dataset folder not found"):
        folder_samples(tmp_path / "nothing")
    (tmp_path / "empty" / "fight").mkdir(parents=True)
    with pytest.raises(InputError, match="no videos found"):
        folder_samples(tmp_path / "empty")


def test_list_file_layout(tree):
    listing = tree / "list.txt"
    listing.write_text(
        "# path label\n\ntrain/fight/f1.mkv fight\ntrain/normal/n1.mkv 3\ntrain/fire/x1.mkv fire\n"
    )
    samples, _ = list_file_samples(listing, class_names=CLASSES)
    assert [s.label for s in samples] == [0, 3, 2]
    assert samples[0].source == tree / "train" / "fight" / "f1.mkv"
    assert samples[0].masks is not None
    listing.write_text("train/fight/f1.mkv robbery\n")
    with pytest.raises(InputError, match=r"list.txt:1: unknown label 'robbery'"):
        list_file_samples(listing, class_names=CLASSES)
    listing.write_text("just-a-path\n")
    with pytest.raises(InputError, match=r"list.txt:1: expected 'relative/path label'"):
        list_file_samples(listing)


def test_temporal_annotations_become_labelled_windows(tmp_path):
    video(tmp_path / "videos" / "Fighting" / "Fighting003_x264.mkv", count=60)
    notes = tmp_path / "annotations.txt"
    notes.write_text("Fighting003_x264.mkv  Fighting  27  44  -1  -1\n")
    samples = temporal_samples(
        notes,
        tmp_path / "videos",
        CLASSES,
        window=10,
        stride=10,
        class_map={"Fighting": "fight"},
    )
    # windows 0-9, 10-19 normal; 20-29 has 3/10 inside (ambiguous, dropped); 30-39 fight;
    # 40-49 has 5/10 (fight at overlap 0.5); 50-59 normal
    assert [(s.indices[0], CLASSES[s.label]) for s in samples] == [
        (0, "normal"),
        (10, "normal"),
        (30, "fight"),
        (40, "fight"),
        (50, "normal"),
    ]
    assert samples[3].frame_labels == (1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
    kept = temporal_samples(
        notes,
        tmp_path / "videos",
        CLASSES,
        window=10,
        stride=10,
        ambiguous="normal",
        class_map={"Fighting": "fight"},
    )
    assert len(kept) == 6 and CLASSES[kept[2].label] == "normal"


def test_temporal_annotation_errors(tmp_path):
    video(tmp_path / "v.mkv", count=30)
    notes = tmp_path / "a.txt"
    notes.write_text("v.mkv Arson 3 9 -1 -1\n")
    with pytest.raises(InputError, match=r"a.txt:1: class 'Arson' is not one of .*class_map"):
        temporal_samples(notes, tmp_path, CLASSES, window=10, stride=10)
    notes.write_text("missing.mkv Fire 3 9\n")
    with pytest.raises(InputError, match="video missing.mkv not found"):
        temporal_samples(notes, tmp_path, CLASSES, window=10, stride=10)
    notes.write_text("v.mkv Fire 3\n")
    with pytest.raises(InputError, match="expected 'video class start end"):
        temporal_samples(notes, tmp_path, CLASSES, window=10, stride=10)


@pytest.fixture
def ucsd(tmp_path):
    """UCSD Ped2 style: Test/Test001 frames (.tif), Test/Test001_gt masks (.bmp)."""
    clip, gt = tmp_path / "ped2" / "Test" / "Test001", tmp_path / "ped2" / "Test" / "Test001_gt"
    clip.mkdir(parents=True)
    gt.mkdir()
    frames = numbered_frames(8, 24, 36)
    for t in range(8):
        cv2.imwrite(str(clip / f"{t + 1:03d}.tif"), cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY))
        mask = np.zeros((24, 36), np.uint8)
        if t >= 4:
            mask[5:15, 20:30] = 255
        cv2.imwrite(str(gt / f"{t + 1:03d}.bmp"), mask)
    return tmp_path / "ped2"


def test_frame_mask_layout(ucsd):
    samples = frame_mask_samples(ucsd, CLASSES, window=4, stride=2)
    assert [(s.indices[0], CLASSES[s.label]) for s in samples] == [
        (0, "normal"),
        (2, "fight"),
        (4, "fight"),
    ]
    assert samples[1].frame_labels == (0, 0, 1, 1)
    dataset = VideoDataset(samples, CLASSES, num_frames=4, frame_size=(24, 36))
    item = dataset[1]
    assert item.masks.shape == (4, 24, 36)
    assert item.masks[2:, 5:15, 20:30].all() and not item.masks[:2].any()
    assert item.frame_labels.tolist() == [0, 0, 1, 1]


def test_items_are_the_evenly_sampled_frames(tree):
    samples, classes = folder_samples(tree, split="train")
    dataset = VideoDataset(samples, classes, num_frames=5, frame_size=(32, 32), mean=MEAN, std=STD)
    item = dataset[1]  # x1.mkv, 30 frames
    assert item.frame_indices.tolist() == [0, 7, 14, 22, 29]
    assert item.clip.shape == (5, 3, 32, 32) and item.label == 1
    frames = clip_to_frames(item.clip, MEAN, STD)
    assert frame_numbers(frames) == [0, 7, 14, 22, 29]
    fight = dataset[0]
    assert fight.masks.shape == (5, 32, 32)
    assert fight.frame_labels.tolist() == [0, 0, 1, 1, 1]  # frames 0, 5, 10, 14, 19


def test_explicit_range_and_letterbox(tmp_path):
    path = video(tmp_path / "wide.mkv", count=40)
    sample = VideoSample(source=path, label=3, start=10, stop=30)
    dataset = VideoDataset([sample], CLASSES, num_frames=3, frame_size=(16, 32))
    assert dataset.frame_indices(0).tolist() == [10, 20, 29]
    assert dataset[0].clip.shape == (3, 3, 16, 32)


def test_collate_keeps_masks_only_when_all_items_have_them(tree):
    samples, classes = folder_samples(tree, split="train")
    dataset = VideoDataset(samples, classes, num_frames=4, frame_size=(32, 32))
    batch = collate_clips([dataset[0], dataset[1]])
    assert batch.clip.shape == (2, 4, 3, 32, 32)
    assert batch.label.tolist() == [0, 1] and batch.masks is None
    assert collate_clips([dataset[0], dataset[0]]).masks.shape == (2, 4, 32, 32)


def test_loader_workers_give_the_same_batches_as_the_main_process(tree):
    import cv2

    cv2.resize(np.zeros((64, 64, 3), np.uint8), (32, 32))  # OpenCV's pool exists before fork
    samples, classes = folder_samples(tree, split="train")
    dataset = VideoDataset(
        samples, classes, num_frames=4, frame_size=(32, 32), augment=Augment(), seed=3
    )
    single = list(make_loader(dataset, batch_size=2, workers=0))
    parallel = list(make_loader(dataset, batch_size=2, workers=2))
    for a, b in zip(single, parallel, strict=True):
        assert torch.equal(a.clip, b.clip) and torch.equal(a.label, b.label)
    dataset.set_epoch(1)  # a new epoch draws new augmentations
    assert not torch.equal(
        next(iter(make_loader(dataset, batch_size=2, workers=0))).clip, single[0].clip
    )


SHARED_LOCK = threading.Lock()  # stands for a lock some thread of the caller holds


class _NeedsTheLock(VideoDataset):
    def __getitem__(self, index):
        with SHARED_LOCK:
            return super().__getitem__(index)


def test_loader_workers_do_not_inherit_locks_held_by_the_callers_threads(tree):
    # A worker forked while another thread holds a lock gets a copy that no one will ever
    # release: the hang a CI run of the suite met (OpenCV's pool). Workers start from a clean
    # fork server instead, so they finish even while the caller's thread holds the lock.
    samples, classes = folder_samples(tree, split="train")
    dataset = _NeedsTheLock(samples, classes, num_frames=4, frame_size=(32, 32))
    loader = make_loader(dataset, batch_size=2, workers=2)
    loader.timeout = 60  # a hang is a failure, not a stuck suite
    with SHARED_LOCK:
        batches = list(loader)
    assert sum(len(batch.label) for batch in batches) == len(dataset)


def test_bad_videos_raise_or_are_skipped_with_a_warning(tree):
    bad = tree / "train" / "fire" / "broken.mp4"
    bad.write_bytes(b"\x00" * 300)
    short = video(tree / "train" / "fire" / "short.mkv", count=3)
    samples, classes = folder_samples(tree, split="train")
    with pytest.raises(VideoError, match="broken.mp4"):
        VideoDataset(samples, classes, num_frames=4)
    with pytest.warns(UserWarning, match="skipped 2 of 5 videos"):
        dataset = VideoDataset(samples, classes, num_frames=4, skip_bad=True)
    assert len(dataset) == 3
    assert {path.rsplit("/", 1)[-1] for path, _ in dataset.skipped} == {"broken.mp4", short.name}
    assert "fewer than the 4 a clip needs" in dict(dataset.skipped)[str(short)]


def test_bad_labels_and_empty_datasets(tmp_path):
    path = video(tmp_path / "v.mkv")
    with pytest.raises(InputError, match="mean must be three numbers .* model.config.mean"):
        VideoDataset([VideoSample(path, 0)], CLASSES, mean=None)
    with pytest.raises(InputError, match="label 7 is not a class index of 4"):
        VideoDataset([VideoSample(path, 7)], CLASSES)
    with pytest.raises(InputError, match="no usable video"):
        VideoDataset([], CLASSES)


def test_masks_round_trip_and_errors(tmp_path):
    masks = np.random.default_rng(0).random((5, 7, 13)) > 0.5
    path = write_masks(tmp_path / "m.masks.npz", masks, np.arange(5))
    read, labels = read_masks(path, np.array([4, 1]))
    assert np.array_equal(read, masks[[4, 1]]) and labels.tolist() == [4, 1]
    with pytest.raises(MaskError, match="has masks for 5 frames; frame 9"):
        read_masks(path, np.array([9]))
    with pytest.raises(MaskError, match="not found"):
        read_masks(tmp_path / "none.npz")


def test_a_video_or_a_binary_file_is_not_a_list_file(tmp_path):
    """These were read as text (a UnicodeDecodeError from deep inside) by train, evaluate and
    calibrate; now they are named for what they are."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42\xb8\xff" * 8)
    with pytest.raises(InputError, match="is a video, not a dataset"):
        list_file_samples(video)
    binary = tmp_path / "list.txt"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="not a list file"):
        list_file_samples(binary)
