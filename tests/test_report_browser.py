"""report.html in headless Chromium (Debian's, driven by Playwright): no console errors, no
request leaving the file, the views the page draws equal to :mod:`vadx.render.overlay`'s
pictures, and the method and view switchers, the opacity control, the scrubber and the strip
work. ``make test`` installs Chromium and Playwright; without them this test is skipped."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from tests.conftest import long_video, tiny_checkpoint
from vadx.explain import DEFAULT_TEMPORAL
from vadx.explanations.video import ExplainSettings, explain_clip, explain_video
from vadx.models import load_model
from vadx.render.overlay import render
from vadx.video.decode import VideoReader

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
SETTINGS = ExplainSettings(methods=("gradcam", "saliency", "layercam"))


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """The report of a clip, and the same clip explained here (maps on the source frames)."""
    root = tmp_path_factory.mktemp("report")
    segments = [("normal", 8), ("fire", 20), ("normal", 8)]
    video, _ = long_video(root / "clip.mp4", 5, segments, (72, 96))
    model = load_model(tiny_checkpoint(root / "model"))
    (clip,) = explain_video(model, video, root / "out", SETTINGS).clips
    with VideoReader(video) as reader:
        frames = reader.read(clip.frames).data
    here = explain_clip(model, frames, clip.frames, 1.0, SETTINGS)
    return clip.report, here


def drawn(page, method: str, view: str, frame: int) -> np.ndarray:
    """The player's canvas once it shows ``method`` in ``view`` at ``frame``, as RGB."""
    page.wait_for_function(f"document.body.dataset.drawn === '{method}/{view}/{frame}'")
    height, width = page.evaluate("[0, 1].map(k => [view.height, view.width][k])")
    pixels = page.evaluate(
        "([w, h]) => Array.from(view.getContext('2d').getImageData(0, 0, w, h).data)",
        [width, height],
    )
    return np.array(pixels, np.uint8).reshape(height, width, 4)[..., :3]


def assert_same_lines(canvas: np.ndarray, expected: np.ndarray, frame: np.ndarray) -> None:
    """The lines drawn on ``frame`` in both pictures lie within a pixel of each other."""
    drawn_here, drawn_there = (np.abs(x - frame).max(-1) > 60 for x in (canvas, expected))
    assert drawn_there.sum() >= 30  # there are lines to compare
    near = lambda mask: cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # noqa: E731
    assert (drawn_there & near(drawn_here)).sum() >= 0.9 * drawn_there.sum()
    assert (drawn_here & near(drawn_there)).sum() >= 0.9 * drawn_here.sum()


def test_report_draws_every_view_as_vadx_renders_it_offline(explained):
    report, clip = explained
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"file://{report}")
            assert page.text_content("#verdict").strip().endswith("%")
            assert page.locator("#probabilities tr").count() == 4
            assert page.locator("#importance polyline").count() == len(DEFAULT_TEMPORAL)
            assert page.locator("#timeline polyline").count() == 1
            assert page.locator("#strip canvas").count() == 4  # every frame of the clip

            for method, view, frame in [
                ("gradcam", "heatmap", 0),
                ("saliency", "heatmap", 3),
                ("gradcam", "contour", 2),
                ("gradcam", "contours", 2),
            ]:
                page.check(f"input[name=method][value={method}]")
                page.check(f"input[name=view][value={view}]")
                page.fill("#scrub", str(frame))
                page.dispatch_event("#scrub", "input")
                canvas = drawn(page, method, view, frame).astype(int)
                expected = render(clip.frames[frame], clip.maps[method][frame], view).astype(int)
                assert canvas.shape == expected.shape == (72, 96, 3)
                if view == "heatmap":  # the same up to the JPEG frame and the resampling
                    difference = np.abs(canvas - expected).max(-1)
                    assert np.mean(difference) < 6, (method, np.mean(difference))
                    assert np.mean(difference > 60) < 0.03, method
                else:  # the same lines, up to a pixel aside
                    assert_same_lines(canvas, expected, clip.frames[frame].astype(int))
                assert clip.explanation.maps[method].display_name in page.text_content("#badge")

            page.check("input[name=view][value=heatmap]")
            page.fill("#opacity", "0")
            page.dispatch_event("#opacity", "input")
            page.wait_for_timeout(100)
            plain = drawn(page, "gradcam", "heatmap", 2).astype(int)
            assert np.abs(plain - clip.frames[2].astype(int)).mean() < 4  # only the frame

            timeline = page.locator("#timeline")  # a click on the video's timeline: its frame
            box, first = timeline.bounding_box(), clip.indices[1]
            frames = int(timeline.get_attribute("data-frames"))
            x = (34 + (640 - 44) * first / (frames - 1)) * box["width"] / 640
            timeline.click(position={"x": x, "y": 30})
            assert page.input_value("#scrub") == "1"
            page.locator("#strip canvas").nth(3).click()  # the strip jumps to a frame
            drawn(page, "gradcam", "heatmap", 3)
            assert page.input_value("#scrub") == "3" and "(4/4)" in page.text_content("#number")
            assert float(page.get_attribute("#marker", "x1")) > 34
            page.screenshot(path=str(report).replace(".html", ".png"), full_page=True)
            assert errors == []
            assert all(url.startswith(("file:", "data:")) for url in requests)
        finally:
            browser.close()
