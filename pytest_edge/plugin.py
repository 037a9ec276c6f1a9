"""pytest hooks of pytest-edge: options, ini keys, markers, thin fixtures, summaries.

Nothing here holds logic that could not be used without pytest: the work is done by the
classes in the feature packages; this module wires them to pytest.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.seed import SEED_HELP, new_seed, parse_seed

if TYPE_CHECKING:
    from pytest_edge.bench.corpus import CorpusFactory
    from pytest_edge.bench.session import BenchSession
    from pytest_edge.bench.throughput import EdgeBenchmark
    from pytest_edge.report.collector import ReportCollector

SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "edge", "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
    )
    group.addoption("--edge-seed", type=parse_seed, default=None, metavar="N", help=SEED_HELP)
    _add_bench_options(group)


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
    config.pluginmanager.register(_BenchPlugin(config), "edge-bench")


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
        "THRESHOLD ('10%' or '0.10'); implies --edge-compare=latest when that is not given.",
    )
    group.addoption(
        "--edge-threshold",
        type=_threshold_arg,
        default=None,
        metavar="THRESHOLD",
        help="change below which a benchmark is 'same' in reports ('10%' or '0.10', default 10%).",
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

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
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

        self.collector.add(device_section(current_machine()))
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
        from pytest_edge.bench.report import comparison_summary, comparison_table, throughput_blocks
        from pytest_edge.report.model import Table
        from pytest_edge.report.text import render_table

        bench = self.session
        if not (bench.throughputs or bench.comparison or bench.messages or self.report_path):
            return
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
        if self.report_path is not None:
            terminalreporter.line(f"edge: report written to {self.report_path}")
        if self.step_summary is not None:
            terminalreporter.line(f"edge: Markdown report appended to {self.step_summary}")


@pytest.fixture
def edge_benchmark(benchmark: Any, pytestconfig: pytest.Config) -> EdgeBenchmark:
    """pytest-benchmark's ``benchmark`` plus throughput, peak memory and device estimates."""
    from pytest_edge.bench.throughput import EdgeBenchmark

    return EdgeBenchmark(benchmark, sink=pytestconfig.stash[BENCH_KEY].add_throughput)


@pytest.fixture(scope="session")
def edge_corpus() -> CorpusFactory:
    """Seeded faker corpora: ``edge_corpus("documents", count=100)`` or ``mb=5`` (seed 0)."""
    from pytest_edge.bench.corpus import CorpusFactory

    return CorpusFactory()
