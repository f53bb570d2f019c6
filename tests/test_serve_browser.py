"""The web page of ``vadx serve`` in headless Chromium (Debian's, driven by Playwright): upload a
clip, wait for the timeline, explain a window, see the overlay, switch method, download the
report; no console errors. The server runs on a free loopback port for the test's duration."""

from __future__ import annotations

import contextlib
import shutil
import time

import pytest

from tests.conftest import half_outside_domain, long_video, tiny_checkpoint
from vadx.detect import DetectConfig
from vadx.explain import DEFAULT_METHODS
from vadx.models import load_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from vadx.serve import Server, serving

    root = tmp_path_factory.mktemp("served")
    segments = [("normal", 10), ("fire", 20), ("normal", 10)]
    video, frames = long_video(root / "street.mp4", 4, segments, (72, 96))
    tiny_checkpoint(root / "model")
    calibrated = load_model(root / "model")
    calibrated.domain = half_outside_domain(calibrated, frames)
    server = Server({"tiny": load_model(root / "model"), "calibrated": calibrated}, root / "data")
    with serving(server) as url:
        yield url, video, root
    server.jobs.close()


@contextlib.contextmanager
def browsing(url: str, **options):
    """A page of headless Chromium, with the errors it logs and the requests that left ``url``
    (none may: the page works offline)."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(**options)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside: list[str] = []
            local = (url, "data:", f"blob:{url.rstrip('/')}")  # blob: a page's own worker
            page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
            yield page, errors, outside
        finally:
            browser.close()


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll ``expression`` in the page until it is true. (Playwright's ``wait_for_function``
    evaluates its predicate with ``eval``, which the server's Content-Security-Policy rightly
    refuses; ``evaluate`` is the browser's own and is not subject to it.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {expression}")
        time.sleep(0.02)


def test_review_an_anomaly_end_to_end_in_the_browser(served):
    url, video, root = served
    with browsing(url, accept_downloads=True) as (page, errors, outside):
        page.goto(url)
        page.wait_for_selector("#model option", state="attached")
        assert page.locator("#cameras-link").is_hidden()  # a server without cameras
        assert page.locator("#methods input:checked").count() == len(DEFAULT_METHODS)
        assert "Grad-CAM++" in page.text_content("#methods")  # named as people name them
        assert "sharper" in page.get_attribute("#methods label:has(input[value=layercam])", "title")

        page.click("#settings summary")
        defaults = DetectConfig()  # the page's settings start at vadx detect's
        assert [page.input_value(f"#{i}") for i in ("on", "off", "min-frames", "smooth")] == [
            str(defaults.on),
            str(defaults.off),
            str(defaults.min_frames),
            str(defaults.smooth),
        ]
        page.fill("#on", "0")  # every frame anomalous: one event over the whole video
        page.fill("#off", "0")
        page.set_input_files("#file", str(video))
        page.click("#upload")
        page.wait_for_selector("button.cancel", state="attached")  # while it works
        page.wait_for_selector(
            "#timeline-section:not([hidden]) #score-line", state="attached", timeout=120_000
        )  # (a flat score is a line 0 px high)
        assert "40 frames" in page.text_content("#status")
        assert page.locator("button.cancel").count() == 0  # gone once the job is done
        assert page.locator("#events tbody tr").count() == 1
        assert "0:00.0 (frame 0)" in page.text_content("#events tbody tr td:nth-child(3)")
        assert "0:03.9 (frame 39)" in page.text_content("#events tbody tr td:nth-child(4)")
        points = page.get_attribute("#score-line", "points").split()
        assert len(points) == 40
        banner = page.text_content("#domain-banner")  # the tiny model is not calibrated
        assert "Domain not checked" in banner and "vadx calibrate MODEL DATA" in banner
        assert str(root) not in banner
        assert "not checked" in page.text_content("#events tbody tr td:nth-child(6)")
        assert page.text_content("#time-axis").startswith("0:00.00:00.5")  # m:ss ticks
        thumbnail = page.locator("#events tbody img")  # the event's most anomalous frame
        thumbnail.evaluate("img => img.complete || new Promise(r => img.onload = r)")
        assert thumbnail.evaluate("img => img.naturalWidth") == 96  # 96×72 video: as it is

        # the player and the timeline follow each other
        wait_until(page, "document.getElementById('player').readyState >= 1")
        assert abs(page.evaluate("document.getElementById('player').duration") - 4.0) < 0.2
        page.locator("#timeline").scroll_into_view_if_needed()
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 60)
        assert "frame " in page.text_content("#readout")
        at_20 = {"x": box["width"] * 20 / 39, "y": 60}  # frame 20 of frames 0–39
        page.locator("#timeline").click(position=at_20)  # go there
        wait_until(page, "document.body.dataset.frame === '20'")
        assert abs(page.evaluate("document.getElementById('player').currentTime") - 2.0) < 0.05
        page.keyboard.press("ArrowRight")  # one frame on
        wait_until(page, "document.body.dataset.frame === '21'")
        page.keyboard.press("j")  # back to the (only) event's start
        wait_until(page, "document.body.dataset.frame === '0'")
        with page.expect_response(lambda r: r.url.endswith("/events/0/review")):
            page.check("#events .reviewed")  # kept on the server
        csv = page.evaluate("fetch(document.getElementById('export-csv').href).then(r => r.text())")
        assert csv.splitlines()[0].startswith("class_name,start_frame,end_frame")
        assert csv.splitlines()[1].split(",")[1:3] == ["0", "39"]

        page.uncheck("#methods input[value=activation]")
        page.uncheck("#methods input[value=gradcam]")
        page.locator("#timeline").click(position=at_20)
        page.click("#explain-here")  # the window around frame 20
        page.wait_for_selector("#report:not([hidden])", timeout=120_000)
        assert "predicted" in page.text_content("#explain-status")
        assert "frames 18–21" in page.text_content("#explain-title")
        wait_until(
            page,
            "document.getElementById('report').contentDocument.body.dataset.drawn !== undefined",
        )
        inner = page.evaluate(
            "document.getElementById('report').contentDocument.documentElement.scrollHeight"
        )
        outer = page.evaluate("document.getElementById('report').getBoundingClientRect().height")
        assert abs(outer - inner) <= 3  # the report at its full height: no scroll inside
        # the explanation over the video while it plays the explained window
        page.locator("#timeline").click(position=at_20)
        wait_until(page, "document.body.dataset.overlayFrame === '20'")
        assert page.evaluate("document.body.dataset.overlay") == "on"
        painted = page.evaluate(
            "(() => { const c = document.getElementById('overlay'); return "
            "c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
            ".filter((v, i) => i % 4 === 3 && v > 0).length; })()"
        )
        assert painted > 0.5 * 96 * 72  # the heat map over the picture
        page.keyboard.press("j")  # back to frame 0, outside the window: no overlay
        wait_until(page, "document.body.dataset.overlay === 'off'")

        report = page.frame_locator("#report")
        drawn = report.locator("body")
        first = drawn.get_attribute("data-method")
        report.locator("#view").wait_for(state="attached")
        assert report.locator("input[name=method]").count() == 2
        report.locator("input[name=method][value=saliency]").check()
        assert drawn.get_attribute("data-method") == "saliency" != first
        wait_until(
            page,
            "document.getElementById('report').contentDocument.body"
            ".dataset.drawn === 'saliency/heatmap/0'",
        )  # the canvas drew it
        with page.expect_download() as download:
            page.click("#download")
        assert download.value.suggested_filename == "report.html"
        assert "<html" in download.value.path().read_text(encoding="utf-8")

        page.reload()  # a reviewer comes back: the video and its detection are still there
        page.click("#videos button")
        page.wait_for_selector("#timeline-section:not([hidden]) #score-line", state="attached")
        assert page.is_checked("#events .reviewed")  # and what they reviewed
        assert errors == [] and outside == []
        page.screenshot(path=str(root / "page.png"), full_page=True)


def test_footage_outside_the_models_domain_is_flagged_on_the_page(served):
    url, video, _ = served
    with browsing(url) as (page, errors, outside):
        page.goto(url)
        page.wait_for_selector("#model option", state="attached")
        page.select_option("#model", "calibrated")
        page.click("#settings summary")
        page.fill("#on", "0")
        page.fill("#off", "0")
        page.set_input_files("#file", str(video))
        page.click("#upload")
        page.wait_for_selector(
            "#timeline-section:not([hidden]) #score-line", state="attached", timeout=120_000
        )  # (a flat score is a line 0 px high)
        assert page.get_attribute("#domain-banner", "class") == "warning"
        assert "outside the model's training domain" in page.text_content("#domain-banner")
        assert page.locator("#timeline rect.outside").count() >= 1
        assert "% of frames" in page.text_content("#events tbody tr td:nth-child(6)")
        page.locator("#timeline").hover(position={"x": 5, "y": 60})
        assert "domain score" in page.text_content("#readout")
        assert errors == [] and outside == []


def test_an_event_explained_with_the_trust_check_shows_its_verdict(served, tmp_path):
    url, _, _ = served
    video, _ = long_video(tmp_path / "alley.mp4", 4, [("fire", 12), ("normal", 8)], (72, 96))
    with browsing(url) as (page, errors, outside):
        page.goto(url)
        page.wait_for_selector("#model option", state="attached")
        page.click("#settings summary")
        page.fill("#on", "0")  # one event over the whole video
        page.fill("#off", "0")
        page.set_input_files("#file", str(video))
        page.click("#upload")
        page.wait_for_selector(
            "#timeline-section:not([hidden]) #score-line", state="attached", timeout=120_000
        )
        cell = page.locator("#events tbody tr td.verdict")
        assert cell.text_content() == "-"  # not explained yet
        page.uncheck("#methods input[value=activation]")
        page.uncheck("#methods input[value=gradcam]")
        page.check("#trust")
        with page.expect_response(
            lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST"
        ) as posted:
            page.click("#events tbody tr button")  # the event's window
        assert posted.value.request.post_data_json["trust"] is True
        job = posted.value.json()["id"]
        page.wait_for_selector("#report:not([hidden])", timeout=120_000)
        trust = page.evaluate(
            f"fetch('api/jobs/{job}').then(r => r.json()).then(j => j.result.trust)"
        )
        assert {"layercam", "saliency"} <= set(trust)  # and the frame curves
        worst = max(trust.values(), key=["trustworthy", "weak", "contradictory"].index)
        shown = f"(document.querySelector('#events td.verdict') || {{}}).textContent === '{worst}'"
        wait_until(page, shown)
        assert cell.get_attribute("class") == f"verdict {worst}"
        assert f"saliency: {trust['saliency']}" in cell.get_attribute("title")
        # the verdict stays with the event: opened again, the page finds the explain job
        page.reload()
        page.wait_for_selector("#videos button", state="attached")
        page.locator("#videos li", has_text="alley.mp4").locator("button").click()
        wait_until(page, shown)
        assert errors == [] and outside == []


def test_the_api_docs_pages_work_offline(served):
    url, _, _ = served
    with browsing(url) as (page, errors, outside):
        page.goto(url + "docs")
        page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI drew the operations
        assert page.locator(".opblock").count() == 18
        assert "POST/api/jobs/{job_id}/cancel" in page.text_content("body").replace(" ", "")
        page.goto(url + "redoc")
        page.wait_for_selector("text=Cancel a queued or running job", timeout=30_000)
        assert "Delete a finished job" in page.text_content("body")
        assert errors == [] and outside == [], outside
