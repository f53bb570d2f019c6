"""Batch runs (issue 19): many videos in one command, one folder per video and an index over
all of them; a bad video recorded, never fatal; re-runs skip what is complete and redo what
is not, even after kill -9. The torchrun launches are in test_batch_distributed.py."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import long_video, tiny_checkpoint
from vadx import distributed
from vadx.batch import MARKER, gather_videos, is_batch
from vadx.batch.index import INDEX_FILES, clock
from vadx.batch.records import VideoRecord
from vadx.errors import InputError
from vadx.files import remove_leftovers, staged_folder, write_json

HERE = Path(__file__).parent
#: a batch's options that keep it short
QUICK = ["--no-annotate", "--stride", "2"]


def make_archive(root: Path) -> Path:
    """Two cameras, four short videos of different lengths, one damaged file; besides them
    what a batch must not take for a video (a text file, a hidden video)."""
    specs = {
        "cam1/a.mp4": (1, 24),
        "cam1/b.mp4": (2, 36),
        "cam2/c.mp4": (3, 16),
        "cam2/d.mp4": (4, 30),
    }
    for key, (seed, frames) in specs.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        segments = [("normal", frames // 2), ("fight", frames - frames // 2)]
        long_video(root / key, seed, segments, (40, 56))
    (root / "cam2" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    (root / "cam1" / "notes.txt").write_text("not a video")
    shutil.copy(root / "cam1" / "a.mp4", root / "cam1" / ".hidden.mp4")
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file under ``folder``: unchanged when nothing rewrote it."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- inputs
def test_a_folder_gives_its_videos_keyed_by_path_with_their_camera(archive):
    videos = gather_videos([archive])
    assert [v.key for v in videos] == [
        "cam1/a.mp4",
        "cam1/b.mp4",
        "cam2/broken.mp4",
        "cam2/c.mp4",
        "cam2/d.mp4",
    ]
    assert [v.camera for v in videos] == ["cam1", "cam1", "cam2", "cam2", "cam2"]
    assert videos[0].size == (archive / "cam1" / "a.mp4").stat().st_size
    # the same videos named one by one (one twice) and through their folders: the same keys
    again = gather_videos([archive / "cam1", archive / "cam2", archive / "cam1" / "a.mp4"])
    assert [v.key for v in again] == [v.key for v in videos]


def test_videos_in_one_folder_take_its_name_as_camera(archive):
    (video,) = gather_videos([archive / "cam2" / "c.mp4"])
    assert (video.key, video.camera) == ("c.mp4", "cam2")


def test_a_list_file_names_videos_relative_to_itself(archive, tmp_path):
    listing = tmp_path / "list.txt"
    lines = [
        "# cameras of the night shift",
        "",
        f"{archive}/cam1/b.mp4",
        os.path.relpath(archive / "cam2" / "c.mp4", tmp_path),
        "  gone.mp4  ",
    ]
    listing.write_text("\n".join(lines))
    videos = gather_videos([], str(listing))
    assert [v.path for v in videos if v.size] == [
        archive / "cam1" / "b.mp4",
        archive / "cam2" / "c.mp4",
    ]
    (gone,) = [v for v in videos if v.size is None]  # kept: the batch records it as failed
    assert gone.path == tmp_path / "gone.mp4"


def test_a_frame_folder_is_one_video(archive, tmp_path):
    import cv2
    import numpy as np

    frames = tmp_path / "site" / "cam3"
    frames.mkdir(parents=True)
    for k in range(3):
        cv2.imwrite(str(frames / f"{k:03d}.png"), np.full((8, 8, 3), k, np.uint8))
    (video,) = gather_videos([tmp_path / "site"])
    assert (video.key, video.camera) == ("cam3", "site")
    assert video.size == sum(p.stat().st_size for p in frames.iterdir())


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["gone.mp4"], "video not found"),
        (["empty"], "holds no video file"),
        ([], "no video given"),
    ],
)
def test_inputs_that_are_refused_before_any_work(tmp_path, paths, message):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        gather_videos([tmp_path / p for p in paths])


def test_what_makes_a_batch(archive, tmp_path, monkeypatch):
    import cv2
    import numpy as np

    frames = tmp_path / "cam3"
    frames.mkdir()
    cv2.imwrite(str(frames / "000.png"), np.zeros((8, 8, 3), np.uint8))
    one = archive / "cam1" / "a.mp4"
    assert not is_batch([one]) and not is_batch([str(one)])  # a single video goes on alone
    assert not is_batch([frames])  # a frame folder is one video
    assert is_batch([archive / "cam1"])  # a folder of videos
    assert is_batch([one, archive / "cam1" / "b.mp4"])
    assert is_batch([], tmp_path / "list.txt") and is_batch([one], tmp_path / "list.txt")
    monkeypatch.setenv("WORLD_SIZE", "2")  # one process of several under torchrun
    assert is_batch([one])
    with pytest.raises(
        InputError, match="give a video: a file, several, a folder of videos, or list FILE"
    ):
        is_batch([])


def test_a_joined_block_gives_the_threads_back(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("VADX_THREADS", str(before + 1))
    with pytest.raises(RuntimeError, match="boom"), distributed.joined() as rank:
        assert rank == 0 and torch.get_num_threads() == before + 1  # one process joins nothing
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before and distributed.world_size() == 1


def test_a_frame_folder_and_a_video_inside_it_are_refused(archive, tmp_path):
    import cv2
    import numpy as np

    frames = tmp_path / "cam3"
    frames.mkdir()
    cv2.imwrite(str(frames / "000.png"), np.zeros((8, 8, 3), np.uint8))
    shutil.copy(archive / "cam1" / "a.mp4", frames / "clip.mp4")
    with pytest.raises(InputError, match="both a video and a folder"):
        gather_videos([frames, frames / "clip.mp4"])  # their outputs would share a folder


# ----------------------------------------------------------------------------- sharing
@given(st.lists(st.integers(1, 10_000), max_size=60), st.integers(1, 6))
@settings(max_examples=200, deadline=None)
def test_shares_split_every_item_once_and_balance_within_the_biggest(sizes, world):
    shares = [distributed.share(sizes, world, r) for r in range(world)]
    assert sorted(i for share in shares for i in share) == list(range(len(sizes)))
    assert all(share == sorted(share) for share in shares)
    loads = [sum(sizes[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= max(sizes, default=0)
    assert shares == [distributed.share(sizes, world, r) for r in range(world)]  # deterministic


def test_shares_of_one_process_are_everything():
    assert distributed.share([5, 1, 3]) == [0, 1, 2]
    assert distributed.in_order([0, 1, 2], ["a", "b", "c"]) == ["a", "b", "c"]


# ----------------------------------------------------------------------------- staging
def test_a_replaced_folder_keeps_nothing_of_the_old_one(tmp_path):
    target = tmp_path / "v"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_folder(target, last="done", replace=True) as staging:
        (staging / "new.txt").write_text("new")
        (staging / "done").write_text("")
    assert sorted(p.name for p in target.iterdir()) == ["done", "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no staging folder left


def test_leftovers_of_a_killed_writer_are_removed_for_its_target_only(tmp_path):
    for name in (".v.partial-abc", ".v.partial-def", ".w.partial-abc"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "half.csv").write_text("1,")
    removed = remove_leftovers(tmp_path / "v")
    assert [p.name for p in removed] == [".v.partial-abc", ".v.partial-def"]
    assert [p.name for p in tmp_path.iterdir()] == [".w.partial-abc"]


def test_clock_reads_as_players_show_times():
    assert [clock(s) for s in (0, 59.9, 61, 3600, 3725.5)] == [
        "0:00",
        "0:59",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]


# ----------------------------------------------------------------------------- the batch
@pytest.fixture(scope="module")
def batch(archive, model, tmp_path_factory):
    """One batch over the archive, run once for the tests that only read it."""
    out = tmp_path_factory.mktemp("batch") / "out"
    code, text, err = _cli(["detect", str(model), str(archive), "--out", str(out), *QUICK])
    return out, code, text, err


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in this process: (exit status, stdout, stderr). A batch started outside
    torchrun joins no group and gives its threads back (``distributed.joined``), so it runs
    here as in a process of its own, without starting Python and torch again."""
    from vadx.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code or 0
    return code, out.getvalue(), err.getvalue()


def _vadx(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in a process of its own, for runs that are killed or compared with one that
    was (a batch joins torchrun's group when launched so)."""
    done = subprocess.run(
        [sys.executable, "-m", "vadx", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        timeout=600,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_bad_video_is_recorded_and_the_others_are_done(batch):
    out, code, text, err = batch
    assert code == 2  # some video failed
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "1 of 5 videos failed (cam2/broken.mp4)" in lines[0]
    assert "warning: cam2/broken.mp4 failed:" in err
    assert "Traceback" not in err
    assert "5 video(s): 5 processed now, 0 already complete (skipped), 1 failed" in text
    videos = {row["video"]: row for row in read_csv(out / "videos.csv")}
    assert list(videos) == [
        "cam1/a.mp4",
        "cam1/b.mp4",
        "cam2/broken.mp4",
        "cam2/c.mp4",
        "cam2/d.mp4",
    ]
    assert videos["cam2/broken.mp4"]["status"] == "failed"
    assert "is not a video FFmpeg can read" in videos["cam2/broken.mp4"]["error"]
    assert [videos[k]["frames"] for k in ("cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4")] == [
        "24",
        "36",
        "16",
    ]
    broken = out / "videos" / "cam2" / "broken.mp4"
    assert sorted(p.name for p in broken.iterdir()) == [MARKER]  # nothing half-written


def test_each_video_has_what_vadx_detect_writes_for_it_alone(batch, archive, model, tmp_path):
    out = batch[0]
    alone = tmp_path / "alone"
    code, _, err = _cli(
        ["detect", str(model), str(archive / "cam1" / "b.mp4"), "--out", str(alone), *QUICK]
    )
    assert code == 0, err
    folder = out / "videos" / "cam1" / "b.mp4"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MARKER, "events.json", "scores.csv", "scores.png"]
    )
    assert tree(alone) == {k: v for k, v in tree(folder).items() if k != MARKER}


def test_the_index_lists_what_each_video_found(batch):
    out = batch[0]
    assert all((out / name).is_file() for name in INDEX_FILES)
    rows = read_csv(out / "events.csv")
    jsonl = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(rows) == len(jsonl) > 0
    for video in ("cam1/a.mp4", "cam1/b.mp4", "cam2/c.mp4", "cam2/d.mp4"):
        folder = out / "videos" / video
        document = json.loads((folder / "events.json").read_text())
        mine = [row for row in jsonl if row["video"] == video]
        assert [(r["start_frame"], r["end_frame"], r["class"]) for r in mine] == [
            (e["start_frame"], e["end_frame"], e["class_name"]) for e in document["events"]
        ]
        for row, event in zip(mine, document["events"], strict=True):
            assert row["peak"] == round(event["peak_probability"], 4)
            assert [row["window_start"], row["window_end"]] == event["window"]
            assert row["camera"] == video.split("/")[0]
            assert row["folder"] == f"videos/{video}" and row["report"] is None
    counts = json.loads((out / "batch.json").read_text())
    assert (counts["videos"], counts["failed"], counts["events"]) == (5, 1, len(rows))
    assert counts["failed_videos"] == ["cam2/broken.mp4"] and counts["command"] == "detect"
    events_per_video = {r["video"]: r["events"] for r in read_csv(out / "videos.csv")}
    assert sum(int(n) for n in events_per_video.values()) == len(rows)


def test_a_marker_read_back_is_the_same_record_and_writes_the_same_bytes(batch, tmp_path):
    out = batch[0]
    markers = sorted((out / "videos").rglob(MARKER))
    assert len(markers) == 5
    for marker in markers:
        record = VideoRecord.from_json(json.loads(marker.read_text()))
        write_json(tmp_path / MARKER, record.to_json())
        assert (tmp_path / MARKER).read_bytes() == marker.read_bytes()
    document = json.loads(markers[0].read_text())
    with pytest.raises(KeyError):  # a renamed field is no record
        VideoRecord.from_json({("state" if k == "status" else k): v for k, v in document.items()})
    crashed = VideoRecord(record.identity, "failed", "boom", traceback="Traceback (…)")
    assert list(crashed.to_json())[-3:] == ["curve", "traceback", "files"]
    assert VideoRecord.from_json(crashed.to_json()) == crashed


def test_a_marker_of_the_last_release_reads_as_it_was_made(batch):
    """Markers written before a batch took a normal beside its model (no ``normal``, events
    without their ``signal``) read as the same record: a re-run does not redo their videos."""
    out = batch[0]
    marker = next(
        m for m in sorted((out / "videos").rglob(MARKER)) if json.loads(m.read_text())["events"]
    )
    document = json.loads(marker.read_text())
    assert document["normal"] is None and "normal_curve" not in document
    old = {k: v for k, v in document.items() if k != "normal"}
    old["events"] = [{k: v for k, v in e.items() if k != "signal"} for e in document["events"]]
    assert VideoRecord.from_json(old) == VideoRecord.from_json(document)
    old["settings"] = {**old["settings"], "runtime": "normality"}  # a normality model's batch
    assert {e.signal for e in VideoRecord.from_json(old).events} == {"normality"}


def test_a_rerun_skips_complete_videos_and_redoes_only_what_changed(archive, model, tmp_path):
    source = make_archive(tmp_path / "archive")
    out = tmp_path / "out"
    command = ["detect", str(model), str(source), "--out", str(out), *QUICK]
    assert _cli(command)[0] == 2
    before = stamps(out / "videos")
    index = tree(out)

    code, text, _ = _cli(command)  # nothing changed: only the failed video is tried again
    assert code == 2 and "1 processed now, 4 already complete (skipped), 1 failed" in text
    after = stamps(out / "videos")
    assert {k: v for k, v in after.items() if "broken" not in k} == {
        k: v for k, v in before.items() if "broken" not in k
    }  # untouched
    assert tree(out) == index

    shutil.copy(source / "cam1" / "a.mp4", source / "cam2" / "broken.mp4")  # repaired
    os.utime(source / "cam1" / "b.mp4")  # touched: a new modification time
    code, text, err = _cli(command)
    assert code == 0, err
    assert "2 processed now, 3 already complete (skipped), 0 failed" in text
    redone = stamps(out / "videos")
    assert redone["cam1/a.mp4/events.json"] == before["cam1/a.mp4/events.json"]
    assert redone["cam1/b.mp4/events.json"] != before["cam1/b.mp4/events.json"]
    assert read_csv(out / "videos.csv")[2]["status"] == "ok"

    code, text, _ = _cli([*command, "--on", "0.9", "--off", "0.8"])  # other settings: all
    assert code == 0 and "5 processed now, 0 already complete" in text
    code, text, _ = _cli([*command, "--on", "0.9", "--off", "0.8", "--force"])
    assert code == 0 and "5 processed now, 0 already complete" in text
    (out / "videos" / "cam2" / "c.mp4" / "scores.csv").unlink()  # a file gone: redone
    code, text, _ = _cli([*command, "--on", "0.9", "--off", "0.8"])
    assert code == 0 and "1 processed now, 4 already complete" in text
    assert (out / "videos" / "cam2" / "c.mp4" / "scores.csv").is_file()


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> Path:
    """Six videos long enough that a batch over them is caught between two of them: the
    batch is stopped within milliseconds of its first video's marker, the others take a
    fraction of a second each. Only read."""
    folder = tmp_path_factory.mktemp("slow")
    for k in range(6):
        long_video(folder / f"v{k}.mp4", k, [("normal", 30), ("fire", 30)], (72, 96))
    return folder


def batch_after_its_first_video(model: Path, source: Path, out: Path) -> subprocess.Popen:
    """A batch started in a process of its own, returned once its first video is finished."""
    command = [sys.executable, "-m", "vadx", "detect", str(model), str(source), "--out", str(out)]
    process = subprocess.Popen(
        [*command, *QUICK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob(f"videos/*/{MARKER}")):
        time.sleep(0.01)
    return process


def test_kill_9_mid_batch_loses_only_the_video_in_progress(model, slow, tmp_path):
    source = slow
    straight = tmp_path / "straight"
    assert _vadx(["detect", str(model), str(source), "--out", str(straight), *QUICK])[0] == 0
    out = tmp_path / "out"
    process = batch_after_its_first_video(model, source, out)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished = sorted(p.parent.name for p in out.glob(f"videos/*/{MARKER}"))
    assert 1 <= len(finished) < 6, "the batch was not caught mid-way"
    assert not (out / "index.html").exists()
    kept = {k: v for k, v in stamps(out / "videos").items() if k.split("/")[0] in finished}

    code, text, err = _vadx(["detect", str(model), str(source), "--out", str(out), *QUICK])
    assert code == 0, err
    assert f"{6 - len(finished)} processed now, {len(finished)} already complete" in text
    assert {k: v for k, v in stamps(out / "videos").items() if k.split("/")[0] in finished} == kept
    assert not [p for p in (out / "videos").iterdir() if p.name.startswith(".")]  # leftovers
    assert tree(out) == tree(straight)  # as if it had never been stopped


def test_a_batch_explanation_links_every_event_to_its_report(archive, model, tmp_path):
    out = tmp_path / "out"
    code, _text, err = _cli(
        [
            "explain",
            str(model),
            str(archive / "cam1"),
            "--out",
            str(out),
            "--windows",
            "flagged",
            "--methods",
            "gradcam",
            "--temporal",
            "",
            "--stride",
            "2",
        ]
    )
    assert code == 0, err
    rows = read_csv(out / "events.csv")
    assert rows and all(row["report"] for row in rows)
    for row in rows:
        report = out / row["report"]
        assert report.is_file() and report.parent.name.startswith("window-")
        assert report.parent.name.endswith(
            f"f{int(row['window_start']):06d}-f{int(row['window_end']):06d}"
        )
    summary = json.loads((out / "videos" / "a.mp4" / "summary.json").read_text())
    assert len(summary["clips"]) == sum(1 for r in rows if r["video"] == "a.mp4")
    assert not (out / "videos" / "a.mp4" / "annotated.mp4").exists()
    assert all(row["trust"] == "" for row in rows)  # not asked for: not computed


def test_a_batch_explanation_with_trust_gives_each_event_its_verdict(archive, model, tmp_path):
    out = tmp_path / "out"
    argv = ["explain", str(model), str(archive / "cam1"), "--out", str(out), "--windows"]
    argv += ["flagged", "--methods", "gradcam", "--temporal", "", "--stride", "2", "--trust"]
    code, _text, err = _cli(argv)
    assert code == 0, err
    rows = read_csv(out / "events.csv")
    verdicts = ("trustworthy", "weak", "contradictory")
    assert rows and all(row["trust"] in verdicts for row in rows)
    for row in rows:  # the worst of the clip's maps, as its manifest records them
        manifest = json.loads((out / Path(row["report"]).parent / "manifest.json").read_text())
        worst = min((r["verdict"] for r in manifest["trust"].values()), key=verdicts[::-1].index)
        assert row["trust"] == worst
    assert f"explanation {rows[0]['trust']}" in (out / "index.html").read_text()
    assert json.loads((out / "batch.json").read_text())["command"] == "explain"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_index_page_filters_and_every_link_resolves(batch):
    playwright = pytest.importorskip("playwright.sync_api")
    out = batch[0]
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").as_uri())
        assert page.locator("section.video").count() == 5
        assert page.locator("#shown").inner_text() == "5 of 5 shown"
        hrefs = page.eval_on_selector_all(  # SVG links too: their href is not a string
            "a[href]", "els => els.map(e => new URL(e.getAttribute('href'), document.baseURI).href)"
        )
        page.fill("#filter", "cam2")
        assert page.locator("#shown").inner_text() == "3 of 5 shown"
        page.fill("#filter", "")
        page.check("#only-failed")
        assert page.locator("section.video:not(.hidden)").count() == 1
        assert "FFmpeg" in page.locator("section.video:not(.hidden) .error").inner_text()
        page.uncheck("#only-failed")
        page.check("#with-events")
        shown = page.locator("section.video:not(.hidden)").count()
        with_events = sum(1 for r in read_csv(out / "videos.csv") if int(r["events"]))
        assert shown == with_events
        assert page.locator("svg.timeline polyline").count() == 4
        page.uncheck("#with-events")
        page.select_option("#order", "peak")
        names = page.eval_on_selector_all("section.video", "els => els.map(e => e.dataset.name)")
        peaks = {r["video"]: float(r["peak"] or -1) for r in read_csv(out / "videos.csv")}
        assert [peaks[n] for n in names] == sorted(peaks.values(), reverse=True)
        assert names[-1] == "cam2/broken.mp4"
        browser.close()
    assert not errors
    from urllib.parse import unquote, urlparse

    targets = {Path(unquote(urlparse(h).path)) for h in hrefs if h.startswith("file:")}
    assert targets and all(t.exists() for t in targets)
    assert any(t.name == "scores.png" for t in targets)
    assert any(t.name == "videos.csv" for t in targets)


def test_the_timeline_shades_runs_of_unfamiliar_bins_as_one_rectangle():
    from vadx.batch.index import _runs

    edges = [0.0, 10.0, 20.0, 30.0, 40.0, 1000.0]
    assert _runs([True, True, False, True, True], edges) == [(0.0, 20.0), (30.0, 970.0)]
    assert _runs([False] * 5, edges) == []


def test_the_docs_python_example_runs(archive, model, tmp_path, monkeypatch):
    import re

    text = (HERE.parent / "docs" / "batch.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    for old, new in (
        ('"runs/first/best"', repr(str(model))),
        ('"/archive/2026-11"', repr(str(archive / "cam1"))),
    ):
        assert old in block
        block = block.replace(old, new)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/batch.md", "exec"), {})
    assert (tmp_path / "screening" / "index.html").is_file()
    assert len(read_csv(tmp_path / "screening" / "videos.csv")) == 2


def test_outputs_inside_the_archive_and_link_loops_are_not_taken_for_footage(archive, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(archive / "cam1", site / "cam1")
    (site / "results" / "videos" / "cam1" / "a.mp4").mkdir(parents=True)
    shutil.copy(
        archive / "cam1" / "a.mp4", site / "results" / "videos" / "cam1" / "a.mp4" / "annotated.mp4"
    )
    (site / "cam1" / "loop").symlink_to(site, target_is_directory=True)
    videos = gather_videos([site], exclude=site / "results")
    assert [v.key for v in videos] == ["cam1/a.mp4", "cam1/b.mp4"]


def test_sigterm_mid_batch_keeps_the_finished_videos_and_says_so(model, slow, tmp_path):
    source = slow
    out = tmp_path / "out"
    process = batch_after_its_first_video(model, source, out)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    finished = len(list(out.glob(f"videos/*/{MARKER}")))
    assert process.returncode == 143 and 1 <= finished < 6, err
    assert f"note: the {finished} video(s) finished before the stop are kept" in err
    assert "run the same command again" in err and "Traceback" not in err
    assert not [p for p in (out / "videos").iterdir() if p.name.startswith(".")]
