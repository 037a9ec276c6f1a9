"""SelfHealingController against plain callables: pressure -> level -> settings, and back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from reference_impl.memory_management import DeviceMemoryManager, DeviceMemoryProfiler
from reference_impl.production_patterns import (
    ErrorSeverity,
    GracefulDegradationManager,
    ProductionErrorHandler,
)
from reference_impl.self_healing import SelfHealingController
from tests.reference_impl.fakes import FakeMachine


class Knobs:
    """Records what the controller sets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def window(self, tokens: int) -> None:
        self.calls.append(("window", tokens))

    def workers(self, n: int) -> None:
        self.calls.append(("workers", n))


@pytest.fixture
def machine() -> FakeMachine:
    return FakeMachine(total_mb=4096.0, available_mb=4096.0 * 0.6)  # 40% used


def _use(machine: FakeMachine, fraction: float) -> None:
    machine.available_mb = machine.total_mb * (1.0 - fraction)


@pytest.fixture
def rig(machine: FakeMachine) -> Iterator[tuple[SelfHealingController, Knobs]]:
    knobs = Knobs()
    manager = DeviceMemoryManager(DeviceMemoryProfiler(machine))  # type: ignore[arg-type]
    controller = SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=4096,
        full_workers=4,
        set_context_window=knobs.window,
        set_worker_count=knobs.workers,
        recovery_checks=3,
    )
    controller.attach(manager)
    try:
        yield controller, knobs
    finally:
        controller.close()


def test_medium_watermark_halves_the_window_and_the_workers_at_once(
    rig: tuple[SelfHealingController, Knobs], machine: FakeMachine
) -> None:
    controller, knobs = rig
    _use(machine, 0.86)
    assert controller.check().name == "reduced_context"
    assert knobs.calls == [("window", 2048), ("workers", 2)]
    [transition] = controller.transitions
    assert (transition.old, transition.new) == ("full", "reduced_context")
    assert "MEDIUM" in transition.reason
    assert controller.applied == (2048, 2)


def test_a_watermark_change_seen_elsewhere_escalates_without_a_check(
    rig: tuple[SelfHealingController, Knobs],
) -> None:
    controller, knobs = rig
    assert controller._manager is not None
    controller._manager.check_watermark(0.96)  # HIGH, observed by the app's own reading
    assert controller.degradation.level.name == "smaller_model"
    assert knobs.calls[-2:] == [("window", 1024), ("workers", 1)]
    assert [t.new for t in controller.transitions] == ["reduced_context", "smaller_model"]


def test_recovery_waits_for_a_streak_of_low_checks_then_restores_full_settings(
    rig: tuple[SelfHealingController, Knobs], machine: FakeMachine
) -> None:
    controller, knobs = rig
    _use(machine, 0.86)
    controller.check()
    _use(machine, 0.40)
    assert controller.check().name == "reduced_context"
    assert controller.check().name == "reduced_context"
    assert controller.check().name == "full"  # the third low check in a row
    assert knobs.calls[-2:] == [("window", 4096), ("workers", 4)]
    assert "memory pressure fell" in controller.transitions[-1].reason


def test_it_does_not_flap_when_usage_hovers_or_dips_once(
    rig: tuple[SelfHealingController, Knobs], machine: FakeMachine
) -> None:
    controller, _ = rig
    for usage in [0.86, 0.84] * 10:  # inside the watermark's hysteresis band
        _use(machine, usage)
        controller.check()
    for usage in [0.40, 0.40, 0.86] * 5:  # two low readings, then high again: no recovery
        _use(machine, usage)
        controller.check()
    assert [t.new for t in controller.transitions] == ["reduced_context"]


def test_it_only_undoes_its_own_escalations_but_applies_every_level(
    machine: FakeMachine,
) -> None:
    handler = ProductionErrorHandler()
    knobs = Knobs()
    manager = DeviceMemoryManager(DeviceMemoryProfiler(machine))  # type: ignore[arg-type]
    with SelfHealingController(
        GracefulDegradationManager(handler),
        full_context_tokens=1000,
        full_workers=2,
        set_context_window=knobs.window,
        set_worker_count=knobs.workers,
        min_context_tokens=300,
        recovery_checks=1,
    ) as controller:
        controller.attach(manager)
        handler.handle_error(SystemError("GPU lost"), None, ErrorSeverity.CRITICAL)
        assert knobs.calls == [("window", 500), ("workers", 1)]
        for _ in range(5):
            controller.check()  # no memory pressure, but the level is not the controller's
        assert controller.degradation.level.name == "reduced_context"
        controller.degradation.increase_degradation("test")
        assert controller.applied == (300, 1), "the window floor (min_context_tokens) holds"


def test_psi_pressure_escalates_and_its_absence_recovers() -> None:
    readings: list[tuple[float, float] | None] = [(8.0, 0.0), (50.0, 75.0), None, None]
    knobs = Knobs()
    with SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=2048,
        full_workers=4,
        set_context_window=knobs.window,
        set_worker_count=knobs.workers,
        pressure_source=lambda: readings.pop(0),
        recovery_checks=2,
    ) as controller:
        assert controller.check().name == "reduced_context"  # some avg10 8% >= 7%
        assert controller.check().name == "smaller_model"  # full avg10 75% >= 70%
        assert "PSI some avg10 50.0%" in controller.transitions[-1].reason
        controller.check()
        assert controller.check().name == "reduced_context"


def test_a_failing_knob_is_recorded_and_does_not_stop_the_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    knobs = Knobs()

    def broken(tokens: int) -> None:
        raise RuntimeError("context system busy")

    with SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=2048,
        full_workers=4,
        set_context_window=broken,
        set_worker_count=knobs.workers,
    ) as controller:
        controller.degradation.increase_degradation("test")
        [transition] = controller.transitions
        assert transition.errors == (
            "set_context_window(1024) failed: RuntimeError: context system busy",
        )
        assert knobs.calls == [("workers", 2)]
    assert "self-healing: set_context_window(1024) failed" in caplog.text


def test_every_transition_is_logged_with_its_reason(
    rig: tuple[SelfHealingController, Knobs],
    machine: FakeMachine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller, _ = rig
    caplog.set_level(logging.INFO)
    _use(machine, 0.86)
    controller.check()
    assert (
        "self-healing: full -> reduced_context (memory pressure: watermark NORMAL -> MEDIUM"
        in caplog.text
    )
    assert "context 4096 -> 2048 tokens, workers 4 -> 2" in caplog.text


def test_background_polling_checks_and_close_stops_the_thread() -> None:
    polled = threading.Event()

    def source() -> tuple[float, float] | None:
        polled.set()
        return (20.0, 0.0)

    controller = SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=2048,
        full_workers=2,
        pressure_source=source,
    )
    try:
        controller.start(interval=0.01)
        assert polled.wait(30)
    finally:
        controller.close()
    assert controller._thread is not None
    assert not controller._thread.is_alive()
    assert controller.degradation.level.name == "reduced_context"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"full_context_tokens": 0}, r"full_context_tokens must be an integer >= 1, got 0"),
        ({"full_workers": 1.5}, r"full_workers must be an integer >= 1, got 1\.5"),
        ({"recovery_checks": 0}, r"recovery_checks must be an integer >= 1, got 0"),
        ({"pressure_thresholds": (0, 50)}, r"pressure_thresholds must be two percentages"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {"full_context_tokens": 2048, "full_workers": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        SelfHealingController(GracefulDegradationManager(), **settings)  # type: ignore[arg-type]


def test_a_level_with_a_bad_fraction_is_rejected() -> None:
    from reference_impl.production_patterns import DegradationLevel

    with pytest.raises(ValueError, match=r"'x': context_fraction must be in \(0, 1\], got 0"):
        DegradationLevel("x", "bad", (), context_fraction=0)


def test_a_psi_reading_becomes_some_and_full_percentages() -> None:
    from pytest_edge.machine import PressureRecord, PressureStall
    from reference_impl.self_healing import pressure_from_stall, psi_pressure_source

    def record(avg10: float) -> PressureRecord:
        return PressureRecord(avg10=avg10, avg60=0.0, avg300=0.0, total_us=0)

    stall = PressureStall(some=record(8.5), full=record(1.25))
    assert pressure_from_stall(stall) == (8.5, 1.25)
    assert pressure_from_stall(PressureStall(some=record(3.0), full=None)) == (3.0, 0.0)
    assert pressure_from_stall(None) is None
    assert psi_pressure_source(lambda: stall)() == (8.5, 1.25)
    host = psi_pressure_source()()  # the machine's own PSI, or None where there is none
    assert host is None or (0.0 <= host[0] <= 100.0 and 0.0 <= host[1] <= 100.0)


def test_degradation_listeners_hear_every_change_in_order_outside_the_lock() -> None:
    from reference_impl.production_patterns import DegradationLevel

    manager = GracefulDegradationManager(recovery_successes=1, recovery_cooldown=0)
    heard: list[tuple[str, str, str]] = []
    lock_free: list[bool] = []

    def listener(old: DegradationLevel, new: DegradationLevel, reason: str) -> None:
        heard.append((old.name, new.name, reason))

        # Another thread can take the manager's lock: the listener does not hold it.
        def probe() -> None:
            taken = manager._lock.acquire(timeout=5)
            lock_free.append(taken)
            if taken:
                manager._lock.release()

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        if reason == "first":
            manager.increase_degradation("from a listener")  # delivered after this change

    remove = manager.add_listener(listener)
    manager.increase_degradation("first")
    manager.record_success()
    manager.decrease_degradation("manual")
    manager.decrease_degradation("clamped at full: no change, nothing heard")
    assert heard == [
        ("full", "reduced_context", "first"),
        ("reduced_context", "smaller_model", "from a listener"),
        ("smaller_model", "reduced_context", "1 consecutive successes after cool-down"),
        ("reduced_context", "full", "manual"),
    ]
    assert lock_free == [True] * 4
    remove()
    manager.increase_degradation("unheard")
    assert len(heard) == 4


def test_the_real_engine_and_context_follow_the_level(machine: FakeMachine) -> None:
    from reference_impl.concurrency_management import DeviceRateBackend, ThreadSafeEngine
    from reference_impl.context_optimization import ContextConfig, ThreeTieredContextSystem

    context = ThreeTieredContextSystem(ContextConfig(max_context_tokens=2048))
    manager = DeviceMemoryManager(DeviceMemoryProfiler(machine))  # type: ignore[arg-type]
    backend = DeviceRateBackend(None, reply_tokens=4)
    with (
        ThreadSafeEngine(4, backend=backend) as engine,
        SelfHealingController(
            GracefulDegradationManager(),
            full_context_tokens=2048,
            full_workers=4,
            set_context_window=context.set_context_window,
            set_worker_count=engine.set_worker_count,
            recovery_checks=2,
        ) as controller,
    ):
        controller.attach(manager)
        _use(machine, 0.90)
        controller.check()
        assert context.config.max_context_tokens == 1024
        assert engine.get_queue_status()["workers"] == 2
        engine.submit_request("r", "still answered", 4)
        response = engine.get_response(timeout=30)
        assert response is not None
        assert response["ok"]
        _use(machine, 0.40)
        controller.check()
        controller.check()
        assert context.config.max_context_tokens == 2048
        assert engine.get_queue_status()["workers"] == 4
