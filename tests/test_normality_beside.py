"""A camera's normal beside a classifier, and live events that keep their maps (issue 31,
item 2): one decoded source, two signals, each with its own events, equal to running each
model alone on the same frames; a normality event's footage with its maps over it, its
thumbnail the most unusual frame, the red where the fight is."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import TINY, run_cli
from tests.test_batch import CHROMIUM, _cli, read_csv, stamps, tree
from tests.test_console import wait_for
from tests.test_console_store import HEAD
from tests.test_reliability import assert_one_error_line
from tests.test_watch_engine import as_tuples, thresholds
from vadx.console.cameras import CameraConfig, read_cameras
from vadx.console.engine import CameraHub
from vadx.data.synth import render_long
from vadx.detect import DetectConfig, detect
from vadx.models import save_model
from vadx.models.backbones import build_backbone
from vadx.normality import (
    NormalityConfig,
    calibrated_config,
    detect_unusual,
    learn_normal,
    load_normality,
    save_normality,
)
from vadx.video import VideoReader, write_mp4

SIZE = (48, 48)


@pytest.fixture(scope="module")
def street(streets, tmp_path_factory):
    """The fight street of ``streets`` (44 frames at 25 fps, a fight in frames 15–33), the
    same street quiet (60 frames) and where the fight's pixels are."""
    root = tmp_path_factory.mktemp("beside")
    write_mp4(root / "quiet.mp4", render_long(2, [("normal", 60)], SIZE).frames, fps=25)
    fight = render_long(2, [("normal", 10), ("fight", 24), ("normal", 10)], SIZE)
    return streets[1], root / "quiet.mp4", fight.masks


@pytest.fixture(scope="module")
def normal(street):
    """The street's normal, learnt from its quiet footage."""
    _, quiet, _ = street
    torch.manual_seed(0)
    backbone = build_backbone("vgg19", **TINY.backbone_args)
    # every frame analysed: the tests look for the fight's pixels in the most unusual frame,
    # and read 2 frames apart, the fight vanishing at once after frame 33 is (motion where
    # it was, in a frame without it)
    config = NormalityConfig(
        "vgg19", dict(TINY.backbone_args), frame_size=(64, 64), channels=8, frame_step=1
    )
    learnt = learn_normal(backbone, [quiet], config, holdout=0.25)
    return load_normality(save_normality(learnt, quiet.parent / "street-normal"))


@pytest.fixture(scope="module")
def settings(street, stretched):
    """Settings at which the classifier raises events on the fight street."""
    return thresholds(stretched, street[0], DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)


def spans(events) -> list[tuple[int, int, str]]:
    return [(e.start_frame, e.end_frame, e.class_name) for e in events]


def beside(name: str, source, settings: DetectConfig, **more) -> CameraConfig:
    detect_settings = {k: getattr(settings, k) for k in ("stride", "step", "on", "off")}
    return CameraConfig(
        name=name,
        source=str(source),
        model="street",
        normal="normal",
        detect=detect_settings,
        domain="off",
        **{"pace": False, **more},
    )


def test_a_camera_runs_its_normal_beside_its_classifier(street, normal, stretched, settings):
    """One camera, one decoded source, two signals: each signal's events are those of its
    model alone on the same frames, with one numbering; the status has both scores."""
    video, _, _ = street
    alerts = []
    models = {"street": stretched, "normal": normal}
    hub = CameraHub(
        [beside("door", video, settings)],
        load=models.__getitem__,
        on_alert=lambda name, alert: alerts.append(alert),
    )
    hub.run_to_end(timeout=120)
    ended = {
        signal: [a.event for a in alerts if a.kind == "ended" and a.signal == signal]
        for signal in ("classifier", "normality")
    }
    expected = detect(stretched, video, settings).events
    got, want = as_tuples(ended["classifier"]), as_tuples(expected)
    assert expected and [t[:3] for t in got] == [t[:3] for t in want]
    # the same frames give the same scores, to float precision: the normal's CNN runs beside
    # the classifier's in the same pool of threads, which may sum a convolution in another order
    assert np.allclose([t[3:] for t in got], [t[3:] for t in want], rtol=0, atol=1e-5)
    alone = detect_unusual(normal, video, calibrated_config(normal)).events
    assert alone and spans(ended["normality"]) == spans(alone)
    assert {e.class_name for e in ended["normality"]} == {"unusual"}
    started = [a.id for a in alerts if a.kind == "started"]
    assert sorted(started) == list(range(1, len(expected) + len(alone) + 1))  # no id twice
    (status,) = hub.status()
    assert status.frames == 44 and set(status.scores) == {"classifier", "normality"}
    assert 0 <= status.scores["normality"] <= 1 and status.events == len(started)
    assert hub.model("door", "normality") is normal and hub.model("door") is stretched
    hub.close()


def test_the_normal_must_be_a_normality_model_beside_a_classifier(
    street, normal, stretched, settings, tmp_path
):
    video, _, _ = street
    models = {"street": stretched, "normal": normal}
    camera = beside("door", video, settings)
    with pytest.raises(Exception, match="is not a camera's normality model"):
        CameraHub([camera.model_copy(update={"normal": "street"})], load=models.__getitem__)
    with pytest.raises(Exception, match="is a normality model already"):
        CameraHub([camera.model_copy(update={"model": "normal"})], load=models.__getitem__)
    # in the YAML file: one line naming the file and the place
    classifier = save_model(stretched, tmp_path / "street")
    saved = save_normality(normal, tmp_path / "street-normal")
    file = tmp_path / "cameras.yaml"
    file.write_text(
        f"cameras:\n  door:\n    source: {video}\n    model: street\n    normal: street\n"
    )
    with pytest.raises(Exception, match=r"cameras.yaml: cameras.door.normal: .*is a classifier"):
        read_cameras(file)
    file.write_text(
        f"cameras:\n  door:\n    source: {video}\n    model: street-normal\n    normal: street\n"
    )
    with pytest.raises(Exception, match=r"cameras.door.normal: .*is a classifier"):
        read_cameras(file)
    file.write_text(
        f"cameras:\n  door:\n    source: {video}\n    model: street\n    normal: street-normal\n"
    )
    (read,) = read_cameras(file)
    assert (read.model, read.normal) == (str(classifier), str(saved))


def test_console_events_of_both_signals_and_the_maps_of_the_unusual(
    street, normal, stretched, settings, tmp_path
):
    """Through the console and its API: each event says its signal; a normality event keeps
    map.mp4 (its footage with the maps over it, frame for frame) and map.png (its most
    unusual frame: also its thumbnail), red where the fight is."""
    from fastapi.testclient import TestClient

    from vadx.console.service import Console
    from vadx.serve import Server, create_app

    video, _, masks = street
    server = Server({"street": stretched}, tmp_path / "data")
    models = {"street": stretched, "normal": normal}
    server.console = Console(
        [beside("door", video, settings)],
        server.data / "console",
        load=models.__getitem__,
        explain=False,
    )
    client = TestClient(create_app(server))
    console = server.console.start()
    try:
        wait_for(lambda: console.hub.status()[0].state == "ended", 120)
        wait_for(lambda: all(e.footage_end_frame == 43 for e in console.store.events()), 60)
        events = client.get("/api/events").json()
        signals = sorted({(e["signal"], e["class_name"] == "unusual") for e in events})
        assert signals == [("classifier", False), ("normality", True)]
        assert client.get("/api/cameras/door").json()["settings"]["normal"] == "normal"
        camera = {"name": "yard", "source": str(video), "model": "street", "normal": "nope"}
        refused = client.post("/api/cameras", json=camera)  # a normal neither served nor in use
        assert refused.status_code == 400 and refused.json()["error"].startswith("normal: ")
        unusual = next(e for e in events if e["signal"] == "normality")
        classified = next(e for e in events if e["signal"] == "classifier")
        assert unusual["model_id"] == normal.model_id and unusual["maps"] == unusual["footage"]
        assert classified["maps"] is None and classified["model_id"] != normal.model_id
        missing = client.get(f"/api/events/{classified['id']}/files/map.mp4")
        assert missing.status_code == 404
        drawn = client.get(f"/api/events/{unusual['id']}/files/map.mp4")
        assert drawn.status_code == 200 and drawn.headers["content-type"] == "video/mp4"
        first, last = unusual["footage_start_frame"], unusual["footage_end_frame"]
        (tmp_path / "map.mp4").write_bytes(drawn.content)
        with VideoReader(tmp_path / "map.mp4") as reader:  # every frame of its footage
            assert reader.info.num_frames == last - first + 1
        picture = client.get(f"/api/events/{unusual['id']}/files/map.png")
        thumb = client.get(f"/api/events/{unusual['id']}/files/thumb.png")
        assert picture.status_code == 200 and picture.content == thumb.content
        folder = console.store.folder / unusual["maps"]
        shown = _png(folder / "map.png")
        scores, _ = normal.scores(video)
        peak = first + int(scores[first : last + 1].argmax())  # the most unusual frame
        with VideoReader(video) as reader:
            plain = reader.read(np.array([peak])).data[0]
        # red where the map reaches the threshold: how much redder the picture is than the frame
        redder = _redness(shown) - _redness(plain)
        red = redder > 20
        assert red.any() and masks[peak].any()
        # the red is on the fight: its pixels (a map cell of 8 px around them) hold most of it
        near = _grown(masks[peak], 8)
        assert red[near].sum() > 0.8 * red.sum() and redder[near].mean() > redder[~near].mean() + 20
    finally:
        console.close()
        server.jobs.close()


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _redness(picture: np.ndarray) -> np.ndarray:
    """Per pixel, red above the mean of green and blue."""
    rgb = picture.astype(int)
    return rgb[..., 0] - (rgb[..., 1] + rgb[..., 2]) // 2


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` grown by ``pixels`` in every direction."""
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def test_watch_and_detect_take_a_normal_beside_the_classifier(
    street, normal, stretched, settings, tmp_path, capsys
):
    """``vadx watch CLASSIFIER SOURCE --normal``: alerts of both, each saying its signal, the
    normality ones with their maps; ``vadx detect … --normal``: the classifier's files as
    alone, the normal's in unusual/."""
    video, _, _ = street
    classifier = save_model(stretched, tmp_path / "street")
    saved = save_normality(normal, tmp_path / "street-normal")
    options = ["--stride", "2", "--step", "1", "--on", str(settings.on), "--off", str(settings.off)]
    options += ["--domain", "off"]
    argv = ["watch", str(classifier), str(video), "--out", str(tmp_path / "w"), "--no-explain"]
    code, out, err = run_cli([*argv, *options, "--normal", str(saved)], capsys)
    assert code == 0, err
    assert "ALERT unusual (normality)" in out and "(classifier)" in out
    lines = [json.loads(x) for x in (tmp_path / "w" / "events.jsonl").read_text().splitlines()]
    ended = [r for r in lines if r["state"] == "ended"]
    alone = detect_unusual(normal, video, calibrated_config(normal)).events
    assert [
        (r["start_frame"], r["end_frame"], r["class"]) for r in ended if r["signal"] == "normality"
    ] == spans(alone)
    classified = [
        (r["start_frame"], r["end_frame"], r["class"]) for r in ended if r["signal"] == "classifier"
    ]
    assert classified == spans(detect(stretched, video, settings).events)
    explained = [r for r in lines if r["state"] == "explained"]
    assert [r["class"] for r in explained] == ["unusual"] * len(alone)  # the maps, no CAMs
    maps = tmp_path / "w" / explained[0]["explanation"]
    with VideoReader(maps / "map.mp4") as reader:  # the event's frames when it started
        first, last = next(
            r["window_frames"]
            for r in lines
            if r["id"] == explained[0]["id"] and r["state"] == "started"
        )
        assert reader.info.num_frames == last - first + 1 and first == alone[0].start_frame
    assert (maps / "map.png").is_file()

    argv = ["detect", str(classifier), str(video), "--out", str(tmp_path / "d"), *options]
    code, out, err = run_cli([*argv, "--normal", str(saved)], capsys)
    assert code == 0, err
    assert f"unusual for this camera: {len(alone)} event(s)" in out
    code, _, err = run_cli([*argv[:3], "--out", str(tmp_path / "alone"), *options], capsys)
    assert code == 0, err
    both, by_itself = (
        json.loads((tmp_path / f / "events.json").read_text()) for f in ("d", "alone")
    )
    assert both["events"] == by_itself["events"]
    unusual = json.loads((tmp_path / "d" / "unusual" / "events.json").read_text())
    assert spans(_events(unusual)) == spans(alone) and unusual["model"] == normal.model_id
    with VideoReader(tmp_path / "d" / "unusual" / "unusual.mp4") as reader:
        assert reader.info.num_frames == 44
    assert (tmp_path / "d" / "unusual" / "scores.csv").is_file()
    assert (tmp_path / "d" / "unusual" / "maps" / "event-0.png").is_file()
    assert (tmp_path / "d" / "scores.png").read_bytes() != (
        tmp_path / "alone" / "scores.png"
    ).read_bytes()
    # a normal that is not one, or beside a normality model: one error line each
    code, _, err = run_cli(
        [*argv[:3], "--out", str(tmp_path / "x"), "--normal", str(classifier)], capsys
    )
    assert_one_error_line(code, err, "--normal")
    assert "not a normality model" in err and not (tmp_path / "x").exists()
    code, _, err = run_cli(
        ["watch", str(saved), str(video), "--out", str(tmp_path / "y"), "--normal", str(saved)],
        capsys,
    )
    assert_one_error_line(code, err, "a normality model already")


def _events(document):
    from vadx.detect import Event

    return [Event(**e) for e in document["events"]]


def test_the_console_page_shows_both_signals_and_plays_the_maps(
    street, normal, stretched, settings, tmp_path, monkeypatch
):
    """In Chromium: the camera's tile shows both current scores, a normality event says it is
    unusual for this camera, opens on its maps (map.mp4) with a note, and its thumbnail is the
    map's picture."""
    from tests.test_serve_browser import CHROMIUM, browsing, wait_until

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    from vadx.console.service import Console
    from vadx.serve import Server, serving

    monkeypatch.setattr("vadx.console.service.STATUS_EVERY", 0.3)
    video, _, _ = street
    server = Server({"street": stretched}, tmp_path / "data")
    models = {"street": stretched, "normal": normal}
    door = beside("door", video, settings, loop=True, pace=True)
    server.console = Console([door], server.data / "console", load=models.__getitem__)
    server.console.start()
    scores = "document.querySelectorAll('.tile[data-name=door] .score')"
    rows = "[...document.querySelectorAll('#events tbody tr')]"
    unusual = f"{rows}.find(tr => tr.children[2].classList.contains('normality'))"
    try:
        with serving(server) as url, browsing(url) as (page, errors, outside):
            page.goto(url + "console")
            wait_until(page, f"{scores}.length === 2", 30)
            shown = page.evaluate(f"[...{scores}].map(s => s.dataset.signal)")
            assert shown == ["classifier", "normality"]
            assert page.evaluate(f"{scores}[1].textContent").startswith("unusual ")
            wait_until(page, f"{unusual} && {unusual}.querySelector('img')", 60)
            store = server.console.store
            wait_for(lambda: any(e.maps for e in store.events()), 60)
            mapped = next(e for e in store.events() if e.maps)
            wait_until(page, f"{rows}.some(tr => +tr.dataset.id === {mapped.id})")
            row = f"#events tbody tr[data-id='{mapped.id}']"
            assert page.inner_text(f"{row} td:nth-child(3)") == "unusual for this camera"
            page.click(f"{row} td:nth-child(2)")
            wait_until(page, "document.querySelector('#clip').src.includes('map.mp4')", 30)
            wait_until(page, "document.querySelector('#clip').readyState >= 1")
            assert page.is_visible("#map-note") and page.is_visible("#show-map")
            assert not page.is_visible("#show-explanation")
            page.click("#show-window")
            wait_until(page, "document.querySelector('#clip').src.includes('clip.mp4')")
            assert not page.is_visible("#map-note")
            page.click("#show-map")
            wait_until(page, "document.querySelector('#clip').src.includes('map.mp4')")
            page.set_viewport_size({"width": 1280, "height": 800})
            page.screenshot(path=str(tmp_path / "console-beside.png"))
            assert errors == [] and outside == []
    finally:
        server.console.close()
        server.jobs.close()


def test_a_batch_index_shows_each_unusual_event_with_its_map(street, normal, tmp_path, capsys):
    """A batch with a camera's normal: each event's row in index.html shows its most unusual
    frame with the map (maps/event-K.png), red on the fight."""
    video, _, masks = street
    saved = save_normality(normal, tmp_path / "street-normal")
    archive = tmp_path / "archive"
    archive.mkdir()
    with VideoReader(video) as reader:
        frames = reader.read(np.arange(44)).data
    write_mp4(archive / "fight.mp4", frames, fps=25)
    code, _, err = run_cli(
        ["detect", str(saved), str(archive), "--out", str(tmp_path / "b")], capsys
    )
    assert code == 0, err
    folder = tmp_path / "b" / "videos" / "fight.mp4"
    events = json.loads((folder / "events.json").read_text())["events"]
    assert events and {p.name for p in (folder / "maps").iterdir()} == {
        f"event-{k}.png" for k in range(len(events))
    }
    page = (tmp_path / "b" / "index.html").read_text()
    assert page.count('<img src="videos/fight.mp4/maps/event-') == len(events)
    rows = [json.loads(x) for x in (tmp_path / "b" / "events.jsonl").read_text().splitlines()]
    assert [(r["signal"], r["event"]) for r in rows] == [
        ("normality", k) for k in range(len(events))
    ]
    scores, _ = normal.scores(archive / "fight.mp4")
    first, last = events[0]["start_frame"], events[0]["end_frame"]
    peak = first + int(scores[first : last + 1].argmax())
    redder = _redness(_png(folder / "maps" / "event-0.png")) - _redness(frames[peak])
    red, near = redder > 20, _grown(masks[peak], 8)
    assert red.any() and red[near].sum() > 0.8 * red.sum()


@pytest.fixture(scope="module")
def archive_beside(streets, normal, stretched, settings, tmp_path_factory):
    """A batch of two videos (the fire and the fight streets, frame folders) by the
    classifier with the street's normal beside it; the classifier, the normal, the archive,
    the batch's options and its output."""
    root = tmp_path_factory.mktemp("archive-beside")
    classifier = save_model(stretched, root / "street")
    saved = save_normality(normal, root / "street-normal")
    archive = root / "archive"
    for video in streets:
        shutil.copytree(video, archive / video.name)
    options = ["--stride", "2", "--step", "1", "--on", str(settings.on), "--off", str(settings.off)]
    options += ["--domain", "off"]
    out = root / "batch"
    argv = ["detect", str(classifier), str(archive), "--out", str(out), *options]
    code, text, err = _cli([*argv, "--normal", str(saved)])
    assert code == 0, err
    assert "2 video(s): 2 processed now, 0 already complete (skipped), 0 failed" in text
    return classifier, saved, archive, options, out


def test_a_batch_with_a_normal_gives_each_video_what_one_video_gets(
    archive_beside, normal, tmp_path
):
    """``vadx detect CLASSIFIER ARCHIVE --normal``: each video's folder holds what ``vadx
    detect CLASSIFIER VIDEO --normal`` writes for it (the normal's files in unusual/); the
    index lists the events of both signals, each saying its own, the normal's with its map
    as thumbnail; the batch records the pair of models."""
    classifier, saved, archive, options, out = archive_beside
    rows = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    table = [(r["video"], r["signal"], r["event"]) for r in read_csv(out / "events.csv")]
    assert table == [(r["video"], r["signal"], str(r["event"])) for r in rows]  # the same rows
    assert {row["signal"] for row in rows} == {"classifier", "normality"}
    for name in ("fight", "fire"):
        folder = out / "videos" / name
        alone = tmp_path / name
        argv = ["detect", str(classifier), str(archive / name), "--out", str(alone), *options]
        code, _, err = _cli([*argv, "--normal", str(saved)])
        assert code == 0, err
        written, batched = tree(alone), tree(folder)
        assert set(written) == set(batched) - {"batch.json"}
        assert {  # every byte, but of the annotated videos: encoded on threads, not reproducible
            k: v for k, v in written.items() if not k.endswith("annotated.mp4")
        } == {k: batched[k] for k in written if not k.endswith("annotated.mp4")}
        for signal, events_json in (
            ("classifier", "events.json"),
            ("normality", "unusual/events.json"),
        ):
            found = json.loads((folder / events_json).read_text())["events"]
            mine = [r for r in rows if r["video"] == name and r["signal"] == signal]
            assert [(r["event"], r["start_frame"], r["end_frame"], r["class"]) for r in mine] == [
                (k, e["start_frame"], e["end_frame"], e["class_name"]) for k, e in enumerate(found)
            ]
    unusual = [r for r in rows if r["signal"] == "normality"]
    assert unusual and {r["class"] for r in unusual} == {"unusual"}
    page = (out / "index.html").read_text()
    thumbs = [
        f'<img src="videos/{r["video"]}/unusual/maps/event-{r["event"]}.png"' for r in unusual
    ]
    assert all(t in page for t in thumbs) and page.count("<img src=") == len(unusual)
    assert f"the camera's normal {normal.model_id}" in page and 'id="signal"' in page
    batch = json.loads((out / "batch.json").read_text())
    assert (batch["normal"], batch["events"]) == (normal.model_id, len(rows))
    assert batch["settings"]["normal"]["threshold"] == normal.threshold
    marker = json.loads((out / "videos" / "fight" / "batch.json").read_text())
    assert (marker["model"], marker["normal"]) == (batch["model"], normal.model_id)


def test_a_batch_with_a_normal_redoes_only_what_changed(archive_beside, normal, tmp_path):
    """Run again: nothing is redone; with another normal, or none, every video is."""
    classifier, saved, archive, options, done = archive_beside
    out = tmp_path / "batch"
    shutil.copytree(done, out)
    argv = ["detect", str(classifier), str(archive), "--out", str(out), *options]
    before, index = stamps(out / "videos"), tree(out)
    code, text, err = _cli([*argv, "--normal", str(saved)])
    assert code == 0 and "0 processed now, 2 already complete" in text, err
    assert stamps(out / "videos") == before and tree(out) == index

    other = dataclasses.replace(normal, motion=normal.motion * torch.tensor([[1.0], [1.5]]))
    moved = save_normality(other, tmp_path / "other-normal")
    code, text, err = _cli([*argv, "--normal", str(moved)])
    assert code == 0 and "2 processed now, 0 already complete" in text, err
    marker = json.loads((out / "videos" / "fight" / "batch.json").read_text())
    assert marker["normal"] == load_normality(moved).model_id != normal.model_id

    code, text, err = _cli(argv)  # the normal removed
    assert code == 0 and "2 processed now, 0 already complete" in text, err
    assert not (out / "videos" / "fight" / "unusual").exists()
    rows = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert rows and {r["signal"] for r in rows} == {"classifier"}
    assert json.loads((out / "batch.json").read_text())["normal"] is None


def test_a_batch_refuses_a_normal_that_is_not_one(archive_beside, tmp_path, capsys):
    classifier, _, archive, options, _ = archive_beside
    argv = ["detect", str(classifier), str(archive), "--out", str(tmp_path / "b"), *options]
    code, _, err = run_cli([*argv, "--normal", str(classifier)], capsys)
    assert_one_error_line(code, err, "--normal")
    assert "not a normality model" in err and not (tmp_path / "b").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_batch_index_shows_filters_and_orders_each_signal(archive_beside):
    """In Chromium: the signal chosen shows only its events, and videos are counted and
    ordered by its events."""
    playwright = pytest.importorskip("playwright.sync_api")
    out = archive_beside[-1]
    rows = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").as_uri())
        chips = ".events a:not(.hidden)"
        assert page.locator(chips).count() == len(rows)
        assert page.locator("svg.timeline polyline.normality").count() == 2
        for signal in ("classifier", "normality"):
            page.select_option("#signal", signal)
            mine = [r for r in rows if r["signal"] == signal]
            shown = page.eval_on_selector_all(chips, "els => els.map(e => e.dataset.signal)")
            assert shown == [signal] * len(mine)
            page.select_option("#order", "events")
            names = page.eval_on_selector_all(
                "section.video", "els => els.map(e => e.dataset.name)"
            )
            counts = {n: sum(1 for r in mine if r["video"] == n) for n in ("fight", "fire")}
            assert [counts[n] for n in names] == sorted(counts.values(), reverse=True)
            page.check("#with-events")
            visible = page.locator("section.video:not(.hidden)").count()
            assert visible == sum(1 for n in counts.values() if n)
            page.uncheck("#with-events")
        page.fill("#filter", "normality")
        assert page.locator("#shown").inner_text() == (
            f"{len({r['video'] for r in rows if r['signal'] == 'normality'})} of 2 shown"
        )
        browser.close()
    assert not errors


def test_a_database_of_the_last_release_learns_which_signal_raised_each_event(tmp_path):
    """Migration 0007: events stored before it say their signal (a normality model's were its
    class, unusual), and have no maps."""
    import sqlalchemy as sa

    from vadx.console.store import EventStore, sqlite_url, upgrade

    engine = sa.create_engine(sqlite_url(tmp_path))
    assert upgrade(engine, "0006") == "0006"
    with engine.begin() as db:
        for name in ("fire", "unusual"):
            db.execute(
                sa.text(
                    "INSERT INTO events (camera, class_name, state, start_frame, end_frame, "
                    "start_time, end_time, started_at, ended_at, peak_probability, "
                    "mean_probability, session, model_id, reviewed) VALUES ('door', "
                    f"'{name}', 'ended', 1, 9, 0.04, 0.36, 100.0, 100.3, 0.9, 0.7, 0, 'm', 0)"
                )
            )
    engine.dispose()
    store = EventStore(tmp_path)
    assert store.revision == HEAD
    found = {e.class_name: (e.signal, e.maps) for e in store.events()}
    assert found == {"fire": ("classifier", None), "unusual": ("normality", None)}
    store.close()
