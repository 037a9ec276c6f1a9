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
_OUTCOMES_KEY = pytest.StashKey["_OutcomeHooks"]()

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
    if not hasattr(config, "workerinput"):
        hooks = config.stash[_OUTCOMES_KEY] = _OutcomeHooks(config)
        config.pluginmanager.register(hooks, "edge-report-outcomes")
    path: str | None = config.getoption(REPORT.dest)
    if path is None:
        return
    from pytest_edge.report.write import format_for_path

    try:
        format_for_path(path)
    except ValueError as error:
        raise pytest.UsageError(f"--edge-report: {error}") from None


class _OutcomeHooks:
    """Tallies every test report on the controller (under xdist it sees every worker's)."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_edge.report.outcomes import OutcomeRecorder

        self.config = config
        self.recorder = OutcomeRecorder()

    def _tally(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        category, _, _ = self.config.hook.pytest_report_teststatus(
            report=report, config=self.config
        )
        self.recorder.add(report, category)

    def pytest_sessionstart(self) -> None:
        self.recorder.restart()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._tally(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed or report.skipped:
            self._tally(report)


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
    hooks = config.stash.get(_OUTCOMES_KEY, None)
    if hooks is not None:
        collector.outcome = hooks.recorder.summary(int(session.exitstatus))
        collector.metadata = _metadata(config, collector.outcome.duration_s)
    report = collector.build()
    written = write_report(report, path) if path is not None else None
    config.stash[_WRITTEN_KEY] = (written, append_step_summary(report))
    return result


def _metadata(config: pytest.Config, duration_s: float | None) -> tuple[tuple[str, str], ...]:
    from pytest_edge.report.runinfo import run_metadata
    from pytest_edge.seed import run_seed

    workers = getattr(config.option, "numprocesses", None)
    return run_metadata(
        config.invocation_params.args,
        config.rootpath,
        duration_s,
        run_seed(config),
        workers if isinstance(workers, int) else None,
    )


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written, step_summary = config.stash.get(_WRITTEN_KEY, (None, None))
    if written is not None:
        terminalreporter.line(f"edge: report written to {config.getoption(REPORT.dest)}")
    if step_summary is not None:
        terminalreporter.line(f"edge: Markdown report appended to {step_summary}")
