"""pytest hooks of pytest-edge: options, ini keys, markers, thin fixtures, summaries.

Nothing here holds logic that could not be used without pytest: the work is done by the
classes in the feature packages; this module wires them to pytest.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.seed import SEED_HELP, new_seed, parse_seed

if TYPE_CHECKING:
    from pytest_edge.faults import FaultInjector

SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "edge", "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
    )
    group.addoption("--edge-seed", type=parse_seed, default=None, metavar="N", help=SEED_HELP)
    _add_faults_options(group)


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
    config.pluginmanager.register(_FaultsPlugin(config), "edge-faults")


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


# --- faults ---

FAULTS_KEY = pytest.StashKey["FaultInjector"]()
_TMP_PATH = "{tmp_path}"


def _add_faults_options(group: pytest.OptionGroup) -> None:
    """Fault injection has no options: faults are armed by tests (fixture or marker)."""


class _FaultsPlugin:
    """The ``edge_fault`` marker and the report section listing the faults that fired."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_edge.faults.kinds import MARKER_HELP

        config.addinivalue_line("markers", MARKER_HELP)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            for mark in item.iter_markers("edge_fault"):
                from pytest_edge.faults.marker import check_marker

                problem = check_marker(mark.args, mark.kwargs)
                if problem is not None:
                    raise pytest.UsageError(f"{item.nodeid}: {problem}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        injector = item.stash.get(FAULTS_KEY, None)
        if injector is not None and report.failed:
            report.sections.append(("edge faults", injector.report()))
        return report


@pytest.fixture
def edge_faults(request: pytest.FixtureRequest) -> Iterator[FaultInjector]:
    """Arm faults for this test (``disk_full``, ``io_error``, ``fail``, ``sqlite``, ...);
    every patch is undone at teardown, also when the test fails."""
    from pytest_edge.faults import FaultInjector
    from pytest_edge.faults.marker import marker_arguments

    injector = FaultInjector(seed=request.config.stash[SEED_KEY], label=request.node.nodeid)
    request.node.stash[FAULTS_KEY] = injector
    with injector:
        for mark in reversed(list(request.node.iter_markers("edge_fault"))):
            kind, kwargs = marker_arguments(mark.args, mark.kwargs)
            if any(isinstance(v, str) and _TMP_PATH in v for v in kwargs.values()):
                tmp = str(request.getfixturevalue("tmp_path"))
                kwargs = {
                    k: v.replace(_TMP_PATH, tmp) if isinstance(v, str) else v
                    for k, v in kwargs.items()
                }
            injector.arm_kind(kind, kwargs)
        yield injector


@pytest.fixture(autouse=True)
def _edge_fault_marks(request: pytest.FixtureRequest) -> None:
    """Arm ``@pytest.mark.edge_fault`` faults for tests that do not ask for ``edge_faults``."""
    if request.node.get_closest_marker("edge_fault") is not None:
        request.getfixturevalue("edge_faults")
