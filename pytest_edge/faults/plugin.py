"""Fault injection wired to pytest: the ``edge_fault`` marker, the ``edge_faults`` fixture,
whether each armed fault fired, and which layer observes file I/O.

A marker's arguments are checked when its test is set up: a bad one fails that test alone.
At teardown every fault the test armed gets a verdict (`pytest_edge.faults.verdict`): one that
never fired is an `UnfiredFaultWarning` in the test's report, or a teardown error with
``--edge-unfired-faults=error``; the verdicts travel to the controller in ``user_properties``
and make the edge report's faults section.

The fault code is imported only when a test arms a fault; registering the marker needs only
`faults.kinds`.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_edge.faults.kinds import MARKER_HELP
from pytest_edge.seed import run_seed
from pytest_edge.settings import (
    MarkerSpec,
    Setting,
    add_settings,
    one_of,
    read_setting,
    register_markers,
)

if TYPE_CHECKING:
    from pytest_edge.faults import FaultInjector
    from pytest_edge.faults.verdict import FaultVerdict
    from pytest_edge.report.model import Section

FAULTS_KEY = pytest.StashKey["FaultInjector"]()
_CALL_PASSED = pytest.StashKey[bool]()
_MODE_KEY = pytest.StashKey[str]()
_LAYER_KEY = pytest.StashKey[str]()
_TMP_PATH = "{tmp_path}"
#: the ``user_properties`` key of a test's fault verdicts
PROPERTY = "edge_faults"


def _unfired_mode(text: str) -> str:
    from pytest_edge.faults.verdict import parse_unfired_mode

    return parse_unfired_mode(text)


UNFIRED = Setting(
    "--edge-unfired-faults",
    "what a fault armed for a test that never fired is: warn (a warning in the test's "
    "report, the default), error (the test errors at teardown, naming the fault) or ignore.",
    metavar="warn|error|ignore",
    parse=_unfired_mode,
    ini="edge_unfired_faults",
    env="PYTEST_EDGE_UNFIRED_FAULTS",
)


def _fault_layer(text: str) -> str:
    from pytest_edge.faults.layer import LAYERS

    return one_of("--edge-fault-layer", text, LAYERS)


FAULT_LAYER = Setting(
    "--edge-fault-layer",
    "where filesystem faults act: auto (the system-call library when pytest was started with "
    "it, e.g. by pytest-edge run, else Python; the default), python (always patch Python), "
    "syscall (the library or an error saying why it is not loaded).",
    metavar="auto|python|syscall",
    parse=_fault_layer,
    ini="edge_fault_layer",
    env="PYTEST_EDGE_FAULT_LAYER",
)
SETTINGS: tuple[Setting, ...] = (UNFIRED, FAULT_LAYER)
_SIGNATURE, _, _HELP = MARKER_HELP.partition(": ")
MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec("edge_fault", _SIGNATURE.removeprefix("edge_fault"), _HELP),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config, MARKERS)
    mode, _ = read_setting(config, UNFIRED)
    config.stash[_MODE_KEY] = mode or "warn"
    layer, where = read_setting(config, FAULT_LAYER)
    config.stash[_LAYER_KEY] = layer or "auto"
    if layer == "syscall":
        from pytest_edge.faults.layer import current_layer

        found = current_layer()
        if not found.syscall:
            raise pytest.UsageError(
                f"{where}=syscall: the system-call layer is not in use in this pytest: "
                f"{found.why_not_syscall}"
            )
    config.pluginmanager.register(FaultsRun(), "edge-faults-run")


def pytest_report_header(config: pytest.Config) -> str:
    from pytest_edge.faults.layer import header_line

    return header_line(config.stash.get(_LAYER_KEY, "auto"))


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
    if injector is None:
        return report
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    if report.failed:
        report.sections.append(("edge faults", injector.report()))
    return report


class FaultsRun:
    """The run's fault verdicts (from every worker), for the edge report."""

    def __init__(self) -> None:
        self.verdicts: list[FaultVerdict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for key, value in report.user_properties:
            if key == PROPERTY and isinstance(value, list):
                from pytest_edge.faults.verdict import FaultVerdict

                self.verdicts.extend(FaultVerdict.from_data(v) for v in value)

    def pytest_edge_report_sections(self) -> list[Section]:
        if not self.verdicts:
            return []
        from pytest_edge.faults.report import faults_section

        return [faults_section(self.verdicts)]


def _judge(request: pytest.FixtureRequest, injector: FaultInjector) -> None:
    """Record every armed fault's verdict; warn (or fail) about those that never fired when the
    test itself passed (a failed or skipped test already says what went wrong)."""
    node = request.node
    verdicts = injector.verdicts(test=node.nodeid)
    if not verdicts:
        return
    node.user_properties.append((PROPERTY, [v.to_data() for v in verdicts]))
    mode = request.config.stash.get(_MODE_KEY, "warn")
    unfired = [v for v in verdicts if v.never_fired]
    if mode == "ignore" or not unfired or not node.stash.get(_CALL_PASSED, False):
        return
    if mode == "error":
        lines = [v.message() for v in unfired]
        lines.append("(--edge-unfired-faults=error; use warn or ignore to allow it)")
        pytest.fail("\n".join(lines), pytrace=False)
    from pytest_edge.faults.verdict import UnfiredFaultWarning

    path, lineno, _ = node.reportinfo()
    for verdict in unfired:
        # Located at the test, not at this plugin: the warnings summary names the test.
        warnings.warn_explicit(
            UnfiredFaultWarning(verdict.message()), None, str(path), (lineno or 0) + 1
        )


@pytest.fixture
def edge_faults(request: pytest.FixtureRequest) -> Iterator[FaultInjector]:
    """Arm faults for this test (``disk_full``, ``io_error``, ``fail``, ``sqlite``, ...);
    every patch is undone at teardown, also when the test fails, and a fault that never fired
    is reported (``--edge-unfired-faults``)."""
    from pytest_edge.faults import FaultInjector
    from pytest_edge.faults.marker import marker_arguments

    layer = request.config.stash.get(_LAYER_KEY, "auto")
    injector = FaultInjector(seed=run_seed(request.config), label=request.node.nodeid, layer=layer)
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
    _judge(request, injector)


@pytest.fixture(autouse=True)
def _edge_fault_marks(request: pytest.FixtureRequest) -> None:
    """Arm ``@pytest.mark.edge_fault`` faults for tests that do not ask for ``edge_faults``."""
    if request.node.get_closest_marker("edge_fault") is not None:
        request.getfixturevalue("edge_faults")
