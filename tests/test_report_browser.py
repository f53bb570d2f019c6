"""report.html in headless Chromium (Debian's, driven by Playwright): no console errors,
images and video load, the method and view switchers, the opacity control and the scrubber
work. ``make test`` installs Chromium and Playwright; without them this test is skipped."""

from __future__ import annotations

import shutil

import pytest
import torch

from tests.conftest import TINY
from vadx.data.synth import render_long
from vadx.explain import DEFAULT_TEMPORAL
from vadx.explain_video import ExplainSettings, explain_video
from vadx.models import CRNN, load_model, save_model
from vadx.video.encode import write_mp4

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    long = render_long(5, [("normal", 8), ("fire", 20), ("normal", 8)], (72, 96))
    video = write_mp4(root / "clip.mp4", long.frames, fps=10)
    torch.manual_seed(0)
    save_model(CRNN(TINY), root / "model")
    settings = ExplainSettings(methods=("gradcam", "saliency", "layercam"))
    summary = explain_video(load_model(root / "model"), video, root / "out", settings)
    return summary["clips"][0]["report"]


def test_report_loads_offline_and_its_controls_work(report):
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
            page.wait_for_function("document.getElementById('video').readyState >= 2")
            assert errors == []
            assert all(url.startswith(("file:", "data:")) for url in requests)
            broken = page.evaluate(
                "Array.from(document.images).filter(i => !i.complete || !i.naturalWidth).length"
            )
            assert broken == 0
            assert page.evaluate("document.getElementById('video').videoWidth") == 96
            assert page.text_content("#verdict").strip().endswith("%")
            assert page.locator("#probabilities tr").count() == 4
            assert page.locator("#importance polyline").count() == len(DEFAULT_TEMPORAL)
            assert page.locator("#timeline polyline").count() == 1

            heat = page.get_attribute("#heat", "src")
            page.check("input[name=method][value=saliency]")
            assert page.evaluate("document.body.dataset.method") == "saliency"
            assert page.get_attribute("#heat", "src") != heat
            assert "Saliency" in page.text_content("#badge")

            data = "JSON.parse(document.getElementById('player-data').textContent)"
            page.check("input[name=view][value=contour]")
            assert page.evaluate("document.body.dataset.view") == "contour"
            contour = page.evaluate(f"{data}.methods.saliency.contour[0]")
            assert page.get_attribute("#frame", "src") == contour
            assert page.evaluate("getComputedStyle(document.getElementById('heat')).opacity") == "0"

            page.check("input[name=view][value=heatmap]")
            page.fill("#opacity", "0.8")
            page.dispatch_event("#opacity", "input")
            assert page.evaluate("document.getElementById('heat').style.opacity") == "0.8"

            page.fill("#scrub", "3")
            page.dispatch_event("#scrub", "input")
            assert page.get_attribute("#frame", "src") == page.evaluate(f"{data}.frames[3]")
            assert "frame" in page.text_content("#number")
            marker = page.get_attribute("#marker", "x1")
            assert float(marker) > 34
            page.screenshot(path=str(report).replace(".html", ".png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
