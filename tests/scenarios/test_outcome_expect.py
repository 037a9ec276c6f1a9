"""Workload results, outcomes and the expectation checks, as plain units."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.scenarios.expect import check_expectations
from pytest_edge.scenarios.outcome import (
    CrashSummary,
    ScenarioOutcome,
    WorkloadResult,
    WorkloadResultError,
    coerce_result,
)
from pytest_edge.scenarios.record import COLUMNS, ScenarioRecord, rows
from pytest_edge.scenarios.schema import Expectations, Throughput


def _outcome(**changes: Any) -> ScenarioOutcome:
    values: dict[str, Any] = {
        "name": "s",
        "profile": "raspberry-pi-4-4gb",
        "result": WorkloadResult(items=100, errors=0, unit="docs"),
        "seconds": 2.0,
        "peak_memory_mb": 50.0,
        "budget_mb": 3500.0,
    }
    values.update(changes)
    return ScenarioOutcome(**values)


def test_mapping_results_are_accepted_and_checked() -> None:
    assert coerce_result({"items": 3, "errors": 1, "unit": "docs"}, "w") == WorkloadResult(
        3, 1, "docs"
    )
    with pytest.raises(WorkloadResultError, match=r"w returned a mapping with no 'items'"):
        coerce_result({"errors": 1}, "w")
    with pytest.raises(WorkloadResultError, match=r"unknown key 'docs'; allowed keys: items"):
        coerce_result({"items": 1, "docs": 2}, "w")
    with pytest.raises(WorkloadResultError, match=r"w returned items=-1: a non-negative integer"):
        coerce_result({"items": -1}, "w")
    with pytest.raises(WorkloadResultError, match=r"w returned NoneType; a workload returns"):
        coerce_result(None, "w")


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_error_rate_is_errors_over_attempts(items: int, errors: int) -> None:
    rate = WorkloadResult(items, errors).error_rate
    assert 0.0 <= rate <= 1.0
    assert rate == (errors / (items + errors) if items + errors else 0.0)


def test_throughput_and_projection() -> None:
    outcome = _outcome(speed_factor=0.25)
    assert outcome.throughput == 50.0
    assert outcome.projected_throughput == 12.5
    assert _outcome().projected_throughput is None
    assert _outcome(result=None).throughput is None


def test_nothing_broken_when_everything_holds() -> None:
    expect = Expectations(
        max_peak_memory_mb=100,
        min_throughput=Throughput(10, "docs/s"),
        max_error_rate=0.0,
    )
    assert check_expectations(expect, _outcome()) == []


def test_the_floor_applies_to_the_projected_figure_when_there_is_one() -> None:
    expect = Expectations(min_throughput=Throughput(20, "docs"))
    assert check_expectations(expect, _outcome()) == []
    (reason,) = check_expectations(expect, _outcome(speed_factor=0.25))
    assert reason == (
        "throughput 12.5 docs/s projected on raspberry-pi-4-4gb (estimate) is below the floor "
        "of 20 docs/s"
    )


def test_over_budget_and_over_limit_are_separate_reasons() -> None:
    expect = Expectations(max_peak_memory_mb=100)
    reasons = check_expectations(expect, _outcome(peak_memory_mb=4000.0))
    assert reasons == [
        "peak memory 4000.0 MB exceeds the raspberry-pi-4-4gb budget of 3500 MB",
        "peak memory 4000.0 MB is above max_peak_memory_mb = 100",
    ]


def test_lost_writes_reason_carries_the_harness_report() -> None:
    crash = CrashSummary("kill", 5, 40, 2, 1234, "crash harness report text")
    (reason,) = check_expectations(Expectations(lost_acked_writes=0), _outcome(crash=crash))
    assert reason.startswith("2 acknowledged writes lost or changed in 5 kill cycles (allowed: 0)")
    assert reason.endswith("crash harness report text")


def test_custom_check_verdicts(tmp_path: Path) -> None:
    def resolve(ref: str) -> Any:
        return {
            "m:fine": lambda o: None,
            "m:message": lambda o: "too slow",
            "m:asserts": _asserts,
            "m:bool": lambda o: True,
        }[ref]

    def _asserts(outcome: ScenarioOutcome) -> None:
        assert outcome.result is None, "result present"

    def run(ref: str) -> list[str]:
        return check_expectations(Expectations(check=ref), _outcome(), resolve=resolve)

    assert run("m:fine") == []
    assert run("m:message") == ["check m:message: too slow"]
    assert run("m:asserts")[0].startswith("check m:asserts: result present")
    assert run("m:bool") == [
        "check m:bool returned bool; a check returns None when the outcome is fine, "
        "or a message (or raises AssertionError)"
    ]


@given(
    st.builds(
        ScenarioRecord,
        name=st.text(min_size=1, max_size=20),
        path=st.text(max_size=20),
        profile=st.sampled_from(["host", "raspberry-pi-4-4gb"]),
        asked=st.none() | st.just("raspberry-pi"),
        outcome=st.sampled_from(["passed", "failed", "skipped"]),
        reasons=st.lists(st.text(max_size=30), max_size=3).map(tuple),
        items=st.none() | st.integers(0, 10**6),
        throughput=st.none() | st.floats(0, 1e6),
        crash_cycles=st.none() | st.integers(1, 50),
        lost_writes=st.none() | st.integers(0, 5),
        fault_lines=st.lists(st.text(max_size=30), max_size=3).map(tuple),
    )
)
def test_records_survive_the_trip_through_user_properties(record: ScenarioRecord) -> None:
    # Under xdist a record travels as JSON from the worker to the controller.
    assert ScenarioRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert len(rows([record])[0]) == len(COLUMNS)
