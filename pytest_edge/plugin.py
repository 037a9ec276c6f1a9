"""pytest hooks of pytest-edge: options, ini keys, markers, thin fixtures, summaries.

Nothing here holds logic that could not be used without pytest: the work is done by the
classes in the feature packages; this module wires them to pytest.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_edge.seed import SEED_HELP, new_seed, parse_seed

SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "edge", "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
    )
    group.addoption("--edge-seed", type=parse_seed, default=None, metavar="N", help=SEED_HELP)


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and "edge_seed" in workerinput:
        seed = int(workerinput["edge_seed"])
    else:
        chosen = config.getoption("edge_seed")
        seed = new_seed() if chosen is None else int(chosen)
    config.stash[SEED_KEY] = seed
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "edge-xdist-hooks")
    config.addinivalue_line(
        "markers",
        "edge_scenario: an item collected from a scenario TOML file (added by pytest-edge)",
    )
    config.pluginmanager.register(_ScenarioPlugin(config), "edge-scenarios")


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = config.stash[SEED_KEY]
    return [f"edge: seed {seed} (replay with --edge-seed={seed})"]


class _XdistHooks:
    """Hooks that exist only with pytest-xdist; registered when it is loaded."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # The controller chooses the seed once; every worker replays the same one.
        node.workerinput["edge_seed"] = node.config.stash[SEED_KEY]


@pytest.fixture(scope="session")
def edge_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed (``--edge-seed``, or the one chosen for this run)."""
    return pytestconfig.stash[SEED_KEY]


# --- scenarios ---
class _ScenarioPlugin:
    """Collects scenario TOML files as items; prints the scenario table and verdict."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_edge.scenarios.isolate import isolate_in_child

        self.config = config
        self.isolate = isolate_in_child
        self.records: list[Any] = []

    def devices_for(self, scenario: Any) -> list[Any]:
        from pytest_edge.scenarios.runner import Device

        return [Device("host")]

    def pytest_collect_file(self, file_path: Any, parent: pytest.Collector) -> Any:
        if file_path.suffix != ".toml":
            return None
        from pytest_edge.scenarios.items import ScenarioFile
        from pytest_edge.scenarios.schema import is_scenario_file

        if not is_scenario_file(file_path):
            return None
        return ScenarioFile.from_parent(parent, path=file_path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        from pytest_edge.scenarios.items import iter_records

        self.records.extend(iter_records([report]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        from pytest_edge.scenarios.record import COLUMNS, rows, verdict

        terminalreporter.section("edge scenarios")
        table = [COLUMNS, *rows(self.records)]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
        for row in table:
            terminalreporter.line(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            )
        for record in self.records:
            for reason in record.reasons:
                terminalreporter.line(
                    f"{record.name} on {record.profile}: {reason.splitlines()[0]}"
                )
        line = verdict(self.records)
        terminalreporter.line(
            f"edge scenarios verdict: {line}",
            bold=True,
            red=line.startswith("FAIL"),
            green=line.startswith("PASS"),
        )
