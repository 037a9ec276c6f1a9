"""Scenarios: TOML files that run a workload on a simulated device under faults and crashes."""

from __future__ import annotations

from pytest_edge.scenarios.outcome import ScenarioOutcome, WorkloadResult, WorkloadResultError
from pytest_edge.scenarios.schema import (
    CrashSpec,
    Expectations,
    Scenario,
    ScenarioError,
    Throughput,
    is_scenario_file,
    load_scenario,
)

__all__ = [
    "CrashSpec",
    "Expectations",
    "Scenario",
    "ScenarioError",
    "ScenarioOutcome",
    "Throughput",
    "WorkloadResult",
    "WorkloadResultError",
    "is_scenario_file",
    "load_scenario",
]
