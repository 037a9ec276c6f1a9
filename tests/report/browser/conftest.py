"""The HTML report in a real browser: headless Chromium from the operating system.

These tests cost minutes (they make real reports: the demo's nine scenarios, and a run with
benchmarks saved three times), so the default ``make test`` skips them; ``make test-browser``
(called by ``.ci/run`` after ``make test``) installs Chromium when missing and runs them with
``EDGE_BROWSER_TESTS=1``. Without Chromium they are skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.browser.cdp import Browser, find_chromium
from tests.report.browser.reports import demo_report, failing_report

ENABLE = "EDGE_BROWSER_TESTS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: renders the HTML report in headless Chromium (make test-browser)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue
        item.add_marker(pytest.mark.browser)
        if os.environ.get(ENABLE) != "1":
            item.add_marker(
                pytest.mark.skip(reason=f"browser test: run with make test-browser ({ENABLE}=1)")
            )
        elif find_chromium() is None:
            item.add_marker(
                pytest.mark.skip(reason="no chromium on PATH: make test-browser installs it")
            )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    binary = find_chromium()
    assert binary is not None
    with Browser.start(binary) as running:
        yield running


@pytest.fixture(scope="session")
def demo_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_report(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def failing_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return failing_report(tmp_path_factory.mktemp("failing"))
