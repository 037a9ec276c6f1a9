"""production_patterns: error stats, circuit breaker, degradation, notebook cells 10-12."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.production_patterns import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ErrorRecord,
    ErrorSeverity,
    GracefulDegradationManager,
    ProductionErrorHandler,
)
from tests.reference_impl.notebook import run_cells


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- error handler ------------------------------------------------------------------------------


def test_stats_count_per_severity_and_type_over_a_sliding_window() -> None:
    clock = Clock()
    handler = ProductionErrorHandler(window_seconds=60, clock=clock)
    handler.handle_error(ValueError("a"), {}, ErrorSeverity.LOW)
    clock.now += 30
    handler.handle_error(ValueError("b"), {}, ErrorSeverity.HIGH)
    handler.handle_error(OSError("c"), {}, ErrorSeverity.HIGH)
    stats = handler.get_error_stats()
    assert stats["errors_in_window"] == 3
    assert stats["by_severity"] == {"low": 1, "medium": 0, "high": 2, "critical": 0}
    assert stats["by_type"] == {"ValueError": 2, "OSError": 1}
    assert stats["last_error"] == "OSError: c"
    clock.now += 31  # the first error leaves the window
    stats = handler.get_error_stats()
    assert stats["errors_in_window"] == 2
    assert stats["by_severity"]["low"] == 0
    assert stats["by_type"] == {"ValueError": 1, "OSError": 1}
    assert stats["total_errors"] == 3
    assert stats["errors_per_minute"] == pytest.approx(2.0)
    clock.now += 60
    assert handler.get_error_stats()["errors_in_window"] == 0


def test_storm_beyond_the_record_cap_is_reported_as_truncated() -> None:
    handler = ProductionErrorHandler(max_records=5, clock=Clock())
    for i in range(8):
        handler.handle_error(RuntimeError(str(i)), None, ErrorSeverity.LOW)
    stats = handler.get_error_stats()
    assert stats["errors_in_window"] == 5
    assert stats["window_truncated"] is True
    assert stats["total_errors"] == 8


def test_listeners_get_records_and_a_failing_listener_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = ProductionErrorHandler()
    seen: list[ErrorRecord] = []

    def broken(record: ErrorRecord) -> None:
        raise RuntimeError("listener bug")

    handler.add_listener(broken)
    remove = handler.add_listener(seen.append)
    record = handler.handle_error(KeyError("k"), {"op": "x"}, ErrorSeverity.MEDIUM)
    assert seen == [record]
    assert record.context == {"op": "x"}
    assert "error listener" in caplog.text
    remove()
    handler.handle_error(KeyError("k"), None, ErrorSeverity.MEDIUM)
    assert len(seen) == 1


def test_bad_severity_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"severity must be an ErrorSeverity .*got 'high'"):
        ProductionErrorHandler().handle_error(ValueError(), None, "high")  # type: ignore[arg-type]


# --- circuit breaker ----------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_probes_after_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker("llm", failure_threshold=3, reset_timeout=10, clock=clock)
    calls: list[str] = []
    healthy = False

    @breaker
    def backend() -> str:
        calls.append("call")
        if not healthy:
            raise ConnectionError("refused")
        return "ok"

    for _ in range(3):
        with pytest.raises(ConnectionError):
            backend()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match=r"circuit 'llm' is open; retry in 10\.0 s"):
        backend()
    assert len(calls) == 3  # failed fast, backend not called
    clock.now += 10
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectionError):
        backend()  # the trial fails: open again
    assert breaker.state is CircuitState.OPEN
    clock.now += 10
    healthy = True
    assert backend() == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    outcomes = iter([ConnectionError(), "ok", ConnectionError(), "ok"])

    def backend() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    for _ in range(4):
        with contextlib.suppress(ConnectionError):
            breaker.call(backend)
    assert breaker.state is CircuitState.CLOSED


def test_half_open_admits_a_limited_number_of_trials() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(_raise, ConnectionError())
    clock.now += 5

    def nested() -> None:
        # While the single trial is in flight, a second caller is refused.
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: None)

    breaker.call(nested)
    assert breaker.state is CircuitState.CLOSED


def _raise(error: BaseException) -> None:
    raise error


def test_unexpected_exceptions_do_not_count_as_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=1, expected_exceptions=(ConnectionError,))
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("bug in caller"))
    assert breaker.state is CircuitState.CLOSED


def test_breaker_reports_failures_to_the_error_handler() -> None:
    handler = ProductionErrorHandler()
    breaker = CircuitBreaker("db", failure_threshold=5, error_handler=handler)
    with pytest.raises(TimeoutError):
        breaker.call(_raise, TimeoutError("slow"))
    assert handler.get_error_stats()["by_type"] == {"TimeoutError": 1}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"failure_threshold": 0}, r"failure_threshold must be >= 1, got 0"),
        ({"reset_timeout": -1}, r"reset_timeout must be >= 0 seconds, got -1"),
        ({"half_open_max_calls": 0}, r"half_open_max_calls must be >= 1, got 0"),
    ],
)
def test_bad_breaker_settings_are_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


# --- degradation --------------------------------------------------------------------------------


def test_levels_are_named_and_clamped_at_both_ends() -> None:
    manager = GracefulDegradationManager()
    assert manager.get_degradation_status()["name"] == "full"
    manager.decrease_degradation()
    assert manager.level_index == 0
    names = [manager.increase_degradation().name for _ in range(6)]
    assert names == [
        "reduced_context",
        "smaller_model",
        "cache_only",
        "offline",
        "offline",
        "offline",
    ]
    assert not manager.is_enabled("model_inference")
    assert not manager.is_enabled("network")
    manager.decrease_degradation()
    assert manager.level.name == "cache_only"
    assert manager.is_enabled("network")


def test_critical_errors_escalate_and_others_reset_the_recovery_streak() -> None:
    clock = Clock()
    handler = ProductionErrorHandler(clock=clock)
    manager = GracefulDegradationManager(
        handler, recovery_successes=3, recovery_cooldown=0, clock=clock
    )
    handler.handle_error(ValueError("x"), None, ErrorSeverity.HIGH)
    assert manager.level_index == 0
    handler.handle_error(SystemError("gpu lost"), None, ErrorSeverity.CRITICAL)
    assert manager.level_index == 1
    assert manager.get_degradation_status()["reason"] == "critical SystemError"
    manager.record_success()
    manager.record_success()
    handler.handle_error(ValueError("x"), None, ErrorSeverity.LOW)  # streak reset
    manager.record_success()
    manager.record_success()
    assert manager.level_index == 1
    manager.record_success()
    assert manager.level_index == 0


def test_one_good_call_does_not_undo_a_degradation() -> None:
    clock = Clock()
    manager = GracefulDegradationManager(recovery_successes=5, recovery_cooldown=30, clock=clock)
    manager.increase_degradation("overload")
    manager.record_success()
    assert manager.level.name == "reduced_context"
    for _ in range(10):
        manager.record_success()
    assert manager.level.name == "reduced_context", "cool-down has not passed"
    clock.now += 30
    manager.record_success()
    assert manager.level.name == "full"


def test_bad_degradation_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"recovery_successes must be >= 1, got 0"):
        GracefulDegradationManager(recovery_successes=0)
    with pytest.raises(ValueError, match=r"levels must name at least 2 levels, got 1"):
        GracefulDegradationManager(levels=GracefulDegradationManager().levels[:1])


# --- the notebook -------------------------------------------------------------------------------


def test_notebook_cells_10_to_12_run_unchanged_and_leave_no_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_cells([1, 10, 11, 12], tmp_path)
    out = capsys.readouterr().out
    assert "Handling critical error: SystemError" in out
    assert "by_severity: {'low': 1, 'medium': 1, 'high': 1, 'critical': 1}" in out
    # The CRITICAL error in cell 10 escalated one level before cell 11 starts.
    assert "Initial degradation status: {'level': 1, 'name': 'reduced_context'" in out
    assert "Stress level 4: {'level': 4, 'name': 'offline'" in out
    assert "Recovery level 2: {'level': 2, 'name': 'smaller_model'" in out
    assert "Agent state saved to demo_agent_state.json" in out
    assert "Goal: Plan a multi-day trip to Mars" in out
    assert "'interests': ['space exploration', 'scientific research']" in out
    assert namespace["new_state_manager"].get_state("current_task") == (
        "Research Mars landing sites and travel logistics"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@given(
    st.lists(
        st.sampled_from(["increase", "decrease", "success", "failure", "critical", "tick"]),
        max_size=60,
    )
)
def test_degradation_stays_in_bounds_and_recovers_at_most_one_level_per_streak(
    ops: list[str],
) -> None:
    clock = Clock()
    handler = ProductionErrorHandler(clock=clock)
    manager = GracefulDegradationManager(
        handler, recovery_successes=3, recovery_cooldown=5, clock=clock
    )
    top = len(manager.levels) - 1
    streak = 0
    for op in ops:
        before = manager.level_index
        if op == "increase":
            manager.increase_degradation()
        elif op == "decrease":
            manager.decrease_degradation()
        elif op == "success":
            manager.record_success()
        elif op == "failure":
            manager.record_failure()
        elif op == "critical":
            handler.handle_error(SystemError("x"), None, ErrorSeverity.CRITICAL)
        else:
            clock.now += 2
        after = manager.level_index
        assert 0 <= after <= top
        if op == "success":
            streak += 1
        elif op != "tick":
            streak = 0
        if op == "success" and after < before:
            assert after == before - 1
            assert streak >= 3, "recovered before a full streak of successes"
            streak = 0
