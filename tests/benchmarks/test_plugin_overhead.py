"""What pytest-edge's benchmark machinery itself costs, as ratios to a baseline in the same test.

- the comparison of two runs (rank test + Hodges-Lehmann on every benchmark) against the
  json.loads of the baseline file it has to read anyway;
- the untimed peak-memory call of `edge_benchmark.throughput` (tracemalloc) against a plain
  call of the same function;
- edge_corpus generation throughput in documents/s (dogfooding `edge_benchmark`).

Under `make test` (xdist) pytest-benchmark is disabled and these run once, small, as smoke
checks; `make bench` runs them full size (`--run-slow`). No timing is asserted.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pytest_edge.bench.compare import compare_runs
from pytest_edge.bench.corpus import make_corpus
from pytest_edge.bench.data import run_from_json
from pytest_edge.bench.throughput import EdgeBenchmark, peak_memory_of
from tests.bench.samples import json_entry


def _median_time(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _record_ratio(benchmark: Any, name: str, baseline_s: float) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # disabled under xdist: the single call was the smoke check
        return
    ratio = stats.stats.median / baseline_s
    benchmark.extra_info[name] = round(ratio, 3)
    benchmark.extra_info["baseline_median_s"] = baseline_s


def _runs_document(benchmarks: int, samples: int, seed: int, factor: float) -> str:
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(benchmarks):
        data = (rng.lognormal(np.log(1e-3), 0.05, samples) * factor).tolist()
        entries.append(json_entry(f"b{i}", data, fullname=f"t::b{i}"))
    return json.dumps({"benchmarks": entries})


def _compare_cost(benchmark: Any, benchmarks: int, samples: int) -> None:
    base_text = _runs_document(benchmarks, samples, 1, 1.0)
    current = run_from_json(json.loads(_runs_document(benchmarks, samples, 2, 1.2)), "current")
    baseline = run_from_json(json.loads(base_text), "baseline")
    result = benchmark(compare_runs, baseline, current)
    assert len(result.results) == benchmarks
    _record_ratio(benchmark, "ratio_vs_json_load", _median_time(lambda: json.loads(base_text), 5))


@pytest.mark.benchmark(group="edge-compare")
def test_compare_cost_smoke(benchmark: Any) -> None:
    _compare_cost(benchmark, benchmarks=3, samples=50)


@pytest.mark.slow
@pytest.mark.benchmark(group="edge-compare")
def test_compare_cost_50_benchmarks_x_2000_samples(benchmark: Any) -> None:
    _compare_cost(benchmark, benchmarks=50, samples=2000)


def _allocate(n: int) -> list[dict[str, int]]:
    return [{"i": i, "square": i * i} for i in range(n)]


def _memory_call_cost(benchmark: Any, n: int) -> None:
    _, peak = benchmark(peak_memory_of, _allocate, n)
    assert peak > n * 50  # each dict is well over 50 bytes: the measurement sees them
    _record_ratio(benchmark, "ratio_vs_plain_call", _median_time(lambda: _allocate(n), 5))


@pytest.mark.benchmark(group="edge-memory")
def test_peak_memory_call_cost_smoke(benchmark: Any) -> None:
    _memory_call_cost(benchmark, 1000)


@pytest.mark.slow
@pytest.mark.benchmark(group="edge-memory")
def test_peak_memory_call_cost_100k_dicts(benchmark: Any) -> None:
    _memory_call_cost(benchmark, 100_000)


@pytest.mark.benchmark(group="edge-corpus")
@pytest.mark.parametrize(
    "count", [pytest.param(20, id="smoke"), pytest.param(500, marks=pytest.mark.slow, id="500")]
)
def test_corpus_generation_throughput(edge_benchmark: EdgeBenchmark, count: int) -> None:
    corpus = edge_benchmark.throughput(
        make_corpus, "documents", count=count, seed=1, items=count, unit="docs"
    )
    assert len(corpus) == count
