"""A report with every kind of section and block, for the renderer tests."""

from __future__ import annotations

from pytest_edge.bench.compare import compare_runs
from pytest_edge.bench.report import benchmark_section
from pytest_edge.bench.throughput import ThroughputResult
from pytest_edge.machine import HostMachine
from pytest_edge.report import EdgeReport
from pytest_edge.report.device import device_section
from tests.bench.samples import CALM, noisy, result, run


def sample_report() -> EdgeReport:
    comparison = compare_runs(
        run(
            result("t.py::test_a", noisy(1), calibration=CALM),
            result("t.py::test_b", noisy(2), calibration=CALM),
        ),
        run(
            result("t.py::test_a", noisy(3, 1.3), calibration=CALM),
            result("t.py::test_b", noisy(4), calibration=CALM),
        ),
    )
    throughput = ThroughputResult(
        "t.py::test_a", "g", 100, "docs", True, 1e-3, 40, 2048, "raspberry-pi-4", 25000.0
    )
    report = EdgeReport("demo").with_section(benchmark_section([throughput], comparison))
    return report.with_section(device_section(HostMachine()))
