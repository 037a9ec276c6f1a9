"""The benchmark section of the edge report: time units, JSON-ready data."""

from __future__ import annotations

import json

import pytest

from pytest_edge.bench.compare import compare_runs
from pytest_edge.bench.report import benchmark_section, time_unit
from pytest_edge.report import EdgeReport, render
from tests.bench.samples import noisy, result, run


def test_json_has_no_infinities_when_nothing_was_detectable() -> None:
    comparison = compare_runs(run(result("b", noisy(1, n=3))), run(result("b", noisy(2, n=3))))
    section = benchmark_section([], comparison)
    text = render(EdgeReport().with_section(section), "json")
    assert "Infinity" not in text
    assert (
        json.loads(text)["sections"][0]["data"]["comparison"]["results"][0]["detectable_change"]
        is None
    )


@pytest.mark.parametrize(
    ("seconds", "unit"), [(2.0, "s"), (0.002, "ms"), (2e-6, "µs"), (2e-9, "ns"), (1e-12, "ns")]
)
def test_time_units(seconds: float, unit: str) -> None:
    assert time_unit(seconds)[1] == unit
