"""Engine, TaskGroup manager and core optimizer: bounds, errors, shutdown and measured advice."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import reference_impl.concurrency_management as cm
from pytest_edge.machine import Accelerator, MemoryReading, use_machine
from reference_impl.concurrency_management import (
    DeviceRateBackend,
    EngineStoppedError,
    ProcessorCoreOptimizer,
    QueueFullError,
    TaskGroupManager,
    ThreadSafeEngine,
)
from reference_impl.embeddings import HashedLexicalEmbedder


class GatedBackend:
    """Blocks every generation until `release` is set, so tests control what is in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def generate(self, prompt: str, max_tokens: int) -> str:
        self.started.release()
        if not self.release.wait(timeout=10):
            raise TimeoutError("test never released the backend")
        if prompt == "boom":
            raise RuntimeError("backend exploded")
        return prompt.upper()


@pytest.fixture
def gated() -> Iterator[GatedBackend]:
    backend = GatedBackend()
    yield backend
    backend.release.set()  # never leave a worker blocked, even when a test fails


@pytest.fixture
def new_engine(gated: GatedBackend) -> Iterator[Callable[..., ThreadSafeEngine]]:
    """Makes engines and stops every one at teardown, also when the test failed."""
    made: list[ThreadSafeEngine] = []

    def make(*args: Any, **kwargs: Any) -> ThreadSafeEngine:
        made.append(ThreadSafeEngine(*args, **kwargs))
        return made[-1]

    yield make
    gated.release.set()
    for engine in made:
        if engine.state != "stopped":
            engine.stop(drain=False, timeout=10)


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ThreadSafeEngine-worker")]


@pytest.fixture(autouse=True)
def _no_leaked_engine_threads() -> Iterator[None]:
    yield
    assert _engine_threads() == [], "an engine's worker threads outlived the test"


# -- the default backend -------------------------------------------------------------------------


class FakeClock:
    """A clock whose sleep advances time instantly; records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_stand_in_backend_is_deterministic_and_bounded_by_max_tokens() -> None:
    backend = DeviceRateBackend(tokens_per_second=None, reply_tokens=20)
    first = backend.generate("What is AI?", max_tokens=5)
    assert first == backend.generate("What is AI?", max_tokens=5)
    assert first != backend.generate("What is ML?", max_tokens=5)
    assert first.startswith("[stand-in reply to 'What is AI?'] ")
    assert len(first.split("] ", 1)[1].split()) == 5
    assert len(backend.generate("x", max_tokens=100).split("] ", 1)[1].split()) == 20


def test_stand_in_backend_paces_tokens_at_the_modelled_rate() -> None:
    clock = FakeClock()
    backend = DeviceRateBackend(tokens_per_second=10, clock=clock, sleep=clock.sleep)
    backend.generate("hello", max_tokens=30)
    assert clock.now == pytest.approx(3.0)  # 30 tokens at 10 tokens/s


def test_shared_device_rate_serialises_streams() -> None:
    clock = FakeClock()
    backend = DeviceRateBackend(
        tokens_per_second=None, device_tokens_per_second=5, clock=clock, sleep=clock.sleep
    )
    backend.generate("a", max_tokens=10)
    backend.generate("b", max_tokens=10)
    assert clock.now == pytest.approx(19 / 5)  # 20 tokens share one 5 tokens/s device


def test_stand_in_backend_pacing_really_waits() -> None:
    backend = DeviceRateBackend(tokens_per_second=200)
    started = time.monotonic()
    backend.generate("hello", max_tokens=20)
    assert time.monotonic() - started >= 20 / 200 * 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokens_per_second": 0}, "tokens_per_second must be > 0 or None, got 0"),
        ({"device_tokens_per_second": -1}, "device_tokens_per_second must be > 0 or None"),
        ({"reply_tokens": 0}, "reply_tokens must be >= 1, got 0"),
    ],
)
def test_bad_backend_settings_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceRateBackend(**kwargs)  # type: ignore[arg-type]


# -- the engine ----------------------------------------------------------------------------------


def test_every_request_gets_its_response_and_threads_are_joined(
    new_engine: Callable[..., ThreadSafeEngine],
) -> None:
    engine = new_engine(max_workers=3, backend=DeviceRateBackend(tokens_per_second=None))
    engine.start()
    assert len(_engine_threads()) == 3
    for n in range(10):
        engine.submit_request(f"r{n}", f"prompt {n}", max_tokens=4)
    responses = [engine.get_response(timeout=5) for _ in range(10)]
    engine.stop()
    assert sorted(r["id"] for r in responses if r) == sorted(f"r{n}" for n in range(10))
    assert all(r is not None and r["ok"] and r["error"] is None for r in responses)
    assert _engine_threads() == []
    assert engine.get_queue_status()["completed"] == 10


def test_backend_errors_come_back_in_the_response(gated: GatedBackend) -> None:
    gated.release.set()
    with ThreadSafeEngine(max_workers=2, backend=gated) as engine:
        engine.submit_request("bad", "boom")
        engine.submit_request("good", "fine")
        responses = {r["id"]: r for r in (engine.get_response(5), engine.get_response(5)) if r}
    assert responses["bad"]["ok"] is False
    assert responses["bad"]["error"] == "RuntimeError: backend exploded"
    assert responses["bad"]["result"] == ""
    assert responses["good"]["result"] == "FINE"
    assert engine.get_queue_status()["failed"] == 1


def test_patching_generate_text_reaches_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented fault-injection seam: a patch of the module attribute is seen."""

    def failing(backend: object, prompt: str, max_tokens: int) -> str:
        raise ConnectionError(f"injected for {prompt}")

    monkeypatch.setattr(cm, "generate_text", failing)
    with ThreadSafeEngine(max_workers=1) as engine:
        engine.submit_request("r", "p")
        response = engine.get_response(timeout=5)
    assert response is not None
    assert response["error"] == "ConnectionError: injected for p"


def test_a_backend_failing_every_fifth_call_loses_no_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a 20% fault plan does: every request answered, failures counted, none swallowed."""
    real = cm.generate_text
    calls = 0
    lock = threading.Lock()

    def every_fifth_fails(backend: cm.GenerateBackend, prompt: str, max_tokens: int) -> str:
        nonlocal calls
        with lock:
            calls += 1
            fail = calls % 5 == 0
        if fail:
            raise OSError("injected fault")
        return real(backend, prompt, max_tokens)

    monkeypatch.setattr(cm, "generate_text", every_fifth_fails)
    backend = DeviceRateBackend(tokens_per_second=None)
    with ThreadSafeEngine(max_workers=4, backend=backend, max_queue_size=20) as engine:
        for n in range(20):
            engine.submit_request(f"r{n}", f"p{n}", max_tokens=3)
        responses = [engine.get_response(timeout=5) for _ in range(20)]
    assert all(r is not None for r in responses)
    failed = [r for r in responses if r is not None and not r["ok"]]
    assert len(failed) == 4
    assert {r["error"] for r in failed} == {"OSError: injected fault"}
    status = engine.get_queue_status()
    assert (status["completed"], status["failed"]) == (16, 4)


def test_full_queue_rejects(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(max_workers=1, backend=gated, max_queue_size=2)
    engine.start()
    try:
        engine.submit_request("a", "a")
        engine.submit_request("b", "b")
        with pytest.raises(QueueFullError, match="queue full: 2 outstanding requests"):
            engine.submit_request("c", "c")
        assert engine.get_queue_status()["rejected"] == 1
    finally:
        gated.release.set()
        engine.stop()


def test_full_queue_blocks_until_a_response_is_collected(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(
        max_workers=1, backend=gated, max_queue_size=1, when_full="block", submit_timeout=5
    )
    engine.start()
    try:
        engine.submit_request("a", "a")
        submitted = threading.Event()

        def submit_second() -> None:
            engine.submit_request("b", "b")
            submitted.set()

        thread = threading.Thread(target=submit_second)
        thread.start()
        assert not submitted.wait(0.2)  # blocked: "a" is still outstanding
        gated.release.set()
        assert engine.get_response(timeout=5) is not None
        thread.join(5)
        assert submitted.is_set()
        assert engine.get_response(timeout=5) is not None
    finally:
        gated.release.set()
        engine.stop()


def test_blocking_submit_gives_up_after_its_timeout(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(
        max_workers=1, backend=gated, max_queue_size=1, when_full="block", submit_timeout=0.05
    )
    engine.start()
    try:
        engine.submit_request("a", "a")
        with pytest.raises(QueueFullError, match=r"queue still full after 0.05 s"):
            engine.submit_request("b", "b")
    finally:
        gated.release.set()
        engine.stop()


def test_stop_wakes_a_blocked_submitter_with_a_clear_error(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(max_workers=1, backend=gated, max_queue_size=1, when_full="block")
    engine.start()
    engine.submit_request("a", "a")
    errors: list[BaseException] = []

    def submit_second() -> None:
        try:
            engine.submit_request("b", "b")
        except BaseException as exc:  # checked below, in the test thread
            errors.append(exc)

    thread = threading.Thread(target=submit_second)
    thread.start()
    time.sleep(0.05)  # let it block on the full queue
    gated.release.set()
    engine.stop(drain=False)
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], EngineStoppedError)


def test_duplicate_outstanding_id_is_rejected(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(max_workers=1, backend=gated)
    engine.start()
    try:
        engine.submit_request("same", "x")
        with pytest.raises(ValueError, match="request id 'same' is already outstanding"):
            engine.submit_request("same", "y")
        gated.release.set()
        assert engine.get_response(timeout=5) is not None
        engine.submit_request("same", "z")  # collected: the id may be used again
    finally:
        gated.release.set()
        engine.stop()


def test_stop_without_drain_cancels_queued_requests(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(max_workers=1, backend=gated)
    engine.start()
    for name in ("running", "queued1", "queued2"):
        engine.submit_request(name, name)
    assert gated.started.acquire(timeout=5)  # "running" is in the backend
    stopper = threading.Thread(target=lambda: engine.stop(drain=False))
    stopper.start()
    time.sleep(0.05)  # let stop() cancel the queue while "running" is still blocked
    gated.release.set()
    stopper.join(5)
    responses = {}
    while True:
        try:
            response = engine.get_response()
        except EngineStoppedError:
            break
        assert response is not None
        responses[response["id"]] = response
    assert responses["running"]["ok"]
    assert responses["queued1"]["error"] == "cancelled: engine stopped"
    assert responses["queued2"]["error"] == "cancelled: engine stopped"
    assert engine.get_queue_status()["cancelled"] == 2
    assert _engine_threads() == []


def test_stop_with_drain_finishes_the_queue(
    gated: GatedBackend, new_engine: Callable[..., ThreadSafeEngine]
) -> None:
    engine = new_engine(max_workers=1, backend=gated)
    engine.start()
    for n in range(3):
        engine.submit_request(f"r{n}", "x")
    gated.release.set()
    engine.stop(drain=True)
    assert [engine.get_response()["id"] for _ in range(3)] == ["r0", "r1", "r2"]  # type: ignore[index]


def test_use_after_stop_raises_clearly(new_engine: Callable[..., ThreadSafeEngine]) -> None:
    engine = new_engine(max_workers=1)
    engine.start()
    engine.stop()
    engine.stop()  # idempotent
    with pytest.raises(EngineStoppedError, match="stopped; it takes no new requests"):
        engine.submit_request("late", "x")
    with pytest.raises(EngineStoppedError, match="create a new engine"):
        engine.start()
    with pytest.raises(EngineStoppedError, match="no responses left"):
        engine.get_response(timeout=1)


def test_requests_queued_before_start_are_cancelled_if_never_started(
    new_engine: Callable[..., ThreadSafeEngine],
) -> None:
    engine = new_engine(max_workers=1)
    engine.submit_request("early", "x")
    engine.stop()
    response = engine.get_response()
    assert response is not None
    assert response["error"] == "cancelled: engine stopped"


def test_stop_from_a_worker_is_refused_instead_of_deadlocking() -> None:
    class StopsItsEngine:
        engine: ThreadSafeEngine

        def generate(self, prompt: str, max_tokens: int) -> str:
            self.engine.stop()
            return "unreachable"

    backend = StopsItsEngine()
    with ThreadSafeEngine(max_workers=1, backend=backend) as engine:
        backend.engine = engine
        engine.submit_request("r", "p")
        response = engine.get_response(timeout=5)
    assert response is not None
    assert response["error"] == (
        "RuntimeError: stop() called from an engine worker: it would join itself"
    )


def test_get_response_times_out_with_none() -> None:
    with ThreadSafeEngine(max_workers=1) as engine:
        assert engine.get_response(timeout=0.01) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_workers": 0}, "max_workers must be an integer >= 1, got 0"),
        ({"max_queue_size": 0}, "max_queue_size must be >= 1, got 0"),
        ({"when_full": "drop"}, "when_full must be 'reject' or 'block', got 'drop'"),
    ],
)
def test_bad_engine_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThreadSafeEngine(**kwargs)  # type: ignore[arg-type]


def test_bad_request_arguments_are_named(new_engine: Callable[..., ThreadSafeEngine]) -> None:
    engine = new_engine(max_workers=1)
    with pytest.raises(ValueError, match="max_tokens must be an integer >= 1, got 0"):
        engine.submit_request("r", "p", max_tokens=0)
    with pytest.raises(ValueError, match="request id must be a non-empty string"):
        engine.submit_request("", "p")
    engine.stop()


# -- TaskGroupManager ----------------------------------------------------------------------------


def test_never_more_than_max_concurrent_jobs_at_once() -> None:
    manager = TaskGroupManager(max_concurrent=3)
    running = 0
    observed: list[int] = []

    async def job() -> int:
        nonlocal running
        running += 1
        observed.append(running)
        await asyncio.sleep(0.01)
        running -= 1
        return 1

    results = asyncio.run(manager.run_all([job for _ in range(12)]))
    assert results == [1] * 12
    assert max(observed) == 3  # the limit was reached, and never passed
    assert manager.peak_active == 3


def test_one_failure_cancels_the_others_and_raises_an_exception_group() -> None:
    manager = TaskGroupManager(max_concurrent=4)
    cancelled: list[int] = []

    def make(n: int) -> Callable[[], Awaitable[int]]:
        async def job() -> int:
            if n == 0:
                await asyncio.sleep(0.01)
                raise ValueError("job 0 failed")
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise
            return n

        return job

    started = time.monotonic()
    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(manager.run_all([make(n) for n in range(4)]))
    assert time.monotonic() - started < 5
    assert caught.group_contains(ValueError, match="job 0 failed")
    assert sorted(cancelled) == [1, 2, 3]


def test_jobs_waiting_for_a_slot_when_one_fails_are_never_created() -> None:
    # A job's coroutine used to be created before its task got a slot: when a failure cancelled
    # the waiting tasks, those coroutines were never awaited, and Python's "coroutine ... was
    # never awaited" RuntimeWarning surfaced later in whichever test ran the garbage collector.
    manager = TaskGroupManager(max_concurrent=1)
    created: list[int] = []

    def make(n: int) -> Callable[[], Awaitable[int]]:
        def job() -> Awaitable[int]:
            created.append(n)
            return asyncio.to_thread(_fail_first, n)

        return job

    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        with pytest.raises(ExceptionGroup):
            asyncio.run(manager.run_all([make(n) for n in range(4)]))
        gc.collect()
    assert [str(w.message) for w in caught_warnings if w.category is RuntimeWarning] == []
    # The failing job, and at most the one that took its freed slot before the cancellation.
    assert created in ([0], [0, 1])


def _fail_first(n: int) -> int:
    if n == 0:
        raise ValueError("job 0 failed")
    return n


def test_embeddings_are_the_embedders_and_search_finds_the_right_text() -> None:
    texts = [
        "Machine learning is a subset of artificial intelligence",
        "Deep learning uses neural networks with multiple layers",
        "Computer vision allows machines to interpret visual information",
        "SQLite stores the documents on the device",
    ]
    manager = TaskGroupManager(max_concurrent=2)
    vectors = asyncio.run(manager.run_embedding_generation(texts))
    np.testing.assert_array_equal(np.stack(vectors), HashedLexicalEmbedder().embed(texts))
    results = asyncio.run(manager.run_vector_search("neural networks", top_k=3))
    assert results[0]["id"] == "doc_1"
    assert results[0]["text"] == texts[1]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    stored = asyncio.run(manager.run_vector_search("documents device", top_k=1))
    assert stored[0]["id"] == "doc_3"
    assert asyncio.run(TaskGroupManager(2).run_vector_search("anything")) == []


def test_bad_max_concurrent_is_named() -> None:
    with pytest.raises(ValueError, match="max_concurrent must be an integer >= 1, got 0"):
        TaskGroupManager(max_concurrent=0)


# -- ProcessorCoreOptimizer ----------------------------------------------------------------------


@dataclass(frozen=True)
class FakeMachine:
    """A big.LITTLE board: cores 0-3 at 1800 MHz, cores 4-7 at 2400 MHz (like an RK3588)."""

    freqs: tuple[float, ...] = (1800.0,) * 4 + (2400.0,) * 4
    usable: frozenset[int] = frozenset(range(8))
    name: str = "fake big.LITTLE board"
    simulated: bool = True
    profile: None = None

    def memory(self) -> MemoryReading:
        return MemoryReading(8 << 30, 4 << 30, 0, 0, "fake")

    def cpu_count(self) -> int:
        return len(self.freqs)

    def usable_cpus(self) -> frozenset[int]:
        return self.usable

    def cpu_max_freq_mhz(self) -> dict[int, float]:
        return dict(enumerate(self.freqs))

    def accelerator(self) -> Accelerator:
        return Accelerator("none", False, False, "fake")


def _reader(values: list[float]) -> Callable[[float], list[float]]:
    return lambda interval: list(values)


def test_optimizer_sees_the_current_machine_and_its_big_little_cores() -> None:
    with use_machine(FakeMachine()):
        optimizer = ProcessorCoreOptimizer(usage_reader=_reader([5.0] * 8))
    assert optimizer.cpu_count == 8
    assert optimizer.heterogeneous
    assert optimizer.big_cores == [4, 5, 6, 7]
    assert optimizer.little_cores == [0, 1, 2, 3]
    advice = optimizer.get_optimization_recommendations()
    assert any("big.LITTLE" in line and "[4, 5, 6, 7]" in line for line in advice)
    plan = optimizer.optimize_for_workload("cpu_bound", 1000, 2000)
    assert (plan["num_workers"], plan["threads_per_worker"]) == (1, 4)  # llama.cpp's shape
    assert plan["cpu_affinity"] == [4, 5, 6, 7]
    assert plan["threading_model"] == "process"
    assert plan["memory_per_worker_mb"] == 2000


def test_busy_cores_are_left_out_of_the_plan_and_named_in_the_advice() -> None:
    usage = [5.0, 5.0, 5.0, 5.0, 95.0, 99.0, 10.0, 10.0]
    optimizer = ProcessorCoreOptimizer(FakeMachine(), usage_reader=_reader(usage))
    assert optimizer.monitor_core_usage()["core_5"] == 99.0
    plan = optimizer.optimize_for_workload("cpu_bound", 1000, 2000, shared_model=False)
    assert plan["cpu_affinity"] == [6, 7]
    assert optimizer.optimize_for_workload("cpu_bound", 1000, 2000)["cpu_affinity"] == [6, 7]
    advice = optimizer.get_optimization_recommendations()
    assert any("core_4, core_5 at or above 80%" in line for line in advice)


def test_homogeneous_cores_and_restricted_affinity() -> None:
    machine = FakeMachine(freqs=(1500.0,) * 4, usable=frozenset({0, 1}))
    optimizer = ProcessorCoreOptimizer(machine, usage_reader=_reader([0.0] * 4))
    assert not optimizer.heterogeneous
    assert optimizer.big_cores == [0, 1]
    advice = optimizer.get_optimization_recommendations()
    assert any("Only 2 of 4 cores are usable" in line for line in advice)
    assert optimizer.optimize_for_workload("io_bound", 1000, 100)["num_workers"] == 8
    assert optimizer.optimize_for_workload("io_bound", 3, 100)["num_workers"] == 3
    assert optimizer.optimize_for_workload("memory_bound", 1000, 100)["num_workers"] == 2


def test_saturated_machine_advice_follows_the_measurement() -> None:
    optimizer = ProcessorCoreOptimizer(FakeMachine(), usage_reader=_reader([97.0] * 8))
    advice = optimizer.get_optimization_recommendations()
    assert any("saturated" in line for line in advice)
    assert optimizer.optimize_for_workload("cpu_bound", 10, 100)["num_workers"] == 1


def test_real_host_usage_has_one_reading_per_core() -> None:
    optimizer = ProcessorCoreOptimizer(sample_interval=0.05)
    usage = optimizer.monitor_core_usage()
    assert len(usage) == optimizer.cpu_count
    assert all(0.0 <= value <= 100.0 for value in usage.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gpu_bound", 10, 10), "unknown workload kind 'gpu_bound'; allowed: cpu_bound, io_bound"),
        (("cpu_bound", -1, 10), "data_size must be an integer >= 0, got -1"),
        (("cpu_bound", 1, 0), "memory_mb must be > 0, got 0"),
    ],
)
def test_bad_workload_arguments_are_named(args: tuple[str, int, int], message: str) -> None:
    optimizer = ProcessorCoreOptimizer(FakeMachine(), usage_reader=_reader([0.0] * 8))
    with pytest.raises(ValueError, match=message):
        optimizer.optimize_for_workload(*args)
