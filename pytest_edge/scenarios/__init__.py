"""Scenarios: TOML files that run a workload on a simulated device under faults and crashes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.scenarios.outcome import (
        ScenarioOutcome,
        WorkloadResult,
        WorkloadResultError,
    )
    from pytest_edge.scenarios.schema import (
        CrashSpec,
        Expectations,
        Scenario,
        ScenarioError,
        ScenarioFileWarning,
        Throughput,
        is_scenario_file,
        load_scenario,
    )

__all__ = [
    "CrashSpec",
    "Expectations",
    "Scenario",
    "ScenarioError",
    "ScenarioFileWarning",
    "ScenarioOutcome",
    "Throughput",
    "WorkloadResult",
    "WorkloadResultError",
    "is_scenario_file",
    "load_scenario",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "CrashSpec": "pytest_edge.scenarios.schema",
    "Expectations": "pytest_edge.scenarios.schema",
    "Scenario": "pytest_edge.scenarios.schema",
    "ScenarioError": "pytest_edge.scenarios.schema",
    "ScenarioFileWarning": "pytest_edge.scenarios.schema",
    "ScenarioOutcome": "pytest_edge.scenarios.outcome",
    "Throughput": "pytest_edge.scenarios.schema",
    "WorkloadResult": "pytest_edge.scenarios.outcome",
    "WorkloadResultError": "pytest_edge.scenarios.outcome",
    "is_scenario_file": "pytest_edge.scenarios.schema",
    "load_scenario": "pytest_edge.scenarios.schema",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
