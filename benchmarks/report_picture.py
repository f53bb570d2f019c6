"""Take ``docs/images/report.png``: the report of a ``vadx demo`` run's last explained event (the
shooting), scrubbed to its last frame — a screenshot of the page in Chromium.

    python benchmarks/report_picture.py demo-out docs/images/report.png
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(run: Path, out: Path) -> None:
    reports = sorted((run / "explanation").glob("*/report.html"))
    if not reports:
        sys.exit(f"no report under {run / 'explanation'}: run `vadx demo --out {run}` first")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(reports[-1].resolve().as_uri())
        page.wait_for_function("document.body.dataset.drawn !== undefined")
        last = page.evaluate(
            "(() => { const s = document.getElementById('scrub'); s.value = s.max;"
            "s.dispatchEvent(new Event('input')); return s.max; })()"
        )
        page.wait_for_function(f"document.body.dataset.drawn.endsWith('/{last}')")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out} from {reports[-1]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
