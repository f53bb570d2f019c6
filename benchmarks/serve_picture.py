"""Take ``docs/images/serve.png``: ``vadx serve`` with the demo's model, the demo's long video
uploaded through the page, its shooting explained — a screenshot of the page in Chromium.

    python benchmarks/serve_picture.py demo-out docs/images/serve.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from vadx.models import load_model
from vadx.serve import Server, serving


def main(run: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server({"demo": load_model(run / "run" / "best")}, Path(tmp))
        with serving(server) as base:
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base)
                page.wait_for_selector("#model option", state="attached")
                page.set_input_files("#file", str(run / "long_video.mp4"))
                page.click("#upload")
                page.wait_for_selector("#events tbody tr", timeout=300_000)
                shooting = page.locator("#events tbody tr", has_text="shooting")
                shooting.locator("button").click()
                page.wait_for_selector("#report:not([hidden])", timeout=300_000)
                page.wait_for_function("document.body.dataset.overlay !== undefined")
                shooting.click()  # the player goes to the event: the overlay on the video
                page.locator("#timeline-section").scroll_into_view_if_needed()
                time.sleep(1)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                browser.close()
        server.jobs.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
