"""Production patterns for edge agents: error handling, circuit breaker, degradation, state.

Follows the book chapter's notebook API (`ErrorSeverity`, `ProductionErrorHandler`,
`GracefulDegradationManager`, `StatePersistenceManager`) and adds:

- error statistics per severity and per error type over a sliding time window;
- a `CircuitBreaker` (closed / open / half-open with a cool-down), usable as a decorator;
- named degradation levels saying what each turns off, clamped at both ends, with
  hysteresis on automatic recovery; CRITICAL errors escalate automatically;
- crash-safe state persistence (see `StatePersistenceManager`).
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import errno
import functools
import json
import logging
import math
import os
import secrets
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast

__all__ = [
    "DEFAULT_DEGRADATION_LEVELS",
    "FORMAT_VERSION",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "DegradationLevel",
    "DegradationListener",
    "ErrorListener",
    "ErrorRecord",
    "ErrorSeverity",
    "GracefulDegradationManager",
    "LoadReport",
    "ProductionErrorHandler",
    "SaveReport",
    "StateCorruptedError",
    "StateDurabilityError",
    "StatePersistenceManager",
    "StateWriteError",
    "TimedOutCallsPendingError",
]

logger = logging.getLogger(__name__)
# A library does not configure logging: the application decides where records go.
logger.addHandler(logging.NullHandler())

P = ParamSpec("P")
R = TypeVar("R")


# --- errors -------------------------------------------------------------------------------------


class ErrorSeverity(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_LOG_LEVEL = {
    ErrorSeverity.LOW: logging.INFO,
    ErrorSeverity.MEDIUM: logging.WARNING,
    ErrorSeverity.HIGH: logging.ERROR,
    ErrorSeverity.CRITICAL: logging.CRITICAL,
}


@dataclass(frozen=True)
class ErrorRecord:
    """One handled error. `at` is on the handler's monotonic clock, `wall_time` is time.time()."""

    at: float
    wall_time: float
    error_type: str
    message: str
    severity: ErrorSeverity
    context: Mapping[str, Any] = field(default_factory=dict)


class ErrorListener(Protocol):
    """Told about every handled error (after it is recorded)."""

    def __call__(self, record: ErrorRecord) -> None: ...


class ProductionErrorHandler:
    """Records errors, logs them by severity and keeps statistics over a sliding window.

    Thread-safe. At most `max_records` records are kept for the window; under a storm larger
    than that the window counts are a lower bound and the stats say so (`window_truncated`).
    """

    def __init__(
        self,
        window_seconds: float = 300.0,
        *,
        max_records: int = 10_000,
        min_rate_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records!r}")
        if (
            isinstance(min_rate_seconds, bool)
            or not isinstance(min_rate_seconds, int | float)
            or not 0 < min_rate_seconds < math.inf
        ):
            raise ValueError(
                f"min_rate_seconds must be a finite number of seconds > 0, got {min_rate_seconds!r}"
            )
        self.window_seconds = float(window_seconds)
        self.min_rate_seconds = float(min_rate_seconds)
        self._clock = clock
        self._started = clock()
        self._records: deque[ErrorRecord] = deque(maxlen=max_records)
        self._totals: Counter[str] = Counter()
        self._dropped = 0
        self._listeners: list[ErrorListener] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: ErrorListener) -> Callable[[], None]:
        """Call `listener` for every handled error; returns its unregister function."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def handle_error(
        self,
        error: BaseException,
        context: Mapping[str, Any] | None = None,
        severity: ErrorSeverity = ErrorSeverity.MEDIUM,
    ) -> ErrorRecord:
        """Record, log and broadcast `error`; returns the record."""
        if not isinstance(severity, ErrorSeverity):
            raise ValueError(
                f"severity must be an ErrorSeverity ({', '.join(s.name for s in ErrorSeverity)}),"
                f" got {severity!r}"
            )
        record = ErrorRecord(
            at=self._clock(),
            wall_time=time.time(),
            error_type=type(error).__name__,
            message=str(error),
            severity=severity,
            context=dict(context or {}),
        )
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._dropped += 1
            self._records.append(record)
            self._totals[severity.value] += 1
            listeners = list(self._listeners)
        logger.log(
            _LOG_LEVEL[severity],
            "%s error %s: %s (context %s)",
            severity.value,
            record.error_type,
            record.message,
            record.context,
        )
        for listener in listeners:
            try:
                listener(record)
            except Exception:
                logger.exception("error listener %r failed", listener)
        return record

    def _window(self) -> list[ErrorRecord]:
        cutoff = self._clock() - self.window_seconds
        with self._lock:
            while self._records and self._records[0].at < cutoff:
                self._records.popleft()
            return list(self._records)

    def _rate_seconds(self) -> float:
        """The time the window's errors were gathered in: the window, or the handler's age if
        younger, but never under `min_rate_seconds` (one error 1 ms after start is not
        60,000 per minute)."""
        age = self._clock() - self._started
        return min(self.window_seconds, max(age, self.min_rate_seconds))

    def get_error_stats(self) -> dict[str, Any]:
        """Counts over the sliding window (per severity, per type) and all-time totals.

        `errors_per_minute` divides the window's count by `rate_seconds`: the full window once
        the handler is older than it, its age before that (at least `min_rate_seconds`).
        """
        window = self._window()
        rate_seconds = self._rate_seconds()
        by_severity = {s.value: 0 for s in ErrorSeverity}
        by_severity.update(Counter(r.severity.value for r in window))
        with self._lock:
            total = sum(self._totals.values())
            truncated = self._dropped > 0 and len(window) == self._records.maxlen
        last = window[-1] if window else None
        return {
            "total_errors": total,
            "window_seconds": self.window_seconds,
            "errors_in_window": len(window),
            "errors_per_minute": round(len(window) * 60.0 / rate_seconds, 3),
            "rate_seconds": round(rate_seconds, 3),
            "by_severity": by_severity,
            "by_type": dict(Counter(r.error_type for r in window)),
            "last_error": None if last is None else f"{last.error_type}: {last.message}",
            "window_truncated": truncated,
        }


# --- circuit breaker ----------------------------------------------------------------------------


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    """Raised instead of calling through an open circuit."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open; retry in {retry_after:.1f} s")
        self.name = name
        self.retry_after = retry_after


class CallTimeoutError(TimeoutError):
    """The call ran past the breaker's `call_timeout`; it counts as a failure.

    The callable cannot be interrupted: it keeps running in its thread until it returns, and
    its result is then discarded (see `CircuitBreaker`).
    """

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(
            f"circuit {name!r}: call exceeded {timeout:g} s; it still runs in the background"
            " and its result will be discarded"
        )
        self.name = name
        self.timeout = timeout


class TimedOutCallsPendingError(RuntimeError):
    """Refused: `max_timed_out_calls` timed-out calls are still running in the dependency."""

    def __init__(self, name: str, pending: int) -> None:
        super().__init__(
            f"circuit {name!r}: {pending} timed-out call(s) still running in the dependency"
            " (max_timed_out_calls reached); not entering it again until they return"
        )
        self.name = name
        self.pending = pending


class CircuitBreaker:
    """Stops calling a failing dependency for `reset_timeout` seconds, then probes it.

    CLOSED: calls pass; `failure_threshold` consecutive failures open the circuit.
    OPEN: calls fail fast with `CircuitOpenError` until the cool-down has passed.
    HALF_OPEN: up to `half_open_max_calls` trial calls; a success closes, a failure re-opens.
    Only exceptions in `expected_exceptions` count as failures. Use as ``@breaker`` or
    ``breaker.call(fn, ...)``. Thread-safe; calls run concurrently (the lock is not held
    while the dependency runs).

    Generation check: every state change starts a new generation, and a call's outcome only
    moves the state if the call started in the current generation. A success of a call that
    began before the circuit opened (a stale success) does not close it, and a stale failure
    does not re-open a half-open circuit or restart the cool-down: only calls admitted under
    the current state decide. Stale outcomes are counted (`get_stats()["stale_results"]`);
    the caller still gets its result or exception. (pybreaker avoids the race differently:
    it holds its lock around the whole call, so calls through one breaker are serialised,
    https://github.com/danielfm/pybreaker/blob/master/src/pybreaker/__init__.py.)

    Call timeout (`call_timeout` seconds, default None = no timeout): Python cannot interrupt
    a running callable, so with a timeout each call runs in a daemon worker thread and the
    caller waits at most `call_timeout`; past it the caller gets `CallTimeoutError` (a
    `TimeoutError`) and a failure is counted, as Hystrix counts a timeout
    (https://github.com/Netflix/Hystrix/wiki/Configuration#execution.isolation.thread.timeoutInMilliseconds).
    The abandoned call keeps running until the dependency returns; its result is discarded.
    At most `max_timed_out_calls` (default 1) such calls may be running at once: while that
    many are, new calls are refused with `TimedOutCallsPendingError` without entering the
    dependency, so a hung dependency costs a bounded number of threads (and a non-reentrant
    one, such as a llama.cpp context, is never entered twice). `wait_for_timed_out_calls()`
    joins them (at shutdown, in tests). Each call with a timeout costs one thread start.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        expected_exceptions: tuple[type[BaseException], ...] = (Exception,),
        error_handler: ProductionErrorHandler | None = None,
        call_timeout: float | None = None,
        max_timed_out_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if not reset_timeout >= 0:
            raise ValueError(f"reset_timeout must be >= 0 seconds, got {reset_timeout!r}")
        if half_open_max_calls < 1:
            raise ValueError(f"half_open_max_calls must be >= 1, got {half_open_max_calls!r}")
        if call_timeout is not None and (
            isinstance(call_timeout, bool)
            or not isinstance(call_timeout, int | float)
            or not 0 < call_timeout < math.inf
        ):
            raise ValueError(
                f"call_timeout must be a finite number of seconds > 0 (or None), got"
                f" {call_timeout!r}"
            )
        if (
            isinstance(max_timed_out_calls, bool)
            or not isinstance(max_timed_out_calls, int)
            or max_timed_out_calls < 1
        ):
            raise ValueError(
                f"max_timed_out_calls must be an integer >= 1, got {max_timed_out_calls!r}"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = float(reset_timeout)
        self.half_open_max_calls = half_open_max_calls
        self.expected_exceptions = expected_exceptions
        self.error_handler = error_handler
        self.call_timeout = None if call_timeout is None else float(call_timeout)
        self.max_timed_out_calls = max_timed_out_calls
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0
        self._stale = 0
        self._timeouts = 0
        self._abandoned: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._abandoned_done = threading.Condition(self._lock)

    @property
    def state(self) -> CircuitState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _set_state(self, state: CircuitState) -> None:
        """Enter `state` as a new generation (the caller holds the lock)."""
        self._state = state
        self._generation += 1
        self._trials = 0
        if state is CircuitState.OPEN:
            self._opened_at = self._clock()
        else:
            self._failures = 0

    def _maybe_half_open(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._set_state(CircuitState.HALF_OPEN)

    def _before_call(self) -> int:
        """Admit a call or raise; returns the generation the call belongs to."""
        with self._lock:
            self._maybe_half_open()
            if self._state is CircuitState.OPEN:
                retry = self.reset_timeout - (self._clock() - self._opened_at)
                raise CircuitOpenError(self.name, max(0.0, retry))
            if self._abandoned and len(self._abandoned) >= self.max_timed_out_calls:
                raise TimedOutCallsPendingError(self.name, len(self._abandoned))
            if self._state is CircuitState.HALF_OPEN:
                if self._trials >= self.half_open_max_calls:
                    raise CircuitOpenError(self.name, 0.0)
                self._trials += 1
            return self._generation

    def _is_stale(self, generation: int) -> bool:
        """True (and counted) if the call began under an earlier state. Caller holds the lock."""
        if generation == self._generation:
            return False
        self._stale += 1
        return True

    def _on_success(self, generation: int) -> None:
        with self._lock:
            if self._is_stale(generation):
                logger.debug("circuit %r: ignoring a stale success", self.name)
                return
            if self._state is CircuitState.HALF_OPEN:
                self._set_state(CircuitState.CLOSED)
                logger.info("circuit %r closed: half-open trial succeeded", self.name)
            self._failures = 0

    def _on_failure(self, error: BaseException, generation: int) -> None:
        with self._lock:
            if self._is_stale(generation):
                logger.debug("circuit %r: ignoring a stale failure", self.name)
            else:
                self._failures += 1
                if (
                    self._state is CircuitState.HALF_OPEN
                    or self._failures >= self.failure_threshold
                ):
                    self._set_state(CircuitState.OPEN)
                    logger.warning("circuit %r opened: %s", self.name, type(error).__name__)
        if self.error_handler is not None:
            self.error_handler.handle_error(
                error, {"component": "circuit_breaker", "circuit": self.name}, ErrorSeverity.MEDIUM
            )

    def _release_trial(self, generation: int) -> None:
        """Not a failure of the dependency (e.g. KeyboardInterrupt): free the trial slot."""
        with self._lock:
            if generation == self._generation and self._state is CircuitState.HALF_OPEN:
                self._trials = max(0, self._trials - 1)

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        generation = self._before_call()
        try:
            if self.call_timeout is None:
                result = fn(*args, **kwargs)
            else:
                result = self._call_with_timeout(self.call_timeout, fn, *args, **kwargs)
        except CallTimeoutError as error:
            self._on_failure(error, generation)
            raise
        except self.expected_exceptions as error:
            self._on_failure(error, generation)
            raise
        except BaseException:
            self._release_trial(generation)
            raise
        self._on_success(generation)
        return result

    def _call_with_timeout(
        self, timeout: float, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run `fn` in a worker thread; raise CallTimeoutError if it is not done in `timeout`."""
        done = threading.Event()
        outcome: list[Any] = []  # [result] or [None, exception]
        context = contextvars.copy_context()

        def run() -> None:
            try:
                outcome.append(context.run(fn, *args, **kwargs))
            except BaseException as error:  # handed to the caller, or discarded if abandoned
                outcome.extend((None, error))
            finally:
                with self._lock:
                    done.set()
                    if threading.current_thread() in self._abandoned:
                        self._abandoned.discard(threading.current_thread())
                        self._abandoned_done.notify_all()
                        logger.info(
                            "circuit %r: a timed-out call returned; result discarded", self.name
                        )

        worker = threading.Thread(target=run, name=f"CircuitBreaker-{self.name}-call", daemon=True)
        worker.start()
        if not done.wait(timeout):
            with self._lock:
                if not done.is_set():
                    self._abandoned.add(worker)
                    self._timeouts += 1
                    raise CallTimeoutError(self.name, timeout)
        worker.join()
        if len(outcome) == 2:
            error = outcome[1]
            try:
                raise error
            finally:
                del error, outcome[:]  # no reference cycle through the traceback
        return cast(R, outcome[0])

    @property
    def pending_timed_out_calls(self) -> int:
        """Timed-out calls whose dependency call has not returned yet."""
        with self._lock:
            return len(self._abandoned)

    def wait_for_timed_out_calls(self, timeout: float | None = None) -> bool:
        """Wait until every timed-out call has returned; False if some still run after `timeout`."""
        with self._abandoned_done:
            return self._abandoned_done.wait_for(lambda: not self._abandoned, timeout)

    def get_stats(self) -> dict[str, Any]:
        with self._lock:
            self._maybe_half_open()
            return {
                "name": self.name,
                "state": self._state.value,
                "generation": self._generation,
                "consecutive_failures": self._failures,
                "stale_results": self._stale,
                "timeouts": self._timeouts,
                "timed_out_calls_running": len(self._abandoned),
            }

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return wrapper


# --- graceful degradation -----------------------------------------------------------------------


@dataclass(frozen=True)
class DegradationLevel:
    """One step of degradation: the features it turns off (cumulative) and its settings.

    `context_fraction` and `worker_fraction` are the share of the full context window and of
    the full worker count this level runs with (1.0 = unchanged); `SelfHealingController`
    (reference_impl/self_healing.py) applies them to the context system and the engine.
    """

    name: str
    description: str
    disabled: tuple[str, ...]
    context_fraction: float = 1.0
    worker_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name in ("context_fraction", "worker_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValueError(
                    f"DegradationLevel {self.name!r}: {name} must be in (0, 1], got {value!r}"
                )

    def context_tokens(self, full: int, minimum: int = 1) -> int:
        """The window for this level, given the `full` one (never below `minimum`)."""
        return max(min(minimum, full), int(full * self.context_fraction))

    def workers(self, full: int) -> int:
        """The worker count for this level, given the `full` one (at least 1)."""
        return max(1, int(full * self.worker_fraction))


# Each llama.cpp slot (a worker) holds its own KV cache, and the KV cache grows with the window
# (memory_management.kv_cache_mb): halving both is the first step that frees memory at once.
DEFAULT_DEGRADATION_LEVELS: tuple[DegradationLevel, ...] = (
    DegradationLevel("full", "all features on", ()),
    DegradationLevel(
        "reduced_context",
        "context window halved, half the workers",
        ("long_context",),
        context_fraction=0.5,
        worker_fraction=0.5,
    ),
    DegradationLevel(
        "smaller_model",
        "switch to the smaller model; a quarter of the window and workers",
        ("long_context", "large_model"),
        context_fraction=0.25,
        worker_fraction=0.25,
    ),
    DegradationLevel(
        "cache_only",
        "answer from cache; no model inference",
        ("long_context", "large_model", "model_inference"),
        context_fraction=0.25,
        worker_fraction=0.25,
    ),
    DegradationLevel(
        "offline",
        "no inference and no network: cached answers only, sync paused",
        ("long_context", "large_model", "model_inference", "network", "background_sync"),
        context_fraction=0.25,
        worker_fraction=0.25,
    ),
)


class DegradationListener(Protocol):
    """Told about every level change, after it happened, with its reason."""

    def __call__(self, old: DegradationLevel, new: DegradationLevel, reason: str) -> None: ...


class GracefulDegradationManager:
    """Steps through named degradation levels.

    `increase_degradation` / `decrease_degradation` act at once (clamped at both ends).
    Automatic recovery has hysteresis: `record_success` steps down one level only after
    `recovery_successes` consecutive successes and `recovery_cooldown` seconds since the last
    escalation, so one good call does not undo a degradation. With an error handler, errors
    of a severity in `escalate_on` (default CRITICAL) escalate one level; any error resets the
    success streak.
    """

    def __init__(
        self,
        error_handler: ProductionErrorHandler | None = None,
        *,
        levels: tuple[DegradationLevel, ...] = DEFAULT_DEGRADATION_LEVELS,
        recovery_successes: int = 10,
        recovery_cooldown: float = 30.0,
        escalate_on: frozenset[ErrorSeverity] = frozenset({ErrorSeverity.CRITICAL}),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(levels) < 2:
            raise ValueError(f"levels must name at least 2 levels, got {len(levels)}")
        if recovery_successes < 1:
            raise ValueError(f"recovery_successes must be >= 1, got {recovery_successes!r}")
        if not recovery_cooldown >= 0:
            raise ValueError(f"recovery_cooldown must be >= 0 seconds, got {recovery_cooldown!r}")
        self.levels = levels
        self.recovery_successes = recovery_successes
        self.recovery_cooldown = float(recovery_cooldown)
        self.escalate_on = escalate_on
        self._clock = clock
        self._index = 0
        self._streak = 0
        self._last_escalation = -float("inf")
        self._last_reason = "start"
        self._lock = threading.RLock()
        self._listeners: list[DegradationListener] = []
        self._changes: deque[tuple[DegradationLevel, DegradationLevel, str]] = deque()
        self._notifying = False
        self.error_handler = error_handler
        if error_handler is not None:
            error_handler.add_listener(self._on_error)

    def add_listener(self, listener: DegradationListener) -> Callable[[], None]:
        """Call `listener(old, new, reason)` after every level change; returns its remover.

        Listeners run outside the manager's lock, in the order the changes happened, one
        change at a time (a change made by a listener is delivered after the current one).
        A listener that raises is logged and does not stop the others.
        """
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _changed(self, old: int, reason: str) -> None:
        """Queue a change for the listeners (the caller holds the lock)."""
        self._changes.append((self.levels[old], self.levels[self._index], reason))

    def _notify(self) -> None:
        """Deliver queued changes; only one thread delivers at a time, in order."""
        while True:
            with self._lock:
                if self._notifying or not self._changes:
                    return
                self._notifying = True
                old, new, reason = self._changes.popleft()
                listeners = list(self._listeners)
            try:
                for listener in listeners:
                    try:
                        listener(old, new, reason)
                    except Exception:
                        logger.exception("degradation listener %r failed", listener)
            finally:
                with self._lock:
                    self._notifying = False

    @property
    def level(self) -> DegradationLevel:
        with self._lock:
            return self.levels[self._index]

    @property
    def level_index(self) -> int:
        with self._lock:
            return self._index

    def is_enabled(self, feature: str) -> bool:
        """False if the current level turns `feature` off."""
        return feature not in self.level.disabled

    def increase_degradation(self, reason: str = "manual") -> DegradationLevel:
        with self._lock:
            if self._index < len(self.levels) - 1:
                self._index += 1
                logger.warning("degraded to %s (%s)", self.levels[self._index].name, reason)
                self._changed(self._index - 1, reason)
            self._streak = 0
            self._last_escalation = self._clock()
            self._last_reason = reason
            level = self.levels[self._index]
        self._notify()
        return level

    def decrease_degradation(self, reason: str = "manual") -> DegradationLevel:
        with self._lock:
            level = self._step_down(reason)
        self._notify()
        return level

    def _step_down(self, reason: str) -> DegradationLevel:
        """One level down (clamped); the caller holds the lock and notifies after releasing it."""
        if self._index > 0:
            self._index -= 1
            logger.info("recovered to %s (%s)", self.levels[self._index].name, reason)
            self._changed(self._index + 1, reason)
        self._streak = 0
        self._last_reason = reason
        return self.levels[self._index]

    def record_success(self) -> DegradationLevel:
        """Count a healthy operation; may step down one level (see class docstring)."""
        with self._lock:
            self._streak += 1
            cooled = self._clock() - self._last_escalation >= self.recovery_cooldown
            if self._index > 0 and self._streak >= self.recovery_successes and cooled:
                level = self._step_down(f"{self._streak} consecutive successes after cool-down")
            else:
                level = self.levels[self._index]
        self._notify()
        return level

    def record_failure(self) -> None:
        with self._lock:
            self._streak = 0

    def _on_error(self, record: ErrorRecord) -> None:
        if record.severity in self.escalate_on:
            self.increase_degradation(f"{record.severity.value} {record.error_type}")
        else:
            self.record_failure()

    def get_degradation_status(self) -> dict[str, Any]:
        with self._lock:
            level = self.levels[self._index]
            return {
                "level": self._index,
                "name": level.name,
                "disabled_features": list(level.disabled),
                "reason": self._last_reason,
                "context_fraction": level.context_fraction,
                "worker_fraction": level.worker_fraction,
            }


# --- state persistence --------------------------------------------------------------------------

FORMAT_VERSION = 1
_MAGIC = b"PYTEST-EDGE-STATE v"
# Values at least this large are written as they are; smaller pieces are joined up to it.
_COALESCE_BYTES = 64 * 1024


class StateCorruptedError(ValueError):
    """No valid state file: names every file tried and what was wrong with it."""

    def __init__(self, path: Path, problems: list[tuple[Path, str]]) -> None:
        detail = "; ".join(f"{p}: {why}" for p, why in problems)
        super().__init__(f"no valid state for {path}: {detail}")
        self.path = path
        self.problems = problems


class StateWriteError(OSError):
    """Writing the new state failed; the previous file on disk is intact. Retrying is safe."""


class StateDurabilityError(StateWriteError):
    """fsync failed: what is on disk is unknown. Fatal for this manager, never retried."""


@dataclass(frozen=True)
class SaveReport:
    """What `save_state` did. `set_aside`: a damaged file moved aside instead of overwritten."""

    path: Path
    generation: int
    bytes_written: int
    rotated_previous: bool
    set_aside: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LoadReport:
    """What `load_state` found.

    `source` is "current", "previous" or "none" (no state: no file yet, or only zero-length
    ones). `problem` says what was wrong with the files passed over; `migrated_from` names
    the earlier format the state was read from ("plain JSON"), None for the current format;
    `set_aside` lists damaged files moved aside (``<name>.damaged-<time>-<random>``).
    """

    path: Path
    source: str
    generation: int
    fell_back: bool
    problem: str | None = None
    migrated_from: str | None = None
    set_aside: tuple[Path, ...] = ()


def _json_problem(value: Any, where: str) -> str | None:
    """Where `value` stops being plain JSON (str keys; finite floats), or None."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{where} is {value!r}"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                return f"{where} has a non-string key {k!r}"
            problem = _json_problem(item, f"{where}[{k!r}]")
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}"


def _encode(key: str, value: Any) -> bytes:
    problem = _json_problem(value, f"state[{key!r}]")
    if problem is not None:
        raise TypeError(
            f"state values must be JSON-serialisable (str, int, finite float, bool, None, "
            f"lists, dicts with str keys): {problem}"
        )
    # ASCII escapes keep any Python str, lone surrogates included, exactly round-trippable.
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dir_fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StatePersistenceManager:
    """Key-value agent state saved so that a crash at any instant leaves a valid file.

    Values are JSON, snapshotted when set (`set_state` encodes them at once, so a value that
    is not JSON raises `TypeError` before anything is written, and later changes to the object
    passed in are not saved: set it again). `save_state`:

    1. if a valid current file exists, hard-links it to ``<name>.prev`` (the previous
       generation; copied where the filesystem has no hard links);
    2. writes ``<name>.tmp-<pid>-<random>`` in the same directory with unbuffered
       ``os.write`` (nothing left in a user-space buffer) and fsyncs it;
    3. ``os.replace``-s it over the file, then fsyncs the directory.

    The file holds a format line (magic, version, CRC-32), a metadata line (generation,
    payload length, time) and the JSON payload; CRC-32 covers metadata and payload.
    `load_state` falls back to the previous generation when the current file is damaged or
    missing and says so in its `LoadReport`; with nothing valid it raises
    `StateCorruptedError` naming each file. An fsync error raises `StateDurabilityError` and
    the manager refuses further saves (restart and load instead): it is never retried.

    The previous generation appears from the second save on; `remove_files()` deletes the
    file and its previous generation.
    """

    def __init__(self, storage_path: str | os.PathLike[str]) -> None:
        self.storage_path = Path(storage_path)
        self._encoded: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._generation = 0
        self._known_current: tuple[int, int, int, int] | None = None
        self._dirty = False
        self._fatal: str | None = None
        self._last_saved: float | None = None
        self._last_size: int | None = None
        self._last_load: LoadReport | None = None
        self._swept = False
        # load_state fell back to the previous generation: a save without a current file
        # keeps it (it is this history, not an orphan of a deleted one).
        self._previous_is_loaded = False

    @property
    def previous_path(self) -> Path:
        return self.storage_path.with_name(self.storage_path.name + ".prev")

    # -- in-memory state ----------------------------------------------------------------------

    def set_state(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str, got {type(key).__name__} {key!r}")
        encoded = _encode(key, value)
        with self._lock:
            self._encoded[key] = encoded
            self._dirty = True

    def get_state(self, key: str, default: Any = None) -> Any:
        """A fresh copy of the value stored under `key`, or `default`."""
        with self._lock:
            encoded = self._encoded.get(key)
        return default if encoded is None else json.loads(encoded)

    def delete_state(self, key: str) -> None:
        with self._lock:
            if self._encoded.pop(key, None) is not None:
                self._dirty = True

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._encoded)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {k: json.loads(v) for k, v in self._encoded.items()}

    # -- file format ----------------------------------------------------------------------------

    def _payload_chunks(self) -> list[bytes]:
        """The payload as chunks: small pieces joined, large values passed through uncopied."""
        chunks: list[bytes] = []
        small: list[bytes] = [b"{"]
        small_size = 1
        for index, (key, value) in enumerate(self._encoded.items()):
            small.append((b"," if index else b"") + json.dumps(key).encode("ascii") + b":")
            if len(value) >= _COALESCE_BYTES:
                chunks.append(b"".join(small))
                chunks.append(value)
                small, small_size = [], 0
                continue
            small.append(value)
            small_size += len(value)
            if small_size >= _COALESCE_BYTES:
                chunks.append(b"".join(small))
                small, small_size = [], 0
        small.append(b"}")
        chunks.append(b"".join(small))
        return chunks

    @staticmethod
    def _frame(generation: int, chunks: list[bytes]) -> bytes:
        """The format and metadata lines for a payload made of `chunks`."""
        meta = json.dumps(
            {"generation": generation, "length": sum(map(len, chunks)), "saved_at": time.time()},
            separators=(",", ":"),
        ).encode("ascii")
        meta += b"\n"
        crc = zlib.crc32(meta)
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
        return _MAGIC + b"%d crc32=%08x\n" % (FORMAT_VERSION, crc) + meta

    @staticmethod
    def _parse_plain_json(data: bytes) -> dict[str, bytes]:
        """The state of the earlier plain-JSON format: one JSON object, key -> value."""

        def reject(constant: str) -> None:
            raise ValueError(f"plain-JSON state holds {constant}, which is not JSON")

        try:
            state = json.loads(data, parse_constant=reject)
        except UnicodeDecodeError as error:
            raise ValueError(
                f"not a pytest-edge state file, nor a plain-JSON state (not text: {error})"
            ) from error
        except json.JSONDecodeError as error:
            raise ValueError(
                f"not a pytest-edge state file, nor a plain-JSON state ({error})"
            ) from error
        if not isinstance(state, dict):
            raise ValueError(
                f"not a pytest-edge state file (plain JSON, but a {type(state).__name__},"
                " not an object)"
            )
        return {k: _encode(k, v) for k, v in state.items()}

    @classmethod
    def _parse(cls, data: bytes) -> tuple[int, dict[str, bytes], str | None]:
        """(generation, encoded values, earlier format or None) of a state file's bytes.

        Raises ValueError saying what is wrong.
        """
        if not data:
            raise ValueError("not a pytest-edge state file: zero-length (empty) file")
        if data.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"{":
            # No version before the framed one ever wrote a format line: an earlier release
            # (the chapter's demo) saved the state dict as plain JSON. Generation 0.
            return 0, cls._parse_plain_json(data), "plain JSON"
        first, sep, rest = data.partition(b"\n")
        if not sep or not first.startswith(_MAGIC):
            raise ValueError("not a pytest-edge state file (bad or missing format line)")
        version_text, _, crc_text = first[len(_MAGIC) :].partition(b" crc32=")
        if not version_text.isdigit():
            raise ValueError("damaged format line")
        if int(version_text) != FORMAT_VERSION:
            raise ValueError(
                f"format version {int(version_text)} is not supported (this code reads"
                f" {FORMAT_VERSION})"
            )
        meta_line, sep, payload = rest.partition(b"\n")
        if not sep:
            raise ValueError("truncated before the payload")
        # Exactly the form written (8 lowercase hex digits): int(..., 16) alone would also take
        # "D080CBAB" or "d0_80cbab", so a flipped case bit in the field would go unnoticed.
        if len(crc_text) != 8 or crc_text.strip(b"0123456789abcdef"):
            raise ValueError("damaged checksum field")
        expected_crc = int(crc_text, 16)
        actual = zlib.crc32(payload, zlib.crc32(meta_line + b"\n"))
        if actual != expected_crc:
            raise ValueError(
                f"checksum mismatch (stored {expected_crc:08x}, computed {actual:08x}):"
                " truncated or damaged"
            )
        meta = json.loads(meta_line)
        if not isinstance(meta, dict) or meta.get("length") != len(payload):
            raise ValueError("payload length does not match the metadata")
        state = json.loads(payload)
        if not isinstance(state, dict):
            raise ValueError("payload is not a JSON object")
        generation = meta.get("generation")
        if not isinstance(generation, int):
            raise ValueError("metadata has no generation number")
        encoded = {
            k: json.dumps(v, separators=(",", ":")).encode("ascii") for k, v in state.items()
        }
        return generation, encoded, None

    def _read(self, path: Path) -> tuple[int, dict[str, bytes], str | None]:
        with open(path, "rb") as f:
            data = f.read()
        return self._parse(data)

    @staticmethod
    def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    # -- save -----------------------------------------------------------------------------------

    def _temp_path(self) -> Path:
        name = f"{self.storage_path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        return self.storage_path.with_name(name)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temp files a killed process left next to the state file; returns them.

        Only files named ``<name>.tmp-<pid>-<random>`` whose process no longer exists are
        removed, so a save running in another live process is never disturbed.
        """
        prefix = f"{self.storage_path.name}.tmp-"
        directory = self.storage_path.parent
        removed: list[Path] = []
        try:
            names = os.listdir(directory)
        except OSError:
            return removed
        for name in names:
            pid_text = name[len(prefix) :].split("-", 1)[0]
            if not name.startswith(prefix) or not pid_text.isdigit():
                continue
            if _process_exists(int(pid_text)):
                continue
            path = directory / name
            self._unlink_quietly(path)
            removed.append(path)
        return removed

    def _write_durably(self, path: Path, chunks: tuple[bytes, ...]) -> None:
        """Create `path` (must not exist), write `chunks`, fsync. Removes it on any failure."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as error:
            raise StateWriteError(
                error.errno, f"creating {path} failed: {error.strerror}", str(path)
            ) from error
        try:
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        if written <= 0:
                            raise OSError(errno.EIO, "write made no progress", str(path))
                        view = view[written:]
            except OSError as error:
                raise StateWriteError(
                    error.errno, f"writing {path} failed: {error.strerror}", str(path)
                ) from error
            try:
                os.fsync(fd)
            except OSError as error:
                self._fatal = f"fsync of {path} failed: {error.strerror or error}"
                raise StateDurabilityError(error.errno, self._fatal, str(path)) from error
        except BaseException:
            os.close(fd)
            self._unlink_quietly(path)
            raise
        os.close(fd)

    @staticmethod
    def _unlink_quietly(path: Path) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)

    def _current_is_valid(self, st: os.stat_result) -> bool:
        if self._stat_key(st) == self._known_current:
            return True
        try:
            generation, _, _ = self._read(self.storage_path)
        except (OSError, ValueError) as problem:
            logger.warning(
                "not keeping %s as the previous generation: %s", self.storage_path, problem
            )
            return False
        self._generation = max(self._generation, generation)
        return True

    def _rotate_previous(self) -> None:
        """Make the current file the previous generation (hard link; copy if unsupported)."""
        with contextlib.suppress(OSError):
            if os.path.samestat(os.stat(self.storage_path), os.stat(self.previous_path)):
                # An earlier save rotated, then failed before replacing the current file: the
                # previous generation already is this file. Renaming a second hard link of it
                # over it would be a no-op that leaves the temporary link behind (POSIX
                # rename() of two links to one file does nothing), one per failed save.
                return
        temp = self._temp_path()
        try:
            os.link(self.storage_path, temp)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
                raise
            with open(self.storage_path, "rb") as f:
                data = f.read()
            self._write_durably(temp, (data,))
        try:
            os.replace(temp, self.previous_path)
        except OSError:
            self._unlink_quietly(temp)
            raise

    def save_state(self) -> SaveReport:
        """Write the state crash-safely (see the class docstring)."""
        with self._lock:
            if self._fatal is not None:
                raise StateDurabilityError(
                    errno.EIO,
                    f"refusing to save {self.storage_path}: an earlier {self._fatal}; what is"
                    " on disk is unknown. Restart and load_state() to recover.",
                    str(self.storage_path),
                )
            if not self._swept:
                self.remove_stale_temp_files()
                self._swept = True
            chunks = self._payload_chunks()
            directory = self.storage_path.parent
            try:
                st: os.stat_result | None = os.stat(self.storage_path)
            except FileNotFoundError:
                st = None
            rotated = False
            set_aside: tuple[Path, ...] = ()
            try:
                if st is None:
                    if not self._previous_is_loaded:
                        # A previous generation without a current file belongs to a deleted
                        # history; it must not become the fallback of this new one.
                        self._unlink_quietly(self.previous_path)
                elif self._current_is_valid(st):
                    self._rotate_previous()
                    rotated = True
                else:
                    # Damaged: never overwrite what a human may still want to read.
                    set_aside = self._set_aside(self.storage_path)
            except StateWriteError:
                raise
            except OSError as error:
                raise StateWriteError(
                    error.errno,
                    f"keeping the previous generation of {self.storage_path} failed:"
                    f" {error.strerror}",
                    str(self.previous_path),
                ) from error
            generation = self._generation + 1
            head = self._frame(generation, chunks)
            temp = self._temp_path()
            self._write_durably(temp, (head, *chunks))
            try:
                new_stat = os.stat(temp)
                os.replace(temp, self.storage_path)
            except OSError as error:
                self._unlink_quietly(temp)
                raise StateWriteError(
                    error.errno,
                    f"replacing {self.storage_path} failed: {error.strerror}",
                    str(self.storage_path),
                ) from error
            try:
                _dir_fsync(directory)
            except OSError as error:
                self._fatal = f"fsync of directory {directory} failed: {error.strerror or error}"
                raise StateDurabilityError(error.errno, self._fatal, str(directory)) from error
            self._generation = generation
            self._known_current = self._stat_key(new_stat)
            self._previous_is_loaded = False
            self._dirty = False
            self._last_saved = time.time()
            self._last_size = len(head) + sum(map(len, chunks))
            return SaveReport(self.storage_path, generation, self._last_size, rotated, set_aside)

    # -- load -----------------------------------------------------------------------------------

    def load_state(self) -> LoadReport:
        """Replace the in-memory state with the newest valid generation on disk.

        A damaged current file is passed over for the previous generation and set aside
        (renamed, never deleted). Only zero-length or missing files: an empty state, said in
        the report (zero bytes hold no state). A plain-JSON file of an earlier version is read
        as the state (`migrated_from`); the next save writes the current format and keeps the
        plain file as the previous generation. Nothing valid otherwise: `StateCorruptedError`.
        """
        with self._lock:
            if not self._swept:
                self.remove_stale_temp_files()
                self._swept = True
            problems: list[tuple[Path, str]] = []
            empty: list[Path] = []
            for source, path in (("current", self.storage_path), ("previous", self.previous_path)):
                try:
                    st = os.stat(path)
                    generation, encoded, earlier = self._read(path)
                except FileNotFoundError:
                    problems.append((path, "missing"))
                    continue
                except (OSError, ValueError) as error:
                    problems.append((path, str(error)))
                    if isinstance(error, ValueError) and st.st_size == 0:
                        empty.append(path)
                    continue
                set_aside: tuple[Path, ...] = ()
                if source == "previous" and problems[0][1] != "missing":
                    set_aside = self._set_aside(self.storage_path)
                return self._loaded(
                    LoadReport(
                        path,
                        source,
                        generation,
                        source == "previous",
                        self._describe(problems, source == "previous"),
                        earlier,
                        set_aside,
                    ),
                    encoded,
                    st,
                )
            if all(why == "missing" or p in empty for p, why in problems):
                report = LoadReport(
                    self.storage_path,
                    "none",
                    0,
                    False,
                    self._describe(problems),
                    None,
                    tuple(q for p in empty for q in self._set_aside(p)),
                )
                return self._loaded(report, {}, None)
            raise StateCorruptedError(self.storage_path, problems)

    @staticmethod
    def _describe(problems: list[tuple[Path, str]], fell_back: bool = False) -> str | None:
        """What was wrong, or None when files were only missing (normal before a first save)."""
        if not fell_back and all(why == "missing" for _, why in problems):
            return None
        return "; ".join(f"{p}: {why}" for p, why in problems)

    def _loaded(
        self, report: LoadReport, encoded: dict[str, bytes], st: os.stat_result | None
    ) -> LoadReport:
        """Adopt what `load_state` found (the caller holds the lock)."""
        self._encoded = encoded
        self._generation = max(self._generation, report.generation)
        self._known_current = (
            self._stat_key(st) if st is not None and report.source == "current" else None
        )
        self._previous_is_loaded = report.source == "previous"
        self._dirty = False
        if report.fell_back:
            logger.warning(
                "state %s unusable (%s); fell back to the previous generation %s%s",
                self.storage_path,
                report.problem,
                report.path,
                "".join(f"; damaged file kept as {p}" for p in report.set_aside),
            )
        elif report.problem:
            logger.warning("state %s: %s; starting empty", self.storage_path, report.problem)
        if report.migrated_from:
            logger.info(
                "state %s read from the earlier %s format; the next save migrates it",
                report.path,
                report.migrated_from,
            )
        self._last_load = report
        return report

    def _set_aside(self, path: Path) -> tuple[Path, ...]:
        """Rename a damaged file to ``<name>.damaged-<UTC time>-<random>``; () if that fails."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = path.with_name(f"{path.name}.damaged-{stamp}-{secrets.token_hex(3)}")
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return ()
        except OSError as error:
            logger.warning("could not set the damaged %s aside: %s", path, error)
            return ()
        logger.warning("damaged state file %s kept as %s", path, target)
        return (target,)

    # -- housekeeping ---------------------------------------------------------------------------

    def remove_files(self) -> None:
        """Delete the state file, its previous generation and damaged copies set aside."""
        with self._lock:
            for path in (self.storage_path, self.previous_path, *self.damaged_files()):
                self._unlink_quietly(path)
            self._known_current = None
            self._previous_is_loaded = False

    def damaged_files(self) -> list[Path]:
        """Damaged state files set aside by `load_state` or `save_state`, oldest name first."""
        prefix = f"{self.storage_path.name}.damaged-"
        try:
            names = os.listdir(self.storage_path.parent)
        except OSError:
            return []
        return sorted(self.storage_path.parent / n for n in names if n.startswith(prefix))

    def get_state_summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "storage_path": str(self.storage_path),
                "keys": list(self._encoded),
                "key_count": len(self._encoded),
                "generation": self._generation,
                "unsaved_changes": self._dirty,
                "last_saved_bytes": self._last_size,
                "last_saved_at": (
                    None
                    if self._last_saved is None
                    else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._last_saved))
                ),
                "loaded_from": None if self._last_load is None else self._last_load.source,
            }


def _demo() -> None:
    import tempfile

    logging.basicConfig(level=logging.WARNING, format="  [log] %(levelname)s %(message)s")
    handler = ProductionErrorHandler()
    degradation = GracefulDegradationManager(handler)
    for error, severity in (
        (ValueError("bad input"), ErrorSeverity.LOW),
        (SystemError("GPU driver lost"), ErrorSeverity.CRITICAL),
    ):
        handler.handle_error(error, {"component": "demo"}, severity)
    print("Error stats:", handler.get_error_stats())
    print("Degradation after a CRITICAL error:", degradation.get_degradation_status())

    breaker = CircuitBreaker("llm-server", failure_threshold=2, reset_timeout=60.0)

    @breaker
    def flaky() -> str:
        raise ConnectionError("connection refused")

    for _ in range(3):
        try:
            flaky()
        except (ConnectionError, CircuitOpenError) as error:
            print(f"Circuit {breaker.state.value}: {type(error).__name__}: {error}")

    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "agent_state.json"
        manager = StatePersistenceManager(path)
        manager.set_state("goal", "plan a trip")
        print("Saved:", manager.save_state())
        manager.set_state("goal", "plan a trip to Mars")
        print("Saved:", manager.save_state())
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x01  # flip one bit in the newest file
        path.write_bytes(bytes(data))
        restarted = StatePersistenceManager(path)
        print("Loaded after damage:", restarted.load_state())
        print("Recovered goal:", restarted.get_state("goal"))


if __name__ == "__main__":
    _demo()
