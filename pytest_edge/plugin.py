"""pytest hooks of pytest-edge: options, ini keys, markers, thin fixtures, summaries.

Nothing here holds logic that could not be used without pytest: the work is done by the
classes in the feature packages; this module wires them to pytest.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.seed import SEED_HELP, new_seed, parse_seed

if TYPE_CHECKING:
    from pytest_edge.bench.corpus import CorpusFactory
    from pytest_edge.bench.session import BenchSession
    from pytest_edge.bench.throughput import EdgeBenchmark
    from pytest_edge.crash import CrashHarness
    from pytest_edge.faults import FaultInjector
    from pytest_edge.report.collector import ReportCollector

SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "edge", "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
    )
    group.addoption("--edge-seed", type=parse_seed, default=None, metavar="N", help=SEED_HELP)
    _add_device_options(parser, group)
    _add_bench_options(group)
    _add_faults_options(group)


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and "edge_seed" in workerinput:
        seed = int(workerinput["edge_seed"])
    else:
        chosen = config.getoption("edge_seed")
        seed = new_seed() if chosen is None else int(chosen)
    config.stash[SEED_KEY] = seed
    _configure_devices(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "edge-xdist-hooks")
    config.pluginmanager.register(_BenchPlugin(config), "edge-bench")
    config.pluginmanager.register(_FaultsPlugin(config), "edge-faults")
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


# --- simulated devices ---
from collections.abc import Generator  # noqa: E402
from contextlib import ExitStack  # noqa: E402

from pytest_edge.device import markers as edge_markers  # noqa: E402
from pytest_edge.device.fixture import EdgeDevice  # noqa: E402
from pytest_edge.device.isolated import IsolationLimits, run_isolated  # noqa: E402
from pytest_edge.device.probe import PeakTracker  # noqa: E402
from pytest_edge.device.session import (  # noqa: E402
    EdgeRun,
    MemoryRecord,
    choose_profile_setting,
    host_cpus,
    host_profile,
    split_names,
)
from pytest_edge.device.simulated import SimulatedMachine  # noqa: E402
from pytest_edge.device.view import DeviceView  # noqa: E402
from pytest_edge.machine import MIB, use_machine  # noqa: E402
from pytest_edge.profiles.catalog import (  # noqa: E402
    ProfileError,
    UnknownProfileError,
)
from pytest_edge.profiles.model import DeviceProfile  # noqa: E402

PROFILE_HELP = (
    "simulate these edge devices (comma-separated names or aliases, e.g. raspberry-pi,jetson; "
    "`pytest-edge profiles` lists them). Precedence: --edge-profile, then the "
    "PYTEST_EDGE_PROFILE environment variable, then the edge_profile ini key."
)
PROFILE_FILE_HELP = "TOML file with more device profiles, in the catalog's form (repeatable)"
EDGE_RUN_KEY = pytest.StashKey[EdgeRun]()
_ITEM_PROFILE = pytest.StashKey[DeviceProfile | None]()
_ITEM_STACK = pytest.StashKey[ExitStack]()
_ITEM_PEAK = pytest.StashKey[tuple[float, str, bool]]()
_ITEM_MARKS = pytest.StashKey[edge_markers.EdgeMarks]()
_MARKERS = (
    "edge_profile(*names): run this test on these device profiles (first one for tests "
    "that do not use the edge_device fixture)",
    "edge_isolated(timeout=None): run the whole test in a child process held to the device's "
    "memory and cores",
    "edge_requires(memory_mb=None, cores=None, gpu=None): skip on devices that lack this",
    "edge_memory_budget(size): fail the test if its peak memory growth exceeds size, e.g. '300 MB'",
)


def _add_device_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption("--edge-profile", default=None, metavar="NAME[,NAME...]", help=PROFILE_HELP)
    parser.addini("edge_profile", help=PROFILE_HELP, default="")
    group.addoption(
        "--edge-profile-file", action="append", default=[], metavar="PATH", help=PROFILE_FILE_HELP
    )
    parser.addini("edge_profile_files", type="paths", default=[], help=PROFILE_FILE_HELP)
    group.addoption(
        "--edge-cpu-throttle",
        action="store_true",
        help="duty-cycle isolated children (SIGSTOP/SIGCONT) toward the device's "
        "cpu_speed_factor: an approximation",
    )
    group.addoption(
        "--edge-host-speed-factor",
        type=_speed_factor,
        default=None,
        metavar="F",
        help="this host's single-core speed relative to the catalog's reference CPU "
        "(used by --edge-cpu-throttle; default: assume 1.0)",
    )


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


def _build_edge_run(config: pytest.Config) -> EdgeRun:
    ini_value = str(config.getini("edge_profile") or "")
    setting, where = choose_profile_setting(
        config.getoption("edge_profile"), os.environ.get("PYTEST_EDGE_PROFILE"), ini_value
    )
    files = [*config.getini("edge_profile_files"), *config.getoption("edge_profile_file")]
    names = split_names(setting or "")
    run = EdgeRun(
        requested=names,
        profiles=[],
        throttle=bool(config.getoption("edge_cpu_throttle")),
        host_speed_factor=config.getoption("edge_host_speed_factor"),
        profile_files=tuple(str(f) for f in files),
    )
    if not names and not files:
        return run  # nothing asked for: the catalog is loaded only if a marker needs it
    try:
        catalog = run.catalog  # loads and checks the profile files
        run.profiles = [catalog.resolve(name) for name in names]
    except ProfileError as exc:
        raise pytest.UsageError(f"edge profile file: {exc}") from exc
    except UnknownProfileError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from exc
    return run


def _read_marks(run: EdgeRun, node: Any) -> edge_markers.EdgeMarks:
    return edge_markers.read_marks(node.iter_markers(), node.nodeid, run.catalog.resolve)


class _DevicePlugin:
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
        marks = item.stash.get(_ITEM_MARKS, None)
        if marks is None:
            marks = item.stash[_ITEM_MARKS] = _read_marks(self.run, item)
        return marks

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return self.run.header_lines()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "edge_device" not in metafunc.fixturenames:
            return
        try:
            pinned = _read_marks(self.run, metafunc.definition).profiles
        except (ValueError, UnknownProfileError):
            return  # reported as a usage error in pytest_collection_modifyitems
        profiles = self.run.profiles if pinned is None else list(pinned)
        if profiles:
            metafunc.parametrize(
                "edge_device",
                [p.name for p in profiles],
                indirect=True,
                ids=[p.name for p in profiles],
            )

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            try:
                self.marks(item)
            except (ValueError, UnknownProfileError) as exc:
                raise pytest.UsageError(f"{exc}") from exc

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
            machine = SimulatedMachine(profile)
            cached = self._views[profile.name] = (machine, DeviceView(machine))
        return cached

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        marks = self.marks(item)
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
        tracker = PeakTracker()
        tracker.start()
        try:
            return (yield)
        finally:
            own = tracker.peak_growth_bytes() / MIB
            child = item.stash.get(_ITEM_PEAK, None)
            if child is None or child[0] < own:
                item.stash[_ITEM_PEAK] = (own, tracker.method, False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        __tracebackhide__ = True
        marks = self.marks(pyfuncitem)
        if not marks.isolated:
            return None
        timeout = marks.isolated_timeout
        profile = pyfuncitem.stash.get(_ITEM_PROFILE, None)
        params = inspect.signature(pyfuncitem.obj).parameters
        kwargs = {name: pyfuncitem.funcargs[name] for name in params if name in pyfuncitem.funcargs}
        if profile is None:
            limits = IsolationLimits(None, None)
        else:
            cpus = host_cpus()
            limits = IsolationLimits(
                memory_budget_bytes=profile.usable_memory_mb * MIB,
                cpus=cpus[: min(profile.cpu_cores, len(cpus))],
                duty_cycle=self.run.duty_cycle(profile),
                profile=profile,
            )

        def remember(peak: int) -> None:
            pyfuncitem.stash[_ITEM_PEAK] = (peak / MIB, "isolated child", True)

        module = pyfuncitem.module
        rewrite = None
        if module is not None and getattr(module, "__file__", None):
            rewrite = (module.__name__, str(module.__file__))
        run_isolated(pyfuncitem.obj, (), kwargs, limits, timeout, remember, rewrite)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "call" or _ITEM_PEAK not in item.stash:
            return report
        peak_mb, method, isolated = item.stash[_ITEM_PEAK]
        profile = item.stash.get(_ITEM_PROFILE, None)
        budget = self.marks(item).budget_mb
        device_budget = float(profile.usable_memory_mb) if profile is not None else None
        report.edge_memory = {  # type: ignore[attr-defined]
            "profile": profile.name if profile is not None else "host",
            "peak_mb": round(peak_mb, 3),
            "budget_mb": budget if budget is not None else device_budget,
            "method": method,
            "isolated": isolated,
        }
        if budget is not None and report.passed and peak_mb > budget:
            report.outcome = "failed"
            report.longrepr = (
                f"edge_memory_budget: peak memory growth {peak_mb:.1f} MB exceeds the budget "
                f"of {budget:g} MB (measured: {method}"
                f"{', device ' + profile.name if profile is not None else ''})"
            )
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


def _configure_devices(config: pytest.Config) -> None:
    run = _build_edge_run(config)
    config.stash[EDGE_RUN_KEY] = run
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(_DevicePlugin(run), "edge-devices")


@pytest.fixture
def edge_device(request: pytest.FixtureRequest) -> EdgeDevice:
    """The device this test runs on: `.profile`, `.run_isolated(fn, ...)`, memory pressure."""
    run = request.config.stash[EDGE_RUN_KEY]
    plugin = request.config.pluginmanager.get_plugin("edge-devices")
    profile = request.node.stash.get(_ITEM_PROFILE, None)
    node = request.node

    def remember(peak_mb: float) -> None:
        previous = node.stash.get(_ITEM_PEAK, None)
        if previous is None or previous[0] < peak_mb:
            node.stash[_ITEM_PEAK] = (peak_mb, "isolated child", True)

    if profile is None:
        host = plugin.host() if isinstance(plugin, _DevicePlugin) else host_profile()
        return EdgeDevice(host, simulated=False, on_peak=remember)
    return EdgeDevice(profile, simulated=True, duty_cycle=run.duty_cycle(profile), on_peak=remember)


# --- crash ---


@pytest.fixture
def edge_crash(pytestconfig: pytest.Config) -> CrashHarness:
    """A CrashHarness seeded with the run seed: ``edge_crash.run(workload, recover, ...)``.

    An explicit ``seed=`` argument to ``run`` wins; otherwise ``--edge-seed`` replays the run.
    """
    from pytest_edge.crash import CrashHarness

    return CrashHarness(seed=pytestconfig.stash[SEED_KEY])


# --- bench ---
# The run's edge report: features add sections with config.stash[REPORT_KEY].add(...).
REPORT_KEY: pytest.StashKey[ReportCollector] = pytest.StashKey()
BENCH_KEY: pytest.StashKey[BenchSession] = pytest.StashKey()
_WORKER_UNTIMED = "edge_bench_untimed"


def edge_report(config: pytest.Config) -> ReportCollector:
    """The run's report collector (created on first use, so any hook may add sections)."""
    from pytest_edge.report.collector import ReportCollector

    return config.stash.setdefault(REPORT_KEY, ReportCollector())


def _threshold_arg(text: str) -> float:
    import argparse

    from pytest_edge.bench.compare import parse_threshold

    try:
        return parse_threshold(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_bench_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--edge-compare",
        default=None,
        metavar="PATH|latest|history",
        help="compare this session's benchmarks with a pytest-benchmark JSON file, the latest "
        "saved run, or the spread of the last saved runs (see --edge-history-runs).",
    )
    group.addoption(
        "--edge-fail-on-regression",
        type=_threshold_arg,
        default=None,
        metavar="THRESHOLD",
        help="exit with status 1 when a benchmark is significantly slower by more than "
        "THRESHOLD ('10%%' or '0.10'); implies --edge-compare=latest when that is not given.",
    )
    group.addoption(
        "--edge-threshold",
        type=_threshold_arg,
        default=None,
        metavar="THRESHOLD",
        help="change below which a benchmark is 'same' in reports "
        "('10%%' or '0.10', default 10%%).",
    )
    group.addoption(
        "--edge-history-runs",
        type=int,
        default=5,
        metavar="N",
        help="saved runs that --edge-compare=history compares against (default 5).",
    )
    group.addoption(
        "--edge-report",
        default=None,
        metavar="PATH",
        help="write the session's edge report; the format follows the extension "
        "(.md, .json, .html). Markdown is also appended to $GITHUB_STEP_SUMMARY when set.",
    )


class _BenchPlugin:
    """Benchmarks: raw results per test, the comparison, the edge report and its summary."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_edge.bench.session import BenchSession

        self.config = config
        self.worker = hasattr(config, "workerinput")
        self.report_path: str | None = config.getoption("edge_report")
        if self.report_path is not None:
            from pytest_edge.report.write import format_for_path

            try:
                format_for_path(self.report_path)
            except ValueError as error:
                raise pytest.UsageError(f"--edge-report: {error}") from None
        fail_threshold: float | None = config.getoption("edge_fail_on_regression")
        threshold = fail_threshold or config.getoption("edge_threshold") or 0.10
        choice: str | None = config.getoption("edge_compare")
        if choice is None and fail_threshold is not None:
            choice = "latest"
        self.session = BenchSession(
            self._baseline(choice) if choice and not self.worker else None,
            threshold,
            fail_on_regression=fail_threshold is not None,
        )
        self.collector = edge_report(config)
        self.step_summary: Path | None = None
        self.saved = self._saved_runs() if self.report_path and not self.worker else []
        config.stash[BENCH_KEY] = self.session

    def _storage(self) -> tuple[Path, str]:
        """pytest-benchmark's storage folder and this machine's sub-folder name."""
        from pytest_benchmark.utils import get_machine_id

        from pytest_edge.bench.data import storage_path

        machine_id: str = get_machine_id()  # type: ignore[no-untyped-call]
        return storage_path(self.config.getoption("benchmark_storage", None)), machine_id

    def _baseline(self, choice: str) -> Any:
        from pytest_edge.bench.data import BadBenchmarkInput
        from pytest_edge.bench.session import resolve_baseline

        runs = self.config.getoption("edge_history_runs")
        if runs < 1:
            raise pytest.UsageError(f"--edge-history-runs={runs}: must be 1 or more")
        try:
            return resolve_baseline(choice, *self._storage(), runs)
        except BadBenchmarkInput as error:
            raise pytest.UsageError(f"--edge-compare={choice}: {error}") from None

    def _saved_runs(self) -> list[Path]:
        """Runs saved before this session (listed now: an autosave at the end adds one)."""
        from pytest_edge.bench.data import BadBenchmarkInput, saved_runs

        try:
            return saved_runs(*self._storage())
        except BadBenchmarkInput:
            return []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from pytest_edge.bench.throughput import DEFAULT_MIN_ROUNDS

        rounds = max(DEFAULT_MIN_ROUNDS, int(self.config.getoption("benchmark_min_rounds", 0)))
        for item in items:
            if "edge_benchmark" not in getattr(item, "fixturenames", ()):
                continue
            closest = item.get_closest_marker("benchmark")
            options = {"min_rounds": rounds, **(closest.kwargs if closest else {})}
            item.add_marker(pytest.mark.benchmark(**options), append=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # Before fixtures are finalized; not a wrapper of the call, so tracebacks of failing
        # tests (and of other plugins' call hooks) are left as they are.
        self._collect(item)

    def _collect(self, item: pytest.Item) -> None:
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if fixture is None:
            return
        if not getattr(fixture, "enabled", False):
            if self.worker or self.config.pluginmanager.hasplugin("dsession"):
                self.session.untimed += 1
            return
        meta = getattr(fixture, "stats", None)
        if meta and not getattr(fixture, "has_error", False):
            from pytest_edge.bench.throughput import keep_samples

            # Raw samples go into extra_info, which pytest-benchmark saves with every run.
            keep_samples(fixture.extra_info, list(meta.stats.data))
            self.session.add_result(meta.as_dict(include_data=True))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {})
        self.session.untimed += int(output.get(_WORKER_UNTIMED, 0))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker:
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput", {})
            workeroutput[_WORKER_UNTIMED] = self.session.untimed
            return
        from pytest_edge.bench.report import benchmark_section

        bench = self.session
        machine_info = self._machine_info()
        bench.finish(machine_info)
        if bench.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        charts = bench.history_charts(
            self.saved, self.config.getoption("edge_history_runs"), machine_info
        )
        if bench.throughputs or bench.comparison or bench.messages or charts:
            self.collector.add(
                benchmark_section(bench.throughputs, bench.comparison, bench.messages, charts)
            )
        if self.report_path is None and bench.baseline is None:
            return
        from pytest_edge.machine import current_machine
        from pytest_edge.report.device import device_section
        from pytest_edge.report.write import append_step_summary, write_report

        self.collector.add(
            device_section(current_machine(), self.config.stash.get(EDGE_RUN_KEY, None))
        )
        report = self.collector.build()
        if self.report_path is not None:
            write_report(report, self.report_path)
        self.step_summary = append_step_summary(report)

    def _machine_info(self) -> dict[str, Any]:
        hook = getattr(self.config.hook, "pytest_benchmark_generate_machine_info", None)
        if hook is None:
            return {}
        info: dict[str, Any] = hook(config=self.config)
        return info

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker:
            return
        bench = self.session
        if bench.throughputs or bench.comparison or bench.messages:
            self._benchmark_summary(terminalreporter)
        if self.report_path is not None:
            terminalreporter.line(f"edge: report written to {self.report_path}")
        if self.step_summary is not None:
            terminalreporter.line(f"edge: Markdown report appended to {self.step_summary}")

    def _benchmark_summary(self, terminalreporter: Any) -> None:
        from pytest_edge.bench.report import comparison_summary, comparison_table, throughput_blocks
        from pytest_edge.report.model import Table
        from pytest_edge.report.text import render_table

        bench = self.session
        terminalreporter.section("edge benchmarks")
        for message in bench.messages:
            terminalreporter.line(f"edge: {message}", yellow=True)
        if bench.throughputs:
            table = throughput_blocks(bench.throughputs)[0]
            assert isinstance(table, Table)
            for line in render_table(table):
                terminalreporter.line(line)
        if bench.comparison is not None:
            terminalreporter.line("")
            terminalreporter.line(comparison_summary(bench.comparison))
            for warning in bench.comparison.warnings:
                terminalreporter.line(f"WARNING: {warning}", yellow=True)
            for line in render_table(comparison_table(bench.comparison)):
                terminalreporter.line(line)
            if bench.failed:
                terminalreporter.line(
                    f"edge: {len(bench.comparison.regressions)} benchmark(s) regressed beyond "
                    f"{bench.threshold:.0%} (--edge-fail-on-regression): exit status 1",
                    red=True,
                )


@pytest.fixture
def edge_benchmark(benchmark: Any, pytestconfig: pytest.Config) -> EdgeBenchmark:
    """pytest-benchmark's ``benchmark`` plus throughput, peak memory and device estimates."""
    from pytest_edge.bench.throughput import EdgeBenchmark

    host_factor: float | None = pytestconfig.getoption("edge_host_speed_factor", None)
    return EdgeBenchmark(benchmark, pytestconfig.stash[BENCH_KEY].add_throughput, host_factor)


@pytest.fixture(scope="session")
def edge_corpus() -> CorpusFactory:
    """Seeded faker corpora: ``edge_corpus("documents", count=100)`` or ``mb=5`` (seed 0)."""
    from pytest_edge.bench.corpus import CorpusFactory

    return CorpusFactory()


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


# --- scenarios ---
class _ScenarioPlugin:
    """Collects scenario TOML files as items; the summary table, verdict and report section."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_edge.scenarios.devices import isolate_on_device

        config.addinivalue_line(
            "markers", "edge_scenario: an item collected from a scenario TOML file (pytest-edge)"
        )
        self.config = config
        self.isolate = isolate_on_device
        self.records: list[Any] = []
        edge_report(config).add_provider(self._report_section)

    def devices_for(self, scenario: Any) -> list[Any]:
        """Raises ScenarioError for an unknown ``[scenario] profile``."""
        from pytest_edge.scenarios.devices import devices_for

        return devices_for(scenario, self.config.stash[EDGE_RUN_KEY])

    @staticmethod
    def note_peak(item: pytest.Item, profile: DeviceProfile | None, peak_mb: float) -> None:
        """The devices summary lists the workload child's peak, not the pytest process's."""
        item.stash[_ITEM_PROFILE] = profile
        item.stash[_ITEM_PEAK] = (peak_mb, "isolated child", True)

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

    def _report_section(self) -> Any:
        if not self.records:
            return None
        from pytest_edge.scenarios.devices import devices_of_records
        from pytest_edge.scenarios.report import scenarios_section

        run = self.config.stash[EDGE_RUN_KEY]
        return scenarios_section(self.records, devices_of_records(self.records, run))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        from pytest_edge.scenarios.record import COLUMNS, ESTIMATE_NOTE, render_rows, rows, verdict

        terminalreporter.section("edge scenarios")
        for line in render_rows(COLUMNS, rows(self.records)):
            terminalreporter.line(line)
        if any(r.projected_throughput is not None for r in self.records):
            terminalreporter.line(f"estimate: {ESTIMATE_NOTE}")
        for record in self.records:
            for reason in record.reasons:
                terminalreporter.line(
                    f"{record.name} on {record.profile}: {reason.splitlines()[0]}", red=True
                )
        line = verdict(self.records)
        terminalreporter.line(
            f"edge scenarios verdict: {line}",
            bold=True,
            red=line.startswith("FAIL"),
            green=line.startswith("PASS"),
        )
