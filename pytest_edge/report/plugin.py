"""The edge report wired to pytest: ``--edge-report`` and the GitHub step summary.

Every capability contributes its sections through the ``pytest_edge_report_sections`` hook (a
user's ``conftest.py`` may too); this module asks for them once, at the end of the session on
the controller, assembles one `EdgeReport` and writes it. Renderers load only then.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.settings import MarkerSpec, Setting, add_settings

_WRITTEN_KEY = pytest.StashKey[tuple[Path | None, Path | None]]()

REPORT = Setting(
    "--edge-report",
    "write the session's edge report; the format follows the extension (.md, .json, .html). "
    "Markdown is also appended to $GITHUB_STEP_SUMMARY when set.",
    metavar="PATH",
)
SETTINGS: tuple[Setting, ...] = (REPORT,)
MARKERS: tuple[MarkerSpec, ...] = ()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    path: str | None = config.getoption(REPORT.dest)
    if path is None:
        return
    from pytest_edge.report.write import format_for_path

    try:
        format_for_path(path)
    except ValueError as error:
        raise pytest.UsageError(f"--edge-report: {error}") from None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    # A wrapper: the report is built after every capability finished (the benchmark
    # comparison included) and before the terminal summary says where it went.
    result = yield
    config = session.config
    if hasattr(config, "workerinput"):
        return result  # the controller writes the report
    path: str | None = config.getoption(REPORT.dest)
    if path is None and not config.hook.pytest_edge_report_wanted(config=config):
        return result
    from pytest_edge.report.collector import ReportCollector
    from pytest_edge.report.write import append_step_summary, write_report

    collector = ReportCollector()
    for sections in config.hook.pytest_edge_report_sections(config=config):
        for section in sections or ():
            collector.add(section)
    report = collector.build()
    written = write_report(report, path) if path is not None else None
    config.stash[_WRITTEN_KEY] = (written, append_step_summary(report))
    return result


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written, step_summary = config.stash.get(_WRITTEN_KEY, (None, None))
    if written is not None:
        terminalreporter.line(f"edge: report written to {config.getoption(REPORT.dest)}")
    if step_summary is not None:
        terminalreporter.line(f"edge: Markdown report appended to {step_summary}")
