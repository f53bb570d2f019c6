"""The console page (``/console``) in headless Chromium: the camera grid with live pictures
and states, events arriving live, filters, review with the keyboard, clip playback, export;
no console errors and no request leaving the server."""

from __future__ import annotations

import json

import pytest

from tests.test_console import camera, wait_for
from tests.test_serve_browser import CHROMIUM, browsing, wait_until
from tests.test_watch_engine import thresholds
from vadx.detect import DetectConfig

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
#: the page's event rows, whether a row's review box is ticked, the export link
ROWS = "[...document.querySelectorAll('#events tbody tr')]"
CHECKED = "tr.querySelector('input').checked"
EXPORT = "document.querySelector('#export-json')"
UPLOADED = "tr.children[1].classList.contains('upload')"


def tile(name: str, part: str) -> str:
    return f"document.querySelector('.tile[data-name={name}] {part}')"


def test_the_console_page_shows_the_cameras_and_reviews_their_events(streets, stretched, tmp_path):
    from vadx.console.service import Console
    from vadx.serve import Server, serving

    fire, fight = streets
    settings = thresholds(stretched, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    cameras = [
        camera("door", fire, settings, loop=True, pace=True).model_copy(update={"model": "m"}),
        camera("bay", fight, settings, loop=True, pace=True).model_copy(update={"model": "m"}),
        camera("gate", tmp_path / "missing.mp4", settings).model_copy(
            update={"model": "m", "enabled": False}
        ),
    ]
    server = Server({"m": stretched}, tmp_path / "data")
    server.console = Console(cameras, server.data / "console", load=lambda ref: server.models[ref])
    server.console.start()
    try:
        with serving(server) as url, browsing(url) as (page, errors, outside):
            detect_upload(url, fire, stretched, tmp_path)
            page.goto(url)  # the uploads' page leads to the cameras
            page.click("#cameras-link")
            page.wait_for_url(url + "console")
            page.wait_for_selector(".tile[data-name=door] img[src]")
            assert page.locator(".tile").count() == 3
            wait_until(
                page,
                "document.querySelector('.tile[data-name=gate] .state').textContent === 'disabled'",
            )
            wait_until(page, "document.querySelector('.tile[data-name=door] img').naturalWidth > 0")
            shown = page.evaluate(tile("door", "img") + ".src")  # a new picture every second
            wait_until(page, f"{tile('door', 'img')}.src !== {json.dumps(shown)}", 10)
            wait_until(page, "document.querySelector('#live-state').textContent === 'live'")
            # events arrive live, with their thumbnails once their footage is kept
            wait_until(page, "document.querySelectorAll('#events tbody tr img').length >= 2", 60)
            rows = page.locator("#events tbody tr")
            first_id = int(rows.first.get_attribute("data-id"))
            # the keyboard: J selects and plays, R marks reviewed (on the server too)
            page.keyboard.press("j")
            # the newest event plays its window, or its explanation if that is ready already;
            # one whose footage is still being written starts playing when it is kept
            wait_until(
                page, "/(clip|explanation)[.]mp4/.test(document.querySelector('#clip').src)", 90
            )
            wait_until(page, "document.querySelector('#clip').readyState >= 1")
            selected = int(page.locator("#events tbody tr.current").get_attribute("data-id"))
            page.keyboard.press("r")
            wait_until(page, "document.querySelector('#events tbody tr.current input').checked")
            reviewed = server.console.store.event(selected)
            assert (reviewed.reviewed and selected in (first_id, first_id - 1)) or reviewed.reviewed
            # N: a camera's event judged normal for its camera (the row says so, the button is
            # on), N again: not (an upload's event, which may be the newest, has no such button)
            judged = page.locator("#events tbody tr").filter(has_not=page.locator("td.upload"))
            judged_id = int(judged.first.get_attribute("data-id"))  # the row, as events arrive
            page.click(f"#events tbody tr[data-id='{judged_id}'] td:nth-child(2)")
            mark = f"document.querySelector('#events tbody tr[data-id=\"{judged_id}\"] .judged')"
            page.keyboard.press("n")
            wait_until(page, f"{mark} !== null")
            assert page.evaluate("document.querySelector('#judge-normal').classList.contains('on')")
            assert server.console.store.event(judged_id).judged_normal
            page.keyboard.press("n")
            wait_until(page, f"{mark} === null")
            assert server.console.store.event(judged_id).reviewed
            # filters: one camera, then the reviewed ones
            page.select_option("#f-camera", "bay")
            wait_until(page, f"{ROWS}.every(tr => tr.children[1].textContent === 'bay')")
            # an upload's events are in the same list, with their own filter
            page.select_option("#f-camera", "source:upload")
            wait_until(page, f"{ROWS}.length >= 1 && {ROWS}.every(tr => {UPLOADED})")
            page.select_option("#f-camera", "source:camera")
            wait_until(page, f"{ROWS}.length >= 1 && !{ROWS}.some(tr => {UPLOADED})")
            page.select_option("#f-camera", "")
            page.select_option("#f-reviewed", "true")
            wait_until(page, f"{ROWS}.length >= 1 && {ROWS}.every(tr => {CHECKED})")
            assert selected in page.evaluate(f"{ROWS}.map(tr => +tr.dataset.id)")
            exported = page.evaluate(f"fetch({EXPORT}.href).then(r => r.text())")
            assert [e["id"] for e in json.loads(exported) if e["reviewed"]] == [
                e["id"] for e in json.loads(exported)
            ]
            # an explained event plays its explanation: the map over its window, the curves
            page.select_option("#f-reviewed", "")
            store = server.console.store
            wait_for(lambda: any(e.explanation for e in store.events()), 120)
            explained = next(e for e in store.events() if e.explanation)
            wait_until(page, f"{ROWS}.some(tr => +tr.dataset.id === {explained.id})")
            page.click(f"#events tbody tr[data-id='{explained.id}'] td:nth-child(2)")
            wait_until(page, "document.querySelector('#clip').src.includes('explanation.mp4')")
            wait_until(page, "document.querySelector('#strip').naturalWidth > 0")
            page.click("#show-window")
            wait_until(page, "document.querySelector('#clip').src.includes('clip.mp4')")
            assert errors == [] and outside == []
    finally:
        server.console.close()
        server.jobs.close()


def detect_upload(url: str, frames, model, tmp_path) -> None:
    """Upload ``frames`` as a video and detect its events (thresholds that find some)."""
    import httpx

    from vadx.video import read_video, write_mp4

    video = write_mp4(tmp_path / "upload.mp4", read_video(frames).data, fps=25)
    config = thresholds(model, video, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    with open(video, "rb") as fh:
        uploaded = httpx.post(url + "api/videos", files={"file": ("lobby.mp4", fh)}).json()
    settings = {"stride": 2, "step": 1, "on": config.on, "off": config.off, "domain": "off"}
    request = {"kind": "detect", "video": uploaded["id"], "detect": settings}
    assert httpx.post(url + "api/jobs", json=request).status_code == 202


def test_the_page_says_when_a_full_disk_stops_the_recording(
    streets, stretched, tmp_path, monkeypatch
):
    from tests.test_console_faults import NO_SPACE, no_space_for_files
    from vadx.console import recording
    from vadx.console.service import Console
    from vadx.serve import Server, serving
    from vadx.video import encode

    monkeypatch.setattr(recording, "RETRY_FIRST", 0.1)
    monkeypatch.setattr(recording, "RETRY_MOST", 0.2)
    monkeypatch.setattr("vadx.console.service.STATUS_EVERY", 0.3)
    fire, _ = streets
    settings = thresholds(stretched, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    door = camera("door", fire, settings, loop=True, pace=True).model_copy(update={"model": "m"})
    server = Server({"m": stretched}, tmp_path / "data")
    server.console = Console(
        [door], server.data / "console", load=lambda ref: server.models[ref], explain=False
    )
    server.console.start()
    line = "document.querySelector('#recording')"
    try:
        with serving(server) as url, browsing(url) as (page, errors, outside):
            page.goto(url + "console")
            wait_until(page, "document.querySelector('#live-state').textContent === 'live'")
            assert page.evaluate(f"{line}.hidden")
            atomic_path = encode.atomic_path
            with pytest.warns(UserWarning, match="recording (stopped|resumed)"):  # the log too
                monkeypatch.setattr(encode, "atomic_path", no_space_for_files)  # the disk fills
                wait_until(page, f"!{line}.hidden", 30)
                text = page.evaluate(f"{line}.textContent")
                assert text.startswith("Recording stopped since ") and "disk full — " in text
                assert NO_SPACE in text and "The cameras are still watched" in text
                background = page.evaluate(f"getComputedStyle({line}).backgroundColor")
                assert background == "rgb(187, 0, 0)"
                monkeypatch.setattr(encode, "atomic_path", atomic_path)  # room again
                wait_until(page, f"{line}.hidden", 30)
            assert errors == [] and outside == []
    finally:
        server.console.close()
        server.jobs.close()
