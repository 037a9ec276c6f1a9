"""`EdgeBenchmark`: throughput, peak memory and a device projection over pytest-benchmark.

pytest-benchmark does the timing (its fixture, calibration, rounds, storage); this class adds
what edge software needs to read the result: items per second in the user's unit, the peak
memory of the measured code (one extra, untimed call under tracemalloc), the active device
profile, and a projected throughput on that device labelled as an estimate.
"""

from __future__ import annotations

import math
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import median
from typing import Any, Protocol, TypeVar

import numpy as np

from pytest_edge.bench.data import EDGE_KEY
from pytest_edge.device.speed import PROJECTION, device_speed_factor
from pytest_edge.errors import EdgeInputError
from pytest_edge.machine import current_machine
from pytest_edge.schema import is_number

T = TypeVar("T")

# Rounds and p are chosen together: 20 rounds a side let the exact rank test reach
# p = 2/C(40,20) ~ 1.4e-11, far below compare.DEFAULT_ALPHA, so a real change can be
# significant (tests/bench/test_defaults.py checks this).
DEFAULT_MIN_ROUNDS = 20
# Raw samples kept in extra_info: enough for the rank test, small enough for the JSON.
MAX_KEPT_SAMPLES = 5000
MEMORY_METHOD = (
    "tracemalloc peak of one extra untimed call (Python heap incl. numpy buffers; "
    "memory allocated inside C libraries such as SQLite is not counted)"
)
ESTIMATE_NOTE = PROJECTION.removeprefix("an ")  # reads "device throughput is an estimate..."


class BenchmarkFixture(Protocol):
    """The parts of pytest-benchmark's ``benchmark`` fixture that pytest-edge uses."""

    name: str
    fullname: str
    group: str | None
    extra_info: dict[str, Any]
    stats: Any

    @property
    def enabled(self) -> bool: ...

    def __call__(
        self, function_to_benchmark: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any: ...


@dataclass(frozen=True)
class ThroughputResult:
    """What one `EdgeBenchmark.throughput` call measured (times in seconds per call)."""

    fullname: str
    group: str | None
    items: float
    unit: str
    timed: bool
    median_seconds: float | None = None
    rounds: int = 0
    peak_memory_bytes: int | None = None
    profile: str | None = None
    device_items_per_second: float | None = None
    instructions_per_call: float | None = None

    @property
    def items_per_second(self) -> float | None:
        if not self.median_seconds:
            return None
        return self.items / self.median_seconds


class ResultSink(Protocol):
    def __call__(self, result: ThroughputResult) -> None: ...


def peak_memory_of(function: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, int]:
    """Call once under tracemalloc; return the result and the peak bytes above the start."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = function(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if started_here:
            tracemalloc.stop()
    return result, max(0, peak - baseline)


def _kept_samples(data: list[float]) -> list[float]:
    if len(data) <= MAX_KEPT_SAMPLES:
        return list(data)
    picks = np.sort(np.random.default_rng(0).choice(len(data), MAX_KEPT_SAMPLES, replace=False))
    return [data[int(i)] for i in picks]


def keep_samples(extra_info: dict[str, Any], data: list[float]) -> None:
    """Store the raw per-round times under ``extra_info["edge"]["samples"]`` (capped)."""
    block = extra_info.setdefault(EDGE_KEY, {})
    if isinstance(block, dict) and "samples" not in block and data:
        block["samples"] = _kept_samples(data)
        block["samples_total"] = len(data)


def _validate(items: object, unit: object) -> tuple[float, str]:
    if not is_number(items) or not math.isfinite(items) or items <= 0:
        raise EdgeInputError(
            f"edge_benchmark.throughput(items={items!r}): items must be a positive number "
            "(how many docs/tokens/requests one call processes)"
        )
    if not isinstance(unit, str) or not unit.strip():
        raise EdgeInputError(
            f"edge_benchmark.throughput(unit={unit!r}): unit must be a non-empty name "
            "such as 'docs' or 'tokens'"
        )
    return float(items), unit.strip()


class EdgeBenchmark:
    """The ``edge_benchmark`` fixture's object: wraps one pytest-benchmark fixture."""

    def __init__(
        self,
        benchmark: BenchmarkFixture,
        sink: ResultSink | None = None,
        host_speed_factor: float | None = None,
        instruction_verdict: bool = False,
    ) -> None:
        self.benchmark = benchmark
        self._sink = sink
        # This host's single-core speed relative to the catalog's reference CPU, if known.
        self.host_speed_factor = host_speed_factor
        # The edge_instructions marker or --edge-instructions: count instructions in every
        # throughput call and record them as the benchmark's verdict metric.
        self.instruction_verdict = instruction_verdict

    @property
    def extra_info(self) -> dict[str, Any]:
        return self.benchmark.extra_info

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Plain timing, exactly as pytest-benchmark's ``benchmark(...)``."""
        result: T = self.benchmark(function, *args, **kwargs)
        return result

    def throughput(
        self,
        function: Callable[..., T],
        *args: Any,
        items: float,
        unit: str,
        instructions: bool = False,
        **kwargs: Any,
    ) -> T:
        """Time ``function(*args, **kwargs)`` and record ``items`` per call as a throughput.

        With ``instructions=True`` also count the instructions of one call with callgrind
        (an importable function with JSON-able positional arguments; skipped, and said so,
        where valgrind is missing). Returns what the function returned, as ``benchmark(...)``.
        """
        count, unit = _validate(items, unit)
        result: T = self.benchmark(function, *args, **kwargs)
        profile = current_machine().profile
        info: dict[str, Any] = {
            "items": count,
            "unit": unit,
            "profile": profile.name if profile else None,
        }
        untimed = ThroughputResult(
            self.benchmark.fullname,
            self.benchmark.group,
            count,
            unit,
            timed=False,
            profile=info["profile"],
        )
        stats = getattr(self.benchmark, "stats", None)
        data = list(stats.stats.data) if self.benchmark.enabled and stats is not None else []
        if not data:
            info["timed"] = False
            self._record(info, untimed)
            return result
        med = float(median(data))
        _, peak = peak_memory_of(function, *args, **kwargs)
        info.update(
            timed=True,
            throughput_per_s=count / med,
            throughput_unit=f"{unit}/s",
            peak_memory_bytes=peak,
            peak_memory_method=MEMORY_METHOD,
            samples=_kept_samples(data),
            samples_total=len(data),
        )
        if self.instruction_verdict:
            info["verdict_metric"] = "instructions"
        counting = instructions or self.instruction_verdict
        per_call = self._instructions(function, args, kwargs, info) if counting else None
        device_rate = None
        speed = device_speed_factor(profile, self.host_speed_factor)
        if profile is not None and speed is not None:
            device_rate = count / med * speed
            info["device_estimate"] = {
                "profile": profile.name,
                "throughput_per_s": device_rate,
                "cpu_speed_factor": profile.cpu_speed_factor,
                "host_speed_factor": self.host_speed_factor,
                "label": ESTIMATE_NOTE,
            }
        timed = replace(
            untimed,
            timed=True,
            median_seconds=med,
            rounds=len(data),
            peak_memory_bytes=peak,
            device_items_per_second=device_rate,
            instructions_per_call=per_call,
        )
        self._record(info, timed)
        return result

    def _instructions(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        info: dict[str, Any],
    ) -> float | None:
        from pytest_edge.bench.instructions import (
            InstructionCountError,
            count_instructions,
            target_of,
        )

        if kwargs:
            raise EdgeInputError("instructions=True needs positional, JSON-able arguments only")
        try:
            count = count_instructions(
                target_of(function), args, extra_path=[p for p in sys.path if p]
            )
        except InstructionCountError as error:
            info["instructions"] = f"not measured: {error}"
            return None
        info["instructions_per_call"] = count.per_call
        info["instructions_tool"] = count.tool
        return count.per_call

    def _record(self, info: dict[str, Any], result: ThroughputResult) -> None:
        """Keep pytest-edge's block in pytest-benchmark's extra_info; hand the result on."""
        self.benchmark.extra_info[EDGE_KEY] = info
        if self._sink is not None:
            self._sink(result)
