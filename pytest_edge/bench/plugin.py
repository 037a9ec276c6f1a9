"""Benchmarks wired to pytest: ``edge_benchmark``, ``edge_corpus``, ``--edge-compare`` and friends.

The bookkeeping is a `BenchSession` (plain Python), made on first use: a run in which no
benchmark ran and no comparison was asked for imports none of the benchmark code and collects
no machine info. Every timed benchmark test is bracketed by the calibration set
(`pytest_edge.bench.calibration`) unless ``--edge-calibration=off``. The benchmark section of
the edge report goes through the ``pytest_edge_report_sections`` hook; the report capability
writes the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.device.session import edge_run
from pytest_edge.settings import (
    MarkerSpec,
    Setting,
    add_settings,
    one_of,
    read_setting,
    register_markers,
)

if TYPE_CHECKING:
    from pytest_edge.bench.calibration import Bracket, Calibrator
    from pytest_edge.bench.corpus import CorpusFactory
    from pytest_edge.bench.session import Baseline, BenchSession
    from pytest_edge.bench.throughput import EdgeBenchmark
    from pytest_edge.report.model import Section

BENCH_KEY = pytest.StashKey["BenchPlugin"]()
_WORKER_UNTIMED = "edge_bench_untimed"


def _threshold(text: str) -> float:
    """`threshold_type`, imported only when a threshold is given (the comparison loads numpy)."""
    from pytest_edge.bench.compare import threshold_type

    return threshold_type(text)


def _on_off(text: str) -> str:
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"--edge-calibration={text}: must be 'on' or 'off'")
    return value


def _statistic(text: str) -> str:
    from pytest_edge.bench.stats import STATISTICS

    return one_of("--edge-statistic", text, STATISTICS)


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(
        f"--edge-fail-on-inconclusive: {text!r} is not one of 1/true/yes/on or 0/false/no/off"
    )


def _history_runs(text: str) -> int:
    try:
        runs = int(text)
    except ValueError:
        runs = 0
    if runs < 1:
        raise argparse.ArgumentTypeError(
            f"--edge-history-runs={text}: must be 1 or more (saved runs to compare against)"
        )
    return runs


COMPARE = Setting(
    "--edge-compare",
    "compare this session's benchmarks with a pytest-benchmark JSON file, the latest saved run, "
    "or the spread of the last saved runs (see --edge-history-runs).",
    metavar="PATH|latest|history",
)
FAIL_ON_REGRESSION = Setting(
    "--edge-fail-on-regression",
    "exit with status 1 when a benchmark is significantly slower by more than THRESHOLD "
    "('10%' or '0.10'); implies --edge-compare=latest when that is not given.",
    metavar="THRESHOLD",
    parse=_threshold,
)
THRESHOLD = Setting(
    "--edge-threshold",
    "change below which a benchmark is 'same' in reports ('10%' or '0.10', default 10%).",
    metavar="THRESHOLD",
    parse=_threshold,
)
HISTORY_RUNS = Setting(
    "--edge-history-runs",
    "saved runs that --edge-compare=history compares against (default 5).",
    metavar="N",
    default=5,
    parse=_history_runs,
)
INSTRUCTIONS = Setting(
    "--edge-instructions",
    "count the instructions of every edge_benchmark.throughput call with valgrind's callgrind "
    "and make them its verdict metric, as the edge_instructions marker does for one test "
    "(pytest-edge ab --metric instructions sets it); where valgrind is missing the count says "
    "so and the verdict stays on wall time.",
    action="store_true",
    env="PYTEST_EDGE_INSTRUCTIONS",
)
FAIL_ON_INCONCLUSIVE = Setting(
    "--edge-fail-on-inconclusive",
    "also fail (exit status 1) when a comparison is inconclusive: the drift between runs "
    "was too large to tell a change of the threshold's size (default: report it and pass).",
    action="store_true",
    parse=_yes_no,
    ini="edge_fail_on_inconclusive",
    ini_type="bool",
    env="PYTEST_EDGE_FAIL_ON_INCONCLUSIVE",
)
CALIBRATION = Setting(
    "--edge-calibration",
    "time the calibration set (a CPU loop and an fsync loop, a few ms) just before and after "
    "every timed benchmark test and save it with the benchmark, so that comparisons see how "
    "far the machine drifted: on (default) or off.",
    metavar="on|off",
    parse=_on_off,
    ini="edge_calibration",
    env="PYTEST_EDGE_CALIBRATION",
)
STATISTIC = Setting(
    "--edge-statistic",
    "each run's time that comparisons use: min (default; other processes only add time, so "
    "the fastest round moves least between runs), p10, or median (the typical round, "
    "contention included).",
    metavar="min|p10|median",
    parse=_statistic,
    ini="edge_statistic",
    env="PYTEST_EDGE_STATISTIC",
)
SETTINGS: tuple[Setting, ...] = (
    COMPARE,
    FAIL_ON_REGRESSION,
    FAIL_ON_INCONCLUSIVE,
    THRESHOLD,
    HISTORY_RUNS,
    STATISTIC,
    CALIBRATION,
    INSTRUCTIONS,
)
MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec(
        "edge_instructions",
        "",
        "judge this CPU-bound benchmark on its instruction count (valgrind callgrind; "
        "deterministic) in pytest-edge ab, wall time beside it; wall time where valgrind is "
        "missing, and said so",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config, MARKERS)
    plugin = config.stash[BENCH_KEY] = BenchPlugin(config)
    config.pluginmanager.register(plugin, "edge-bench")


class BenchPlugin:
    """The run's benchmarks: raw results per test, the comparison, summary and report section."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.worker = hasattr(config, "workerinput")
        self._session: BenchSession | None = None
        self.saved: list[Path] | None = None  # runs saved before this session's autosave
        self.machine_info: dict[str, Any] = {}
        fail_threshold: float | None = config.getoption(FAIL_ON_REGRESSION.dest)
        self.threshold = fail_threshold or config.getoption(THRESHOLD.dest) or 0.10
        self.fail_on_regression = fail_threshold is not None
        choice: str | None = config.getoption(COMPARE.dest)
        if choice is None and fail_threshold is not None:
            choice = "latest"
        self.choice = None if self.worker else choice
        self.fail_on_inconclusive = bool(read_setting(config, FAIL_ON_INCONCLUSIVE)[0])
        self.statistic: str = read_setting(config, STATISTIC)[0] or "min"
        self.calibrate = read_setting(config, CALIBRATION)[0] != "off" and not self.worker
        self._calibrator: Calibrator | None = None
        self._brackets: dict[str, Bracket] = {}
        if self.choice:
            self.session()  # a bad --edge-compare is a usage error before any test runs

    def session(self) -> BenchSession:
        """This run's `BenchSession`, made (and the baseline read) on first use."""
        if self._session is None:
            from pytest_edge.bench.session import BenchSession

            baseline = self._baseline(self.choice) if self.choice else None
            self._session = BenchSession(
                baseline,
                self.threshold,
                fail_on_regression=self.fail_on_regression,
                fail_on_inconclusive=self.fail_on_inconclusive,
                statistic=self.statistic,
            )
        return self._session

    def _storage(self) -> tuple[Path, str]:
        """pytest-benchmark's storage folder and this machine's sub-folder name."""
        from pytest_benchmark.utils import get_machine_id

        from pytest_edge.bench.data import storage_path

        machine_id: str = get_machine_id()  # type: ignore[no-untyped-call]
        return storage_path(self.config.getoption("benchmark_storage", None)), machine_id

    def _baseline(self, choice: str) -> Baseline:
        from pytest_edge.bench.data import BadBenchmarkInput
        from pytest_edge.bench.session import resolve_baseline

        runs: int = self.config.getoption(HISTORY_RUNS.dest)
        try:
            return resolve_baseline(choice, *self._storage(), runs)
        except BadBenchmarkInput as error:
            raise pytest.UsageError(f"--edge-compare={choice}: {error}") from None

    def _list_saved_runs(self) -> None:
        """Runs saved before this session (listed before an autosave at the end adds one)."""
        from pytest_edge.bench.data import BadBenchmarkInput, saved_runs

        try:
            self.saved = saved_runs(*self._storage())
        except BadBenchmarkInput:
            self.saved = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rounds: int | None = None
        for item in items:
            if "edge_benchmark" not in getattr(item, "fixturenames", ()):
                continue
            if rounds is None:
                from pytest_edge.bench.throughput import DEFAULT_MIN_ROUNDS

                minimum = int(self.config.getoption("benchmark_min_rounds", 0))
                rounds = max(DEFAULT_MIN_ROUNDS, minimum)
            closest = item.get_closest_marker("benchmark")
            options = {"min_rounds": rounds, **(closest.kwargs if closest else {})}
            item.add_marker(pytest.mark.benchmark(**options), append=False)

    def _timed(self, item: pytest.Item) -> Any:
        """The test's pytest-benchmark fixture when it will really be timed, else None."""
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if fixture is None or not getattr(fixture, "enabled", False):
            return None
        return fixture

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        # The calibration point just before the test, after its fixtures are set up.
        if self.calibrate and self._timed(item) is not None:
            from pytest_edge.bench.calibration import Bracket, Calibrator

            if self._calibrator is None:
                self._calibrator = Calibrator()
            self._brackets[item.nodeid] = Bracket.start(self._calibrator)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # Before fixtures are finalized; not a wrapper of the call, so tracebacks of failing
        # tests (and of other plugins' call hooks) are left as they are.
        bracket = self._brackets.pop(item.nodeid, None)
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if bracket is not None and self._calibrator is not None and fixture is not None:
            calibration = bracket.finish(self._calibrator)
            block = fixture.extra_info.setdefault("edge", {})
            if isinstance(block, dict):
                block["calibration"] = calibration.to_json()
        if fixture is not None:
            self._collect(fixture)

    def _collect(self, fixture: Any) -> None:
        if not getattr(fixture, "enabled", False):
            if self.worker or self.config.pluginmanager.hasplugin("dsession"):
                self.session().untimed += 1
            return
        meta = getattr(fixture, "stats", None)
        if meta and not getattr(fixture, "has_error", False):
            from pytest_edge.bench.throughput import keep_samples

            if self.saved is None and not self.worker:
                self._list_saved_runs()
            # Raw samples go into extra_info, which pytest-benchmark saves with every run.
            keep_samples(fixture.extra_info, list(meta.stats.data))
            self.session().add_result(meta.as_dict(include_data=True))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        untimed = int(getattr(node, "workeroutput", {}).get(_WORKER_UNTIMED, 0))
        if untimed:
            self.session().untimed += untimed

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._calibrator is not None:
            self._calibrator.close()
        bench = self._session
        if self.worker:
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput", {})
            workeroutput[_WORKER_UNTIMED] = bench.untimed if bench is not None else 0
            return
        if bench is None:
            return  # no benchmark ran and no comparison was asked for
        if bench.results:
            self.machine_info = self._machine_info()
        bench.finish(self.machine_info)
        if (bench.failed or bench.failed_inconclusive) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _machine_info(self) -> dict[str, Any]:
        hook = getattr(self.config.hook, "pytest_benchmark_generate_machine_info", None)
        if hook is None:
            return {}
        info: dict[str, Any] = hook(config=self.config)
        return info

    def pytest_edge_report_wanted(self) -> bool | None:
        """A comparison goes to the GitHub step summary even without ``--edge-report``."""
        bench = self._session
        return True if bench is not None and bench.baseline is not None else None

    def pytest_edge_report_sections(self) -> list[Section]:
        bench = self._session
        if bench is None:
            return []
        from pytest_edge.bench.report import benchmark_section

        runs: int = self.config.getoption(HISTORY_RUNS.dest)
        charts = bench.history_charts(self.saved or [], runs, self.machine_info)
        if not (bench.results or bench.throughputs or bench.comparison or bench.messages or charts):
            return []
        return [
            benchmark_section(
                bench.throughputs, bench.comparison, bench.messages, charts, bench.results
            )
        ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        bench = self._session
        if self.worker or bench is None:
            return
        if not (bench.throughputs or bench.comparison or bench.messages):
            return
        from pytest_edge.bench.report import comparison_summary, comparison_table, throughput_blocks
        from pytest_edge.report.model import Table
        from pytest_edge.report.text import render_table

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
            elif bench.failed_inconclusive:
                terminalreporter.line(
                    f"edge: {len(bench.comparison.inconclusive)} benchmark comparison(s) "
                    "inconclusive (--edge-fail-on-inconclusive): exit status 1",
                    red=True,
                )
            elif bench.comparison.inconclusive:
                terminalreporter.line(
                    f"edge: {len(bench.comparison.inconclusive)} benchmark comparison(s) "
                    "inconclusive: drift between the runs hid a change of the threshold's size "
                    "(not failed; --edge-fail-on-inconclusive fails it). Compare against a "
                    "history (--edge-compare=history) or use `pytest-edge ab`.",
                    yellow=True,
                )


@pytest.fixture
def edge_benchmark(
    benchmark: Any, pytestconfig: pytest.Config, request: pytest.FixtureRequest
) -> EdgeBenchmark:
    """pytest-benchmark's ``benchmark`` plus throughput, peak memory and device estimates."""
    from pytest_edge.bench.throughput import EdgeBenchmark

    session = pytestconfig.stash[BENCH_KEY].session()
    judged = request.node.get_closest_marker("edge_instructions") is not None
    return EdgeBenchmark(
        benchmark,
        session.add_throughput,
        edge_run(pytestconfig).host_speed_factor,
        instruction_verdict=judged or bool(read_setting(pytestconfig, INSTRUCTIONS)[0]),
    )


@pytest.fixture(scope="session")
def edge_corpus() -> CorpusFactory:
    """Seeded faker corpora: ``edge_corpus("documents", count=100)`` or ``mb=5`` (seed 0)."""
    from pytest_edge.bench.corpus import CorpusFactory

    return CorpusFactory()
