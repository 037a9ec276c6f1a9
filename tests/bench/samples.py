"""Synthetic pytest-benchmark results for the comparison, A/B and report tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_edge.bench.calibration import Calibration
from pytest_edge.bench.data import BenchmarkResult, BenchmarkRun


def calm(cpu: float = 1e-3, fsync: float = 5e-4, cpu_fraction: float = 1.0) -> Calibration:
    """A calibration record of a machine that did not move around the benchmark."""
    return Calibration((cpu, cpu), (fsync, fsync), cpu_fraction)


CALM = calm()


def result(
    name: str,
    samples: np.ndarray | None,
    median: float = 1e-3,
    calibration: Calibration | None = None,
) -> BenchmarkResult:
    if samples is None:
        return BenchmarkResult(
            name,
            name,
            None,
            median,
            median * 0.98,
            median * 1.02,
            median * 0.9,
            median * 1.2,
            100,
            calibration=calibration,
        )
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return BenchmarkResult(
        name,
        name,
        "g",
        float(med),
        float(q1),
        float(q3),
        float(samples.min()),
        float(samples.max()),
        samples.size,
        tuple(float(v) for v in samples),
        calibration=calibration,
    )


def noisy(seed: int, factor: float = 1.0, n: int = 40, sigma: float = 0.05) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(1e-3), sigma, n) * factor


def run(*results: BenchmarkResult, machine: dict[str, str] | None = None) -> BenchmarkRun:
    return BenchmarkRun("run.json", results, machine or {})


def history_of(*factors: float, calibration: Calibration | None = None) -> list[BenchmarkRun]:
    return [
        run(result("b", noisy(100 + i, f), calibration=calibration)) for i, f in enumerate(factors)
    ]


def json_entry(
    name: str,
    data: list[float],
    fullname: str | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """One benchmark of a pytest-benchmark JSON file, with its samples (seconds) and stats."""
    q1, med, q3 = np.percentile(data, [25, 50, 75])
    stats = {
        "median": med,
        "q1": q1,
        "q3": q3,
        "min": min(data),
        "max": max(data),
        "rounds": len(data),
        "data": data,
    }
    return {
        "name": name,
        "fullname": fullname or name,
        "group": None,
        "stats": stats,
        "extra_info": {"edge": {"calibration": calibration.to_json()}} if calibration else {},
    }
