"""One pytest session's benchmark bookkeeping, usable without pytest.

Holds the results seen in this session, resolves the baseline chosen with ``--edge-compare``
(a file, ``latest`` or ``history`` in pytest-benchmark's storage), and compares at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_edge.bench.compare import (
    DEFAULT_HISTORY_RUNS,
    DEFAULT_STATISTIC,
    DEFAULT_THRESHOLD,
    Comparison,
    compare_history,
    compare_runs,
)
from pytest_edge.bench.data import (
    BadBenchmarkInput,
    BenchmarkResult,
    BenchmarkRun,
    load_history,
    load_run,
    saved_runs,
)
from pytest_edge.bench.throughput import ThroughputResult
from pytest_edge.report.model import Block

XDIST_MESSAGE = (
    "{count} benchmark test(s) ran untimed: pytest-benchmark disables itself under "
    "pytest-xdist. Run benchmarks without xdist: `pytest -p no:xdist tests/benchmarks` "
    "or `pytest -n 0`."
)
FIRST_RUN_MESSAGE = (
    "--edge-compare={mode}: no saved benchmark run in {storage} yet, nothing to compare "
    "(a first CI run?). Save runs with --benchmark-autosave; this run is not failed for it."
)


@dataclass
class Baseline:
    """What the current run is compared with: one run, a history of runs, or nothing yet."""

    mode: str  # "file" | "latest" | "history"
    runs: list[BenchmarkRun] = field(default_factory=list)
    message: str | None = None


def resolve_baseline(
    choice: str, storage: Path, machine_id: str | None, history_runs: int = DEFAULT_HISTORY_RUNS
) -> Baseline:
    """``PATH``, ``latest`` or ``history``; a bad file raises `BadBenchmarkInput`."""
    if choice in ("latest", "history"):
        files = saved_runs(storage, machine_id)
        if not files:
            return Baseline(choice, message=FIRST_RUN_MESSAGE.format(mode=choice, storage=storage))
        count = 1 if choice == "latest" else history_runs
        return Baseline(choice, load_history(files, count))
    return Baseline("file", [load_run(choice)])


class BenchSession:
    """Collects this session's benchmarks and compares them with the baseline at the end."""

    def __init__(
        self,
        baseline: Baseline | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        fail_on_regression: bool = False,
        fail_on_inconclusive: bool = False,
        statistic: str = DEFAULT_STATISTIC,
    ) -> None:
        self.statistic = statistic
        self.baseline = baseline
        self.threshold = threshold
        self.fail_on_regression = fail_on_regression
        self.fail_on_inconclusive = fail_on_inconclusive
        self.results: list[BenchmarkResult] = []
        self.throughputs: list[ThroughputResult] = []
        self.untimed = 0
        self.messages: list[str] = []
        self.comparison: Comparison | None = None

    def add_throughput(self, result: ThroughputResult) -> None:
        self.throughputs.append(result)

    def add_result(self, entry: Mapping[str, Any]) -> None:
        """One benchmark in pytest-benchmark's JSON shape (``Metadata.as_dict``)."""
        from pytest_edge.bench.data import result_from_json

        try:
            self.results.append(result_from_json(entry, "this session"))
        except BadBenchmarkInput as error:
            self.messages.append(f"not compared: {error}")

    def current_run(self, machine_info: Mapping[str, Any] | None = None) -> BenchmarkRun:
        return BenchmarkRun("this session", tuple(self.results), machine_info or {})

    def finish(self, machine_info: Mapping[str, Any] | None = None) -> Comparison | None:
        """Compare (when a baseline was chosen); messages say why nothing was compared."""
        if self.untimed:
            self.messages.append(XDIST_MESSAGE.format(count=self.untimed))
        baseline = self.baseline
        if baseline is None:
            return None
        if baseline.message:
            self.messages.append(baseline.message)
            return None
        if not self.results:
            self.messages.append(
                "--edge-compare: no benchmark was timed in this session, nothing to compare"
            )
            return None
        current = self.current_run(machine_info)
        try:
            if baseline.mode == "history":
                self.comparison = compare_history(
                    baseline.runs, current, self.threshold, statistic=self.statistic
                )
            else:
                self.comparison = compare_runs(
                    baseline.runs[0], current, self.threshold, statistic=self.statistic
                )
        except BadBenchmarkInput as error:
            self.messages.append(f"--edge-compare: {error}")
            return None
        return self.comparison

    def history_charts(
        self, saved: Sequence[Path], runs: int, machine_info: Mapping[str, Any] | None = None
    ) -> list[Block]:
        """Median-over-saved-runs charts for the report (unreadable saved files are skipped).

        In history mode the comparison already carries them.
        """
        from pytest_edge.bench.report import history_charts

        if not self.results or (self.baseline is not None and self.baseline.mode == "history"):
            return []
        loaded = []
        for path in list(saved)[-runs:]:
            try:
                loaded.append(load_run(path))
            except BadBenchmarkInput:
                continue
        return history_charts(loaded, self.current_run(machine_info))

    @property
    def failed(self) -> bool:
        return bool(self.fail_on_regression and self.comparison and self.comparison.regressions)

    @property
    def failed_inconclusive(self) -> bool:
        """--edge-fail-on-inconclusive and an inconclusive comparison (and no regression)."""
        comparison = self.comparison
        return bool(
            self.fail_on_inconclusive
            and comparison
            and comparison.inconclusive
            and not comparison.regressions
        )
