"""Self-healing: memory pressure drives degradation, and degradation changes real settings.

`SelfHealingController` closes the loop the chapter describes but never wires:

    memory watermark (DeviceMemoryManager) / PSI  ->  GracefulDegradationManager level
        ->  set_context_window(tokens), set_worker_count(n)   (the level's concrete settings)

- **Escalation is immediate**: a watermark change (`DeviceMemoryManager.on_level_change`) or a
  check that sees more pressure raises the degradation level to what the pressure calls for.
- **Recovery has hysteresis**: the watermark itself only falls below a level once usage drops
  under the threshold minus its band, and the controller then steps down one level only after
  `recovery_checks` consecutive `check()` calls that all call for less; one low reading
  between high ones resets the streak, so it does not flap.
- **It only undoes its own escalations**: a level raised by something else (a CRITICAL error
  through the error handler) is left to that mechanism.
- **Settings follow the level, whoever changed it**: the controller listens to the
  degradation manager and applies the new level's `context_fraction` / `worker_fraction` of
  the full window and worker count through the callables it was given.
- **Every transition is logged with its reason** and kept in `transitions`.

PSI (``/proc/pressure/memory``, https://docs.kernel.org/accounting/psi.html) is read through
`pressure_source`, a callable returning ``(some_avg10, full_avg10)`` in percent, or None where
the file is absent; `psi_pressure_source()` makes one over
`memory_management.read_memory_pressure`. Its thresholds follow Android's lmkd, which calls
pressure medium when tasks stall on memory for more than 70 ms of a second ("some",
`ro.lmk.psi_partial_stall_ms`) and critical past 700 ms ("full",
`ro.lmk.psi_complete_stall_ms`), https://source.android.com/docs/core/perf/lmkd: here some
avg10 >= 7% asks for level 1 and full avg10 >= 70% for level 2. lmkd measures 1 s windows
with PSI triggers; avg10 is a 10 s average, so these are estimates of the same bar, tunable
with `pressure_thresholds`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reference_impl import memory_management
from reference_impl.memory_management import DeviceMemoryManager, PressureStall, WatermarkLevel
from reference_impl.production_patterns import DegradationLevel, GracefulDegradationManager

__all__ = [
    "DEFAULT_WATERMARK_DEGRADATION",
    "HealingTransition",
    "PressureSource",
    "SelfHealingController",
    "pressure_from_stall",
    "psi_pressure_source",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

# Degradation level (index into the manager's levels) each watermark calls for.
DEFAULT_WATERMARK_DEGRADATION: Mapping[WatermarkLevel, int] = {
    WatermarkLevel.NORMAL: 0,
    WatermarkLevel.LOW: 0,  # trim caches; the app's own business, no degradation yet
    WatermarkLevel.MEDIUM: 1,
    WatermarkLevel.HIGH: 2,
}

PressureSource = Callable[[], "tuple[float, float] | None"]


def pressure_from_stall(stall: PressureStall | None) -> tuple[float, float] | None:
    """``(some avg10, full avg10)`` in percent of a PSI reading, None for no reading.

    ``full`` is None where the kernel has no full line (before Linux 5.13 for CPU, never for
    memory in practice): read as 0.
    """
    if stall is None:
        return None
    return stall.some.avg10, 0.0 if stall.full is None else stall.full.avg10


def psi_pressure_source(
    reader: Callable[[], PressureStall | None] | None = None,
) -> PressureSource:
    """A `pressure_source` over `reader` (default `memory_management.read_memory_pressure`:
    ``/proc/pressure/memory`` of the current machine, None on a simulated device or where the
    file is absent)."""
    read = memory_management.read_memory_pressure if reader is None else reader

    def source() -> tuple[float, float] | None:
        return pressure_from_stall(read())

    return source


@dataclass(frozen=True)
class HealingTransition:
    """One level change and the settings applied for it."""

    at: float
    old: str
    new: str
    reason: str
    context_tokens: int
    workers: int
    errors: tuple[str, ...] = ()


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class SelfHealingController:
    """Drives `degradation` from memory pressure and applies each level's settings.

    `full_context_tokens` / `full_workers` are the settings at level 0; a level runs with its
    `context_fraction` / `worker_fraction` of them (never below `min_context_tokens` tokens or
    1 worker), applied through `set_context_window(tokens)` and `set_worker_count(n)` (e.g.
    `ThreeTieredContextSystem.set_context_window`, `ThreadSafeEngine.set_worker_count`).
    Call `attach(memory_manager)` to react to watermark changes as they are observed, and
    `check()` periodically (or `start(interval)` for a background thread) to read the
    watermark and PSI and to recover. `close()` detaches and stops the thread. Thread-safe.
    """

    def __init__(
        self,
        degradation: GracefulDegradationManager,
        *,
        full_context_tokens: int,
        full_workers: int,
        set_context_window: Callable[[int], object] | None = None,
        set_worker_count: Callable[[int], object] | None = None,
        min_context_tokens: int = 256,
        watermark_degradation: Mapping[WatermarkLevel, int] = DEFAULT_WATERMARK_DEGRADATION,
        pressure_source: PressureSource | None = None,
        pressure_thresholds: tuple[float, float] = (7.0, 70.0),
        recovery_checks: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_context_tokens = _positive_int("full_context_tokens", full_context_tokens)
        self.full_workers = _positive_int("full_workers", full_workers)
        self.min_context_tokens = _positive_int("min_context_tokens", min_context_tokens)
        self.recovery_checks = _positive_int("recovery_checks", recovery_checks)
        top = len(degradation.levels) - 1
        for level, index in watermark_degradation.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= top:
                raise ValueError(
                    f"watermark_degradation[{level!r}] must be a level index in 0..{top},"
                    f" got {index!r}"
                )
        some, full = pressure_thresholds
        if not (0 < some <= 100 and 0 < full <= 100):
            raise ValueError(
                f"pressure_thresholds must be two percentages in (0, 100], got"
                f" {pressure_thresholds!r}"
            )
        self.degradation = degradation
        self.watermark_degradation = dict(watermark_degradation)
        self.pressure_thresholds = (float(some), float(full))
        self._set_context_window = set_context_window
        self._set_worker_count = set_worker_count
        self._pressure_source = pressure_source
        self._clock = clock
        self._lock = threading.RLock()
        self._imposed = 0  # the highest level this controller escalated to and still owns
        self._streak = 0
        self._watermark = WatermarkLevel.NORMAL
        self._pressure: tuple[float, float] | None = None
        self._applied = (self.full_context_tokens, self.full_workers)
        self._transitions: list[HealingTransition] = []
        self._manager: DeviceMemoryManager | None = None
        self._detach: list[Callable[[], None]] = [degradation.add_listener(self._on_level)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, manager: DeviceMemoryManager) -> None:
        """React to `manager`'s watermark changes, and read it in `check()`."""
        with self._lock:
            if self._manager is not None:
                raise RuntimeError("SelfHealingController is already attached to a manager")
            self._manager = manager
            self._watermark = manager.watermark_level
            self._detach.append(manager.on_level_change(self._on_watermark))

    def start(self, interval: float = 1.0) -> None:
        """Call `check()` every `interval` seconds in a daemon thread until `close()`."""
        if not 0 < interval < math.inf:
            raise ValueError(f"interval must be a finite number of seconds > 0, got {interval!r}")
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("SelfHealingController is already polling")
            self._thread = threading.Thread(
                target=self._poll, args=(interval,), name="SelfHealingController", daemon=True
            )
            self._thread.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:
                logger.exception("self-healing check failed")

    def close(self) -> None:
        """Stop polling and stop listening; the current settings stay as they are."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            detach, self._detach = self._detach, []
        for remove in detach:
            remove()

    def __enter__(self) -> SelfHealingController:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- decisions ------------------------------------------------------------------------------

    def _pressure_level(self, pressure: tuple[float, float] | None) -> int:
        if pressure is None:
            return 0
        some, full = pressure
        if full >= self.pressure_thresholds[1]:
            return 2
        return 1 if some >= self.pressure_thresholds[0] else 0

    def wanted_level(self) -> int:
        """The degradation level the last observed pressure calls for."""
        with self._lock:
            top = len(self.degradation.levels) - 1
            by_watermark = self.watermark_degradation.get(self._watermark, 0)
            return min(top, max(by_watermark, self._pressure_level(self._pressure)))

    def _describe(self) -> str:
        text = f"watermark {self._watermark.name}"
        if self._pressure is not None:
            text += f", PSI some avg10 {self._pressure[0]:.1f}% full avg10 {self._pressure[1]:.1f}%"
        return text

    def _on_watermark(self, old: WatermarkLevel, new: WatermarkLevel, usage: float) -> None:
        """Watermark callback: escalate at once; recovery waits for `check()`'s streak."""
        with self._lock:
            self._watermark = new
            self._escalate(f"watermark {old.name} -> {new.name} at {usage:.1%} used")

    def _escalate(self, reason: str) -> bool:
        """Raise the level to what the pressure wants; True if it did. Caller holds the lock."""
        wanted = self.wanted_level()
        if self.degradation.level_index >= wanted:
            return False
        self._streak = 0
        while self.degradation.level_index < wanted:
            before = self.degradation.level_index
            self.degradation.increase_degradation(f"memory pressure: {reason}")
            if self.degradation.level_index == before:
                break
        self._imposed = max(self._imposed, self.degradation.level_index)
        return True

    def check(self) -> DegradationLevel:
        """Read the watermark and PSI now, escalate or count towards recovery; the level."""
        manager = self._manager
        watermark = manager.check_watermark() if manager is not None else None
        pressure = self._pressure_source() if self._pressure_source is not None else None
        with self._lock:
            if watermark is not None:
                self._watermark = watermark
            self._pressure = pressure
            if not self._escalate(self._describe()):
                self._count_towards_recovery()
            return self.degradation.level

    def _count_towards_recovery(self) -> None:
        """Step down one level after `recovery_checks` checks in a row that call for less."""
        current = self.degradation.level_index
        wanted = self.wanted_level()
        if current <= wanted or current > self._imposed:
            self._streak = 0  # no recovery due, or the level is not ours to undo
            return
        self._streak += 1
        if self._streak < self.recovery_checks:
            return
        self._streak = 0
        self.degradation.decrease_degradation(
            f"memory pressure fell: {self._describe()} for {self.recovery_checks} checks"
        )
        self._imposed = self.degradation.level_index

    # -- applying settings ------------------------------------------------------------------------

    def settings_for(self, level: DegradationLevel) -> tuple[int, int]:
        """(context tokens, workers) of `level`."""
        tokens = level.context_tokens(self.full_context_tokens, self.min_context_tokens)
        return tokens, level.workers(self.full_workers)

    @property
    def transitions(self) -> tuple[HealingTransition, ...]:
        """Every level change seen, in order, with its reason and the settings applied."""
        with self._lock:
            return tuple(self._transitions)

    @property
    def applied(self) -> tuple[int, int]:
        """(context tokens, workers) last applied."""
        with self._lock:
            return self._applied

    def _on_level(self, old: DegradationLevel, new: DegradationLevel, reason: str) -> None:
        """Degradation listener: apply the settings of the level now in force."""
        with self._lock:
            level = self.degradation.level  # the newest, should changes have raced
            tokens, workers = self.settings_for(level)
            errors: list[str] = []
            if tokens != self._applied[0] and self._set_context_window is not None:
                errors += self._apply("set_context_window", self._set_context_window, tokens)
            if workers != self._applied[1] and self._set_worker_count is not None:
                errors += self._apply("set_worker_count", self._set_worker_count, workers)
            before = self._applied
            self._applied = (tokens, workers)
            self._transitions.append(
                HealingTransition(
                    self._clock(), old.name, new.name, reason, tokens, workers, tuple(errors)
                )
            )
        logger.warning(
            "self-healing: %s -> %s (%s): context %d -> %d tokens, workers %d -> %d%s",
            old.name,
            new.name,
            reason,
            before[0],
            tokens,
            before[1],
            workers,
            "".join(f"; {e}" for e in errors),
        )

    @staticmethod
    def _apply(name: str, setter: Callable[[int], object], value: int) -> list[str]:
        try:
            setter(value)
        except Exception as error:  # one failing knob must not stop the other
            logger.exception("self-healing: %s(%d) failed", name, value)
            return [f"{name}({value}) failed: {type(error).__name__}: {error}"]
        return []

    def get_status(self) -> dict[str, object]:
        with self._lock:
            return {
                "level": self.degradation.level_index,
                "name": self.degradation.level.name,
                "wanted_level": self.wanted_level(),
                "watermark": self._watermark.name,
                "pressure": self._pressure,
                "context_tokens": self._applied[0],
                "workers": self._applied[1],
                "recovery_streak": self._streak,
                "transitions": len(self._transitions),
            }


def _demo() -> None:
    """A pressure spike (a reported 90% reading) and the recovery on this machine's readings."""
    manager = DeviceMemoryManager()
    with SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=4096,
        full_workers=4,
        set_context_window=lambda tokens: print(f"  context window -> {tokens} tokens"),
        set_worker_count=lambda n: print(f"  engine workers -> {n}"),
    ) as controller:
        controller.attach(manager)
        print("a reading of 90% used:")
        manager.check_watermark(usage=0.90)
        print(f"checks on this machine's own readings (now {manager.refresh().used_fraction:.0%}):")
        for _ in range(3 * controller.recovery_checks):
            controller.check()
        for transition in controller.transitions:
            print(f"- {transition.old} -> {transition.new}: {transition.reason}")


if __name__ == "__main__":
    _demo()
