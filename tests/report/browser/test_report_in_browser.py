"""The HTML report as a reader meets it: in headless Chromium at desktop and phone width.

For the demo report and for a run with failing tests, a failing scenario and a regression:
no console error, no network request, no sideways scrolling of the page at 1400 and 400 CSS
px, every chart label inside its chart, and (failing run) the failures named with their
message in the summary at the top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.report.browser.cdp import Browser, PageResult

MEASURE = (Path(__file__).parent / "measure.js").read_text()
WIDTHS = (1400, 400)


def load(browser: Browser, html: Path, width: int) -> tuple[PageResult, dict[str, Any]]:
    result = browser.page(html, width, MEASURE)
    assert isinstance(result.measured, dict)
    return result, result.measured


def check_page(result: PageResult, measured: dict[str, Any], width: int) -> None:
    assert result.console_errors == []
    assert result.exceptions == []
    assert result.requests == []  # everything is inline: no network, no file, no font
    # The viewport tag: a phone lays the page out at its own width, not 980 px shrunk.
    assert measured["innerWidth"] == width
    assert measured["scrollWidth"] <= measured["clientWidth"], measured["wide"]
    assert measured["tablesScrollInside"]
    assert measured["labelsOutside"] == []
    assert all(link.startswith(("#", "https://", "http://")) for link in measured["links"])


@pytest.mark.parametrize("width", WIDTHS)
def test_demo_report_reads_cleanly(browser: Browser, demo_html: Path, width: int) -> None:
    result, measured = load(browser, demo_html, width)
    check_page(result, measured, width)
    assert measured["bannerText"].startswith("✓ OK")
    assert "9 passed" in measured["summaryText"]
    assert any(link.startswith("https://") for link in measured["links"])  # sources clickable


@pytest.mark.parametrize("width", WIDTHS)
def test_failing_run_puts_failures_first(browser: Browser, failing_html: Path, width: int) -> None:
    result, measured = load(browser, failing_html, width)
    check_page(result, measured, width)
    banner = measured["bannerText"]
    assert banner.startswith("✗ FAILED: pytest failed (exit code 1)")
    assert "3 failed tests, 1 regression, 1 failed scenario" in banner
    assert measured["summaryVisible"]
    items = measured["failureItems"]
    markup = next(i for i in items if "test_tokenizer_handles_markup" in i)
    # The hostile message is shown as text, not run as markup.
    assert "<img src=x onerror=alert(1)> tokens lost" in markup
    assert any("test_decode_speed_and_result" in i for i in items)  # a failed benchmark test
    assert any("REGRESSION" in i and "test_tokenize_speed" in i for i in items)
    assert any("FAILED SCENARIO" in i and "flaky-backend" in i for i in items)
    assert measured["charts"] >= 3  # box plots and the history of the regressed benchmark
    assert measured["labels"] > 20


BROKEN = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<div style="width:2000px">wide</div>
<svg viewBox="0 0 100 40" width="100"><text x="90" y="20">clipped label</text></svg>
<img src="http://127.0.0.1:9/x.png">
<script>console.error("boom")</script>
</body></html>"""


def test_the_checks_catch_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    # What the report tests rely on, seen failing: overflow, a clipped label, a network
    # request, a console error, and a page laid out at 980 px for want of a viewport tag.
    page = tmp_path / "broken.html"
    page.write_text(BROKEN)
    result, measured = load(browser, page, 400)
    assert measured["scrollWidth"] > measured["clientWidth"]
    assert [o["text"] for o in measured["labelsOutside"]] == ["clipped label"]
    assert result.requests == ["http://127.0.0.1:9/x.png"]
    assert any("boom" in e for e in result.console_errors)
    assert measured["innerWidth"] != 400
