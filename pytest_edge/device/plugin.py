"""Simulated devices wired to pytest: ``--edge-profile``, the device markers, ``edge_device``.

The work is done by `EdgeRun` (the run's devices, `pytest_edge.device.session`), the marker
parsers (`pytest_edge.device.markers`) and the view and isolation code, which is imported
only when a test runs on a device or in an isolated child.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Generator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.device import markers as edge_markers
from pytest_edge.device.session import (
    EDGE_RUN_KEY,
    EdgeRun,
    MemoryRecord,
    PeakMemory,
    budget_failure,
    edge_run,
    host_profile,
    isolation_limits,
    split_names,
)
from pytest_edge.device.units import MIB
from pytest_edge.settings import MarkerSpec, Setting, add_settings, read_setting, register_markers

if TYPE_CHECKING:
    from pytest_edge.device.fixture import EdgeDevice
    from pytest_edge.device.simulated import SimulatedMachine
    from pytest_edge.device.view import DeviceView
    from pytest_edge.profiles.model import DeviceProfile
    from pytest_edge.report.model import Section
    from pytest_edge.scenarios.runner import Device, Isolate
    from pytest_edge.scenarios.schema import Scenario

DEVICES_KEY = pytest.StashKey["DevicePlugin"]()
_ITEM_PROFILE = pytest.StashKey["DeviceProfile | None"]()
_ITEM_STACK = pytest.StashKey[ExitStack]()
_ITEM_PEAK = pytest.StashKey[PeakMemory]()
_ITEM_MARKS = pytest.StashKey[edge_markers.EdgeMarks]()
#: Why the test's edge markers cannot be used: the test errors at setup with it (and alone).
_ITEM_MARK_PROBLEM = pytest.StashKey[str]()


def _speed_factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"--edge-host-speed-factor: {text!r} is not a number > 0 (1.0 = as fast as the "
            "catalog's reference CPU)"
        )
    return value


PROFILE = Setting(
    "--edge-profile",
    "simulate these edge devices (comma-separated names or aliases, e.g. raspberry-pi,jetson; "
    "`pytest-edge profiles` lists them).",
    metavar="NAME[,NAME...]",
    ini="edge_profile",
    env="PYTEST_EDGE_PROFILE",
)
PROFILE_FILES = Setting(
    "--edge-profile-file",
    "TOML file with more device profiles, in the catalog's form.",
    metavar="PATH",
    action="append",
    ini="edge_profile_files",
    ini_type="paths",
)
CPU_THROTTLE = Setting(
    "--edge-cpu-throttle",
    "duty-cycle isolated children (SIGSTOP/SIGCONT) toward the device's cpu_speed_factor: "
    "an approximation",
    action="store_true",
)
HOST_SPEED_FACTOR = Setting(
    "--edge-host-speed-factor",
    "this host's single-core speed relative to the catalog's reference CPU "
    "(used by --edge-cpu-throttle; default: assume 1.0)",
    metavar="F",
    parse=_speed_factor,
)
SETTINGS: tuple[Setting, ...] = (PROFILE, PROFILE_FILES, CPU_THROTTLE, HOST_SPEED_FACTOR)
MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec(
        "edge_profile",
        "(*names)",
        "run this test on these device profiles (first one for tests that do not use the "
        "edge_device fixture)",
    ),
    MarkerSpec(
        "edge_isolated",
        "(timeout=None)",
        "run the whole test in a child process held to the device's memory and cores",
    ),
    MarkerSpec(
        "edge_requires",
        "(memory_mb=None, cores=None, gpu=None)",
        "skip on devices that lack this",
    ),
    MarkerSpec(
        "edge_memory_budget",
        "(size)",
        "fail the test if its peak memory growth exceeds size, e.g. '300 MB'",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config, MARKERS)
    run = build_edge_run(config)
    config.stash[EDGE_RUN_KEY] = run
    plugin = config.stash[DEVICES_KEY] = DevicePlugin(run)
    config.pluginmanager.register(plugin, "edge-devices")


def build_edge_run(config: pytest.Config) -> EdgeRun:
    """The run's devices from the options; a bad profile name or file is a usage error."""
    setting, where = read_setting(config, PROFILE)
    files, _ = read_setting(config, PROFILE_FILES)
    names = split_names(setting or "")
    run = EdgeRun(
        requested=names,
        profiles=[],
        throttle=bool(config.getoption(CPU_THROTTLE.dest)),
        host_speed_factor=config.getoption(HOST_SPEED_FACTOR.dest),
        profile_files=tuple(str(f) for f in files),
    )
    if not names and not files:
        return run  # nothing asked for: the catalog is loaded only if a marker needs it
    from pytest_edge.profiles.catalog import ProfileError, UnknownProfileError

    try:
        catalog = run.catalog  # loads and checks the profile files
        run.profiles = [catalog.resolve(name) for name in names]
    except ProfileError as exc:
        raise pytest.UsageError(f"edge profile file: {exc}") from exc
    except UnknownProfileError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from exc
    return run


def _read_marks(run: EdgeRun, node: Any) -> edge_markers.EdgeMarks:
    # The catalog is loaded (TOML parsed) only when a marker names a profile.
    return edge_markers.read_marks(
        node.iter_markers(), node.nodeid, lambda name: run.catalog.resolve(name)
    )


def _keep_peak(item: pytest.Item, peak: PeakMemory) -> None:
    """Remember the highest peak seen for `item` (its own, or an isolated child's)."""
    previous = item.stash.get(_ITEM_PEAK, None)
    if previous is None or previous.mb < peak.mb:
        item.stash[_ITEM_PEAK] = peak


class DevicePlugin:
    """Simulated devices: the per-test view, isolation, markers and the memory report."""

    def __init__(self, run: EdgeRun) -> None:
        self.run = run
        self._host: DeviceProfile | None = None
        # One machine and view per profile, reused by every test on it (cheaper per test).
        self._views: dict[str, tuple[SimulatedMachine, DeviceView]] = {}

    def host(self) -> DeviceProfile:
        if self._host is None:
            self._host = host_profile()
        return self._host

    def marks(self, item: pytest.Item) -> edge_markers.EdgeMarks:
        """The test's edge markers, read once; bad ones read as none, their problem kept."""
        marks = item.stash.get(_ITEM_MARKS, None)
        if marks is None:
            try:
                marks = _read_marks(self.run, item)
            except (ValueError, LookupError) as exc:  # UnknownProfileError is a LookupError
                item.stash[_ITEM_MARK_PROBLEM] = str(exc).splitlines()[0]
                marks = edge_markers.EdgeMarks()
            item.stash[_ITEM_MARKS] = marks
        return marks

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return self.run.header_lines()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "edge_device" not in metafunc.fixturenames:
            return
        try:
            pinned = _read_marks(self.run, metafunc.definition).profiles
        except (ValueError, LookupError):
            return  # the test errors at setup, alone (pytest_runtest_setup)
        profiles = self.run.profiles if pinned is None else list(pinned)
        if profiles:
            metafunc.parametrize(
                "edge_device",
                [p.name for p in profiles],
                indirect=True,
                ids=[p.name for p in profiles],
            )

    def _item_profile(
        self, item: pytest.Item, marks: edge_markers.EdgeMarks
    ) -> DeviceProfile | None:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "edge_device" in callspec.params:
            return self.run.catalog.resolve(str(callspec.params["edge_device"]))
        if marks.profiles:
            return marks.profiles[0]
        return self.run.profiles[0] if self.run.profiles else None

    def _view(self, profile: DeviceProfile) -> tuple[SimulatedMachine, DeviceView]:
        cached = self._views.get(profile.name)
        if cached is None or cached[0].profile is not profile:
            from pytest_edge.device.simulated import SimulatedMachine
            from pytest_edge.device.view import DeviceView

            machine = SimulatedMachine(profile)
            cached = self._views[profile.name] = (machine, DeviceView(machine))
        return cached

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        marks = self.marks(item)
        if _ITEM_MARK_PROBLEM in item.stash:
            return (yield)  # the test errors in pytest_runtest_setup below
        profile = self._item_profile(item, marks)
        item.stash[_ITEM_PROFILE] = profile
        stack = ExitStack()
        item.stash[_ITEM_STACK] = stack
        if marks.requires is not None:
            missing = marks.requires.missing(profile or self.host())
            if missing is not None:
                # A mark (not pytest.skip here) so the skip points at the test and the other
                # plugins' setup wrappers still run.
                item.add_marker(pytest.mark.skip(reason=missing))
                return (yield)
        if profile is not None:
            from pytest_edge.machine import use_machine

            machine, view = self._view(profile)
            machine.reset()
            stack.enter_context(use_machine(machine))
            stack.enter_context(view)
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        __tracebackhide__ = True
        measure = (
            item.stash.get(_ITEM_PROFILE, None) is not None
            or self.marks(item).budget_mb is not None
        )
        if not measure:
            return (yield)
        from pytest_edge.device.probe import PeakTracker

        tracker = PeakTracker()
        tracker.start()
        try:
            return (yield)
        finally:
            _keep_peak(item, PeakMemory(tracker.peak_growth_bytes() / MIB, tracker.method, False))

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        __tracebackhide__ = True
        marks = self.marks(pyfuncitem)
        if not marks.isolated:
            return None
        from pytest_edge.device.isolated import run_isolated

        profile = pyfuncitem.stash.get(_ITEM_PROFILE, None)
        params = inspect.signature(pyfuncitem.obj).parameters
        kwargs = {name: pyfuncitem.funcargs[name] for name in params if name in pyfuncitem.funcargs}
        duty = self.run.duty_cycle(profile) if profile is not None else None

        def remember(peak: int) -> None:
            pyfuncitem.stash[_ITEM_PEAK] = PeakMemory(peak / MIB, "isolated child", True)

        module = pyfuncitem.module
        rewrite = None
        if module is not None and getattr(module, "__file__", None):
            rewrite = (module.__name__, str(module.__file__))
        limits = isolation_limits(profile, duty)
        run_isolated(pyfuncitem.obj, (), kwargs, limits, marks.isolated_timeout, remember, rewrite)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "call" or _ITEM_PEAK not in item.stash:
            return report
        peak = item.stash[_ITEM_PEAK]
        profile = item.stash.get(_ITEM_PROFILE, None)
        budget = self.marks(item).budget_mb
        device_budget = float(profile.usable_memory_mb) if profile is not None else None
        report.edge_memory = {  # type: ignore[attr-defined]
            "profile": profile.name if profile is not None else "host",
            "peak_mb": round(peak.mb, 3),
            "budget_mb": budget if budget is not None else device_budget,
            "method": peak.method,
            "isolated": peak.isolated,
        }
        failure = budget_failure(peak, budget, profile)
        if failure is not None and report.passed:
            report.outcome = "failed"
            report.longrepr = failure
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            stack = item.stash.get(_ITEM_STACK, None)
            if stack is not None:
                stack.close()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "edge_memory", None)
        if report.when != "call" or not isinstance(data, dict) or data.get("budget_mb") is None:
            return
        self.run.records.append(
            MemoryRecord(
                nodeid=report.nodeid,
                profile=str(data["profile"]),
                peak_mb=float(data["peak_mb"]),
                budget_mb=float(data["budget_mb"]),
                isolated=bool(data["isolated"]),
                method=str(data["method"]),
            )
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        notes = self.run.enforcement_notes()
        lines = self.run.summary_lines()
        if not notes and not lines:
            return
        terminalreporter.section("edge devices")
        if lines:
            terminalreporter.write_line(
                "highest peak memory growth per test, against the device budget "
                "(usable memory, or the test's edge_memory_budget):"
            )
            for line in lines:
                terminalreporter.write_line(line)
        for note in notes:
            terminalreporter.write_line(f"not enforced: {note}")


# --- pytest-edge's own hooks (hookspecs.py), answered for the other capabilities ---


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose edge markers cannot be used errors at setup, alone and in one line; a usage
    error would end the whole session, even with the test deselected by ``-k``.

    A plain hook, not in the class's setup wrapper: failing there would skip the inner
    wrappers (pytest's logging, capture) whose teardown expects their setup to have run.
    """
    item.config.stash[DEVICES_KEY].marks(item)
    problem = item.stash.get(_ITEM_MARK_PROBLEM, None)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def pytest_edge_report_sections(config: pytest.Config) -> list[Section]:
    from pytest_edge.machine import current_machine
    from pytest_edge.report.device import device_section

    return [device_section(current_machine(), edge_run(config))]


def pytest_edge_scenario_devices(config: pytest.Config, scenario: Scenario) -> list[Device]:
    from pytest_edge.scenarios.devices import devices_for

    return devices_for(scenario, edge_run(config))


def pytest_edge_scenario_isolate(config: pytest.Config) -> Isolate:
    from pytest_edge.scenarios.devices import isolate_on_device

    return isolate_on_device


def pytest_edge_peak_memory(
    item: pytest.Item, profile: DeviceProfile | None, peak_mb: float
) -> None:
    item.stash[_ITEM_PROFILE] = profile
    item.stash[_ITEM_PEAK] = PeakMemory(peak_mb, "isolated child", True)


@pytest.fixture
def edge_device(request: pytest.FixtureRequest) -> EdgeDevice:
    """The device this test runs on: `.profile`, `.run_isolated(fn, ...)`, memory pressure."""
    from pytest_edge.device.fixture import EdgeDevice

    run = edge_run(request.config)
    plugin = request.config.stash.get(DEVICES_KEY, None)
    profile = request.node.stash.get(_ITEM_PROFILE, None)
    node = request.node

    def remember(peak_mb: float) -> None:
        _keep_peak(node, PeakMemory(peak_mb, "isolated child", True))

    if profile is None:
        host = plugin.host() if plugin is not None else host_profile()
        return EdgeDevice(host, simulated=False, on_peak=remember)
    return EdgeDevice(profile, simulated=True, duty_cycle=run.duty_cycle(profile), on_peak=remember)
