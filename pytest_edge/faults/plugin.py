"""Fault injection wired to pytest: the ``edge_fault`` marker and the ``edge_faults`` fixture.

A marker's arguments are checked when its test is set up: a bad one fails that test alone.

Faults have no command-line options: tests arm them (fixture or marker). The fault code is
imported only when a test arms a fault; registering the marker needs only `faults.kinds`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_edge.faults.kinds import MARKER_HELP
from pytest_edge.seed import run_seed
from pytest_edge.settings import MarkerSpec, Setting, register_markers

if TYPE_CHECKING:
    from pytest_edge.faults import FaultInjector

FAULTS_KEY = pytest.StashKey["FaultInjector"]()
_TMP_PATH = "{tmp_path}"

SETTINGS: tuple[Setting, ...] = ()
_SIGNATURE, _, _HELP = MARKER_HELP.partition(": ")
MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec("edge_fault", _SIGNATURE.removeprefix("edge_fault"), _HELP),
)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config, MARKERS)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A bad ``edge_fault`` marker errors its own test at setup, in one line; the session (and
    a test deselected with ``-k``) is not touched, as a usage error would."""
    for mark in item.iter_markers("edge_fault"):
        from pytest_edge.faults.marker import check_marker

        problem = check_marker(mark.args, mark.kwargs)
        if problem is not None:
            pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
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

    injector = FaultInjector(seed=run_seed(request.config), label=request.node.nodeid)
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
