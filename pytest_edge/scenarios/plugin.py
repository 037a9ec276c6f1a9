"""Scenarios wired to pytest: TOML scenario files collected as items, their summary and verdict.

The items (`pytest_edge.scenarios.items`) ask for their devices and the isolation through
pytest-edge's hooks (answered by the device capability) and read the seed from
`pytest_edge.seed`; the report section goes through ``pytest_edge_report_sections``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.device.session import edge_run
from pytest_edge.settings import MarkerSpec, Setting, add_settings, read_setting, register_markers

if TYPE_CHECKING:
    from pytest_edge.report.model import Section
    from pytest_edge.scenarios.record import ScenarioRecord

SCENARIO_PATHS = Setting(
    "--edge-scenario-path",
    "collect every .toml file under PATH as a scenario, whatever its size (repeatable); "
    "elsewhere only .toml files of at most 1 MB with a [scenario] table in their first "
    "64 KB are read.",
    metavar="PATH",
    action="append",
    ini="edge_scenario_paths",
    ini_type="paths",
)
SETTINGS: tuple[Setting, ...] = (SCENARIO_PATHS,)
_PATHS_KEY = pytest.StashKey[tuple[Path, ...]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec("edge_scenario", "", "an item collected from a scenario TOML file (pytest-edge)"),
)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config, MARKERS)
    paths, _ = read_setting(config, SCENARIO_PATHS)
    base = config.invocation_params.dir
    config.stash[_PATHS_KEY] = tuple((base / p).resolve() for p in paths or ())
    config.pluginmanager.register(ScenarioPlugin(config), "edge-scenarios")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".toml":
        return None
    from pytest_edge.scenarios.items import ScenarioFile
    from pytest_edge.scenarios.schema import (
        MAX_SCENARIO_BYTES,
        ScenarioFileWarning,
        skipped_reason,
        sniff_toml,
    )

    configured = parent.config.stash.get(_PATHS_KEY, ())
    if not any(file_path.resolve().is_relative_to(p) for p in configured):
        sniff = sniff_toml(file_path)
        reason = skipped_reason(file_path, sniff)
        if reason is not None:
            # Located at the file (and the misspelled table's line), not at this plugin.
            warnings.warn_explicit(ScenarioFileWarning(reason), None, str(file_path), sniff.line)
        if not sniff.scenario or sniff.size > MAX_SCENARIO_BYTES:
            return None
    file: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
    return file


class ScenarioPlugin:
    """The run's scenario records (from every worker): the summary table, verdict and section."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[ScenarioRecord] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or not report.user_properties:
            return
        from pytest_edge.scenarios.items import iter_records

        self.records.extend(iter_records([report]))

    def pytest_edge_report_sections(self) -> list[Section]:
        if not self.records:
            return []
        from pytest_edge.scenarios.devices import devices_of_records
        from pytest_edge.scenarios.report import scenarios_section

        run = edge_run(self.config)
        return [scenarios_section(self.records, devices_of_records(self.records, run))]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        from pytest_edge.report.escape import terminal_safe
        from pytest_edge.report.text import render_table, wrap
        from pytest_edge.scenarios.record import ESTIMATE_NOTE, terminal_table, verdict

        terminalreporter.section("edge scenarios")
        for line in render_table(terminal_table(self.records)):
            terminalreporter.line(line)
        if any(r.projected_throughput is not None for r in self.records):
            for line in wrap(f"estimate: {ESTIMATE_NOTE}", 120):
                terminalreporter.line(line)
        for record in self.records:
            for reason in record.reasons:
                # Names and reasons come from users' files and workloads: made inert.
                text = terminal_safe(f"{record.name} on {record.profile}: {reason.splitlines()[0]}")
                for line in wrap(text, 120):
                    terminalreporter.line(line, red=True)
        line = verdict(self.records)
        terminalreporter.line(
            f"edge scenarios verdict: {line}",
            bold=True,
            red=line.startswith("FAIL"),
            green=line.startswith("PASS"),
        )
