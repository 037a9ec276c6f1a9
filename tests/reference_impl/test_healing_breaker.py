"""CircuitBreaker: generation check (stale results) and the call timeout; error rate window.

Thread interleavings are forced with events: a call blocks inside the dependency until the
test releases it, so "started before the breaker opened" is a fact, not a timing hope.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from reference_impl.production_patterns import (
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ErrorSeverity,
    ProductionErrorHandler,
    TimedOutCallsPendingError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail() -> None:
    raise ConnectionError("refused")


class Blocked:
    """A dependency call that blocks until released, then succeeds or fails."""

    def __init__(self, outcome: BaseException | str = "ok") -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.outcome = outcome

    def __call__(self) -> str:
        self.started.set()
        assert self.release.wait(30), "the test never released the call"
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@contextlib.contextmanager
def in_thread(breaker: CircuitBreaker, call: Blocked) -> Iterator[dict[str, object]]:
    """Run breaker.call(call) in a thread; on exit release it and join (also on failure)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = breaker.call(call)
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, name="breaker-caller")
    thread.start()
    try:
        assert call.started.wait(30)
        yield box
    finally:
        call.release.set()
        thread.join(30)
        assert not thread.is_alive()


# --- generation check ---------------------------------------------------------------------------


def test_a_success_that_started_before_the_breaker_opened_does_not_close_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("llm", failure_threshold=1, reset_timeout=10, clock=clock)
    slow = Blocked("ok")
    with in_thread(breaker, slow) as box:
        with pytest.raises(ConnectionError):
            breaker.call(_fail)  # opens the circuit while the slow call is in flight
        assert breaker.state is CircuitState.OPEN
    assert box["result"] == "ok"  # the caller still gets its answer
    assert breaker.state is CircuitState.OPEN, "a stale success closed the open circuit"
    assert breaker.get_stats()["stale_results"] == 1


def test_a_stale_success_does_not_close_a_half_open_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker("llm", failure_threshold=1, reset_timeout=10, clock=clock)
    slow = Blocked("ok")
    with in_thread(breaker, slow):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
        clock.now += 10
        assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.state is CircuitState.HALF_OPEN, "a stale success closed it without a trial"
    # The trial slot is still free: a real trial decides.
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    assert breaker.state is CircuitState.OPEN


def test_a_stale_failure_does_not_reopen_a_half_open_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker("llm", failure_threshold=1, reset_timeout=10, clock=clock)
    slow = Blocked(ConnectionError("late failure of an old call"))
    with in_thread(breaker, slow) as box:
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
        clock.now += 10
        assert breaker.state is CircuitState.HALF_OPEN
    assert isinstance(box["error"], ConnectionError)
    assert breaker.state is CircuitState.HALF_OPEN, "a stale failure re-opened the circuit"
    assert breaker.call(lambda: "trial ok") == "trial ok"
    assert breaker.state is CircuitState.CLOSED


def test_a_fresh_half_open_trial_still_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker("llm", failure_threshold=1, reset_timeout=10, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    clock.now += 10
    trial = Blocked("ok")
    with in_thread(breaker, trial), pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)  # the one trial slot is taken
    assert breaker.state is CircuitState.CLOSED
    assert breaker.get_stats()["stale_results"] == 0


# --- call timeout -------------------------------------------------------------------------------


def test_a_call_past_the_timeout_raises_a_typed_timeout_and_counts_as_a_failure() -> None:
    handler = ProductionErrorHandler()
    breaker = CircuitBreaker(
        "llm", failure_threshold=1, call_timeout=0.05, error_handler=handler, clock=Clock()
    )
    hung = Blocked("too late")
    try:
        with pytest.raises(CallTimeoutError, match=r"circuit 'llm': call exceeded 0\.05 s"):
            breaker.call(hung)
        assert isinstance(CallTimeoutError("x", 1.0), TimeoutError)
        assert breaker.state is CircuitState.OPEN
        assert breaker.pending_timed_out_calls == 1
        assert handler.get_error_stats()["by_type"] == {"CallTimeoutError": 1}
    finally:
        hung.release.set()
    # The abandoned call finishes on its own; its late success changes nothing.
    assert breaker.wait_for_timed_out_calls(30)
    assert breaker.pending_timed_out_calls == 0
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_stats()["timeouts"] == 1


def test_timed_out_calls_are_bounded_and_new_calls_are_refused_while_at_the_bound() -> None:
    breaker = CircuitBreaker(failure_threshold=5, call_timeout=0.05, max_timed_out_calls=1)
    hung = Blocked()
    calls: list[str] = []
    try:
        with pytest.raises(CallTimeoutError):
            breaker.call(hung)
        with pytest.raises(TimedOutCallsPendingError, match=r"1 timed-out call.* still running"):
            breaker.call(calls.append, "should not run")
        assert calls == [], "the dependency was entered again while a timed-out call runs"
    finally:
        hung.release.set()
    assert breaker.wait_for_timed_out_calls(30)
    breaker.call(calls.append, "runs now")
    assert calls == ["runs now"]


def test_results_and_errors_come_back_through_the_timeout_thread() -> None:
    breaker = CircuitBreaker(failure_threshold=2, call_timeout=30)
    assert breaker.call(lambda a, b: a + b, 2, b=3) == 5
    with pytest.raises(ConnectionError, match="refused"):
        breaker.call(_fail)
    assert breaker.get_stats()["consecutive_failures"] == 1
    assert breaker.pending_timed_out_calls == 0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1"])
def test_bad_call_timeout_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"call_timeout must be a finite number of seconds > 0"):
        CircuitBreaker(call_timeout=bad)  # type: ignore[arg-type]


def test_bad_timed_out_call_bound_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"max_timed_out_calls must be an integer >= 1, got 0"):
        CircuitBreaker(call_timeout=1, max_timed_out_calls=0)


# --- errors per minute --------------------------------------------------------------------------


def test_errors_per_minute_of_a_young_handler_divides_by_its_age_not_the_window() -> None:
    clock = Clock()
    handler = ProductionErrorHandler(window_seconds=300, clock=clock)
    clock.now += 30
    for _ in range(3):
        handler.handle_error(RuntimeError("x"), None, ErrorSeverity.LOW)
    # 3 errors in the 30 s the handler has existed: 6 per minute, not 3 / 5 min = 0.6.
    assert handler.get_error_stats()["errors_per_minute"] == pytest.approx(6.0)
    clock.now += 600  # older than the window: the window is the divisor again
    handler.handle_error(RuntimeError("x"), None, ErrorSeverity.LOW)
    assert handler.get_error_stats()["errors_per_minute"] == pytest.approx(0.2)


def test_errors_per_minute_has_a_floor_so_one_error_at_start_is_not_a_storm() -> None:
    clock = Clock()
    handler = ProductionErrorHandler(window_seconds=300, clock=clock)
    clock.now += 0.001
    handler.handle_error(RuntimeError("x"), None, ErrorSeverity.LOW)
    stats = handler.get_error_stats()
    # Divided by the 10 s floor: 6 per minute, not 60,000.
    assert stats["errors_per_minute"] == pytest.approx(6.0)
    assert stats["rate_seconds"] == pytest.approx(10.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "10"])
def test_bad_min_rate_seconds_is_rejected(bad: object) -> None:
    with pytest.raises(
        ValueError, match=r"min_rate_seconds must be a finite number of seconds > 0"
    ):
        ProductionErrorHandler(min_rate_seconds=bad)  # type: ignore[arg-type]
