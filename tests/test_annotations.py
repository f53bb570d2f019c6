"""Annotated boxes (CVAT for video, a box CSV) imported as the masks beside a video."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_cli
from vadx.data import VideoDataset, read_masks
from vadx.data.annotations import AnnotationError, import_boxes, read_annotations
from vadx.data.layouts import VideoSample
from vadx.video import write_mp4

FRAMES, HEIGHT, WIDTH = 6, 48, 64

CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <size>6</size>
      <mode>interpolation</mode>
      <original_size><width>64</width><height>48</height></original_size>
    </task>
  </meta>
  <track id="0" label="fighter" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="10" ytl="4" xbr="20" ybr="14"/>
    <box frame="2" outside="0" occluded="0" keyframe="1" xtl="14" ytl="4" xbr="24" ybr="14"/>
    <box frame="3" outside="1" occluded="0" keyframe="1" xtl="14" ytl="4" xbr="24" ybr="14"/>
  </track>
  <track id="1" label="fire" source="manual">
    <polygon frame="4" outside="0" occluded="0" keyframe="1" points="40,30;60,30;60,40;40,40"/>
  </track>
</annotations>
"""


@pytest.fixture
def video(tmp_path):
    frames = np.zeros((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    return write_mp4(tmp_path / "clip.mp4", frames, fps=10)


def test_cvat_tracks_become_masks_with_interpolation_and_outside(tmp_path, video):
    (tmp_path / "a.xml").write_text(CVAT)
    path, labels = import_boxes(tmp_path / "a.xml", video)
    assert path == tmp_path / "clip.masks.npz"
    masks, frame_labels = read_masks(path)
    expected = np.zeros((FRAMES, HEIGHT, WIDTH), bool)
    expected[0, 4:14, 10:20] = True
    expected[1, 4:14, 12:22] = True  # halfway between frames 0 and 2
    expected[2, 4:14, 14:24] = True
    expected[4, 30:41, 40:61] = True  # the polygon, edges included (cv2.fillPoly)
    np.testing.assert_array_equal(masks, expected)
    assert frame_labels.tolist() == [1, 1, 1, 0, 1, 0] == labels.tolist()
    only_fire, _ = read_annotations(tmp_path / "a.xml").masks(FRAMES, HEIGHT, WIDTH, ["fire"])
    assert only_fire[:4].sum() == 0 and only_fire[4].sum() == expected[4].sum()


def test_a_box_csv_becomes_masks_and_a_dataset_reads_them(tmp_path, video):
    (tmp_path / "b.csv").write_text(
        "frame,x1,y1,x2,y2,label\n1,0,0,8,8,fight\n1,60.5,40,70,50,fight\n\n5,2,2,4,6,fight\n"
    )
    path, _ = import_boxes(tmp_path / "b.csv", video)
    masks, frame_labels = read_masks(path)
    assert frame_labels.tolist() == [0, 1, 0, 0, 0, 1]
    assert masks[1, :8, :8].all() and masks[1].sum() == 64 + 8 * 4  # the second box clipped
    assert masks[1, 40:48, 60:64].all() and masks[5].sum() == 2 * 4
    # the dataset finds the sidecar and carries the masks with the clip
    dataset = VideoDataset([VideoSample(video, 0, masks=path)], ("fight", "normal"),
                           num_frames=3, frame_size=(48, 64))  # fmt: skip
    item = dataset[0]
    assert item.masks.shape == (3, 48, 64)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.xml", "<annotations><track", "not well-formed XML"),
        ("a.xml", "<video/>", "its root is <video>"),
        ("a.xml", '<!DOCTYPE x [<!ENTITY a "b">]><annotations/>', "DTD or entities"),
        ("a.xml", '<annotations><image id="0"/></annotations>', "'CVAT for images' export"),
        ("a.xml", "<annotations><meta/></annotations>", "holds no box or polygon tracks"),
        (
            "a.xml",
            '<annotations><track id="3" label="x"><box frame="0" xtl="nan" ytl="0" xbr="1" '
            'ybr="1"/></track></annotations>',
            "track 3, <box>: xtl is nan",
        ),
        (
            "a.xml",
            '<annotations><track id="0" label="x"><polygon frame="0" points="1,2;3"/></track>'
            "</annotations>",
            "are not x,y",
        ),
        ("b.csv", "frame,x,y\n1,2,3\n", "lacks x1, y1, x2, y2"),
        ("b.csv", "frame,x1,y1,x2,y2\n1,5,5,2,8\n", "line 2: the box (5, 5) – (2, 8) is empty"),
        ("b.csv", "frame,x1,y1,x2,y2\n-1,0,0,2,2\n", "line 2: frame -1 is negative"),
        ("b.csv", "frame,x1,y1,x2,y2\nfirst,0,0,2,2\n", "'first' is not a frame number"),
        ("b.csv", "frame,x1,y1,x2,y2\n1,0,0,inf,2\n", "x2 is inf"),
        ("b.csv", "frame,x1,y1,x2,y2\n1,0,0\n", "3 values for 5 columns"),
        ("b.csv", "", "is empty"),
        ("b.csv", "frame,x1,y1,x2,y2\n", "no boxes"),
        ("b.txt", "frame,x1,y1,x2,y2\n", "unknown annotation format .txt"),
    ],
)
def test_bad_annotation_files_are_one_clear_error(tmp_path, video, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(AnnotationError) as caught:
        import_boxes(tmp_path / name, video)
    assert message in str(caught.value) and str(tmp_path / name) in str(caught.value)


def test_boxes_that_do_not_fit_the_video_are_refused(tmp_path, video):
    (tmp_path / "late.csv").write_text("frame,x1,y1,x2,y2\n6,0,0,2,2\n")
    with pytest.raises(AnnotationError, match="in frame 6, but the video has 6 frames"):
        import_boxes(tmp_path / "late.csv", video)
    (tmp_path / "big.xml").write_text(CVAT.replace("<width>64", "<width>1920"))
    with pytest.raises(AnnotationError, match="drawn on 1920×48 frames, the video's are 64×48"):
        import_boxes(tmp_path / "big.xml", video)
    (tmp_path / "a.xml").write_text(CVAT)
    with pytest.raises(AnnotationError, match="no shapes labelled car; its labels: fighter, fire"):
        import_boxes(tmp_path / "a.xml", video, labels=["car"])


def test_cli_import_boxes(tmp_path, video, capsys):
    (tmp_path / "a.xml").write_text(CVAT)
    argv = ["import-boxes", str(tmp_path / "a.xml"), str(video)]
    code, out, err = run_cli([*argv, "--labels", "fighter"], capsys)
    assert code == 0, err
    assert "masks of 6 frames (3 with a shape) written to" in out
    assert read_masks(tmp_path / "clip.masks.npz")[1].tolist() == [1, 1, 1, 0, 0, 0]
    code, _, err = run_cli(argv, capsys)  # the masks exist
    assert code == 2 and err.startswith("error: ") and "give --force" in err
    code, out, err = run_cli([*argv, "--force", "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 0 and (tmp_path / "m.npz").is_file()
    code, _, err = run_cli(["import-boxes", str(tmp_path / "missing.xml"), str(video)], capsys)
    assert code == 2 and "annotation file not found" in err
