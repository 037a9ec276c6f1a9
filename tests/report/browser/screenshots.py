"""``make screenshots``: PNGs of the demo report and of a failing run's report, for the docs.

Usage: ``python -m tests.report.browser.screenshots DOCS_DIR``. Makes both reports with real
pytest runs (see `tests.report.browser.reports`), then shoots the top of each page in
headless Chromium at a desktop width (the banner, the summary, the contents and the first
section: what a reader sees first).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.report.browser.cdp import Browser, find_chromium
from tests.report.browser.reports import demo_report, failing_report

WIDTH = 1100
HEIGHT = 1500  # the top of the page; the PNG stays small


def main(docs: Path) -> int:
    binary = find_chromium()
    if binary is None:
        print("screenshots: no chromium on PATH (make screenshots installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="edge-screenshots-") as tmp:
        work = Path(tmp)
        pages = {
            "report-demo.png": demo_report(work),
            "report-failing.png": failing_report(work / "failing"),
        }
        with Browser.start(binary) as browser:
            for name, html in pages.items():
                size = browser.screenshot(html, WIDTH, docs / name, max_height=HEIGHT)
                print(f"screenshots: {docs / name} ({size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")))
