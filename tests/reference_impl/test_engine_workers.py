"""ThreadSafeEngine workers: live resizing, one caller at a time in a shared backend, a backend
per worker from a factory, and dead workers replaced with every request still answered."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference_impl.concurrency_management import (
    DeviceRateBackend,
    EngineResponse,
    EngineStoppedError,
    ThreadSafeEngine,
)


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ThreadSafeEngine-worker")]


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds: threads exit asynchronously after being told to."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture(autouse=True)
def _no_leaked_engine_threads() -> Iterator[None]:
    yield
    assert _wait_until(lambda: _engine_threads() == [], 5), "engine threads outlived the test"


@pytest.fixture
def engines() -> Iterator[list[ThreadSafeEngine]]:
    """Engines a test made; every one is stopped at teardown, also when the test failed."""
    made: list[ThreadSafeEngine] = []
    yield made
    for engine in made:
        if engine.state != "stopped":
            engine.stop(drain=False, timeout=10)


class Gate:
    """A backend that blocks in `generate` until released; counts callers inside at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def generate(self, prompt: str, max_tokens: int) -> str:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            self.entered.release()
            if not self.release.wait(timeout=10):
                raise TimeoutError("the test never released the gate")
            return prompt.upper()
        finally:
            with self._lock:
                self.inside -= 1


def _collect(engine: ThreadSafeEngine, n: int, timeout: float = 10.0) -> dict[str, EngineResponse]:
    responses: dict[str, EngineResponse] = {}
    for _ in range(n):
        response = engine.get_response(timeout=timeout)
        assert response is not None, f"a request was never answered; got {sorted(responses)}"
        assert response["id"] not in responses, f"{response['id']} answered twice"
        responses[response["id"]] = response
    return responses


# -- set_worker_count ----------------------------------------------------------------------------


def test_set_worker_count_before_start_sets_the_count(engines: list[ThreadSafeEngine]) -> None:
    engines.append(engine := ThreadSafeEngine(max_workers=4))
    engine.set_worker_count(2)
    assert engine.get_queue_status()["workers"] == 0  # nothing runs before start()
    engine.start()
    status = engine.get_queue_status()
    assert (status["workers"], status["max_workers"], status["workers_replaced"]) == (2, 2, 0)
    assert len(_engine_threads()) == 2


def test_set_worker_count_grows_and_shrinks_live_threads(engines: list[ThreadSafeEngine]) -> None:
    backend = DeviceRateBackend(tokens_per_second=None)
    engines.append(engine := ThreadSafeEngine(max_workers=1, backend=backend))
    engine.start()
    engine.set_worker_count(3)
    assert engine.get_queue_status()["workers"] == 3
    assert len(_engine_threads()) == 3
    engine.set_worker_count(1)
    assert engine.get_queue_status()["workers"] == 1
    assert _wait_until(lambda: len(_engine_threads()) == 1)
    for n in range(5):  # the one left still serves
        engine.submit_request(f"r{n}", f"p{n}", max_tokens=2)
    assert all(r["ok"] for r in _collect(engine, 5).values())


def test_a_shrinking_worker_finishes_its_current_request_first(
    engines: list[ThreadSafeEngine],
) -> None:
    gates: list[Gate] = []

    def factory() -> Gate:
        gates.append(Gate())
        return gates[-1]

    engines.append(engine := ThreadSafeEngine(max_workers=2, backend_factory=factory))
    engine.start()
    engine.submit_request("a", "a")
    engine.submit_request("b", "b")
    for gate in gates:
        assert gate.entered.acquire(timeout=5)  # both workers are inside their backends
    engine.set_worker_count(1)
    status = engine.get_queue_status()
    assert (status["workers"], status["workers_retiring"], status["in_progress"]) == (1, 1, 2)
    assert len(_engine_threads()) == 2  # the retiring one is still running its request
    for gate in gates:
        gate.release.set()
    responses = _collect(engine, 2)
    assert [responses[k]["result"] for k in ("a", "b")] == ["A", "B"]
    assert _wait_until(lambda: len(_engine_threads()) == 1)
    assert engine.get_queue_status()["workers_retiring"] == 0


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2", None])
def test_set_worker_count_rejects_bad_counts(bad: Any, engines: list[ThreadSafeEngine]) -> None:
    engines.append(engine := ThreadSafeEngine(max_workers=1))
    expected = re.escape(f"worker count must be an integer >= 1, got {bad!r}")
    with pytest.raises(ValueError, match=expected):
        engine.set_worker_count(bad)


def test_set_worker_count_after_stop_is_refused(engines: list[ThreadSafeEngine]) -> None:
    engines.append(engine := ThreadSafeEngine(max_workers=1))
    engine.start()
    engine.stop()
    with pytest.raises(EngineStoppedError):
        engine.set_worker_count(2)


# -- one caller at a time in a shared backend ----------------------------------------------------


class CountingBackend:
    """Wraps a backend and records how many threads are inside it at once."""

    def __init__(self, inner: DeviceRateBackend) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def generate(self, prompt: str, max_tokens: int) -> str:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            return self.inner.generate(prompt, max_tokens)
        finally:
            with self._lock:
                self.inside -= 1


def test_a_shared_backend_is_entered_by_one_worker_at_a_time() -> None:
    # 8 requests of 10 tokens paced at 1000 tokens/s: each is inside the backend ~10 ms,
    # long enough that 4 unserialised workers overlap (4 concurrent entries measured before).
    backend = CountingBackend(DeviceRateBackend(tokens_per_second=1000, reply_tokens=10))
    with ThreadSafeEngine(max_workers=4, backend=backend) as engine:
        for n in range(8):
            engine.submit_request(f"r{n}", f"prompt {n}", max_tokens=10)
        responses = _collect(engine, 8)
    assert all(r["ok"] for r in responses.values())
    assert backend.peak == 1


def test_a_backend_factory_gives_each_worker_its_own_backend() -> None:
    made: list[CountingBackend] = []

    def factory() -> CountingBackend:
        made.append(CountingBackend(DeviceRateBackend(tokens_per_second=1000, reply_tokens=10)))
        return made[-1]

    with ThreadSafeEngine(max_workers=3, backend_factory=factory) as engine:
        assert len(made) == 3
        for n in range(9):
            engine.submit_request(f"r{n}", f"prompt {n}", max_tokens=10)
        assert all(r["ok"] for r in _collect(engine, 9).values())
    assert all(b.peak <= 1 for b in made)  # each backend still sees one caller at a time


def test_backend_and_backend_factory_together_are_refused() -> None:
    with pytest.raises(TypeError, match=r"either backend= .* or backend_factory="):
        ThreadSafeEngine(backend=DeviceRateBackend(), backend_factory=DeviceRateBackend)


def test_a_factory_that_is_not_callable_is_named() -> None:
    with pytest.raises(TypeError, match=r"backend_factory must be callable, got 'model\.gguf'"):
        ThreadSafeEngine(backend_factory="model.gguf")  # type: ignore[arg-type]


def test_a_failing_factory_fails_start_and_starts_nothing() -> None:
    calls = 0

    def factory() -> DeviceRateBackend:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise MemoryError("second context does not fit")
        return DeviceRateBackend()

    engine = ThreadSafeEngine(max_workers=3, backend_factory=factory)
    with pytest.raises(MemoryError, match="second context does not fit"):
        engine.start()
    assert engine.state == "new"
    assert _engine_threads() == []
    engine.stop()


# -- a worker killed by a BaseException ----------------------------------------------------------


class Shutdown(BaseException):
    """A BaseException that is not an Exception, as a runtime or framework might raise."""


class DiesOnce:
    """Raises `exc` on the request whose prompt is "die"; answers the others."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def generate(self, prompt: str, max_tokens: int) -> str:
        if prompt == "die":
            raise self.exc
        return f"ok {prompt}"


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (Shutdown("runtime torn down"), "Shutdown: runtime torn down"),
        (SystemExit(3), "SystemExit: 3"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
    ],
    ids=["custom", "SystemExit", "KeyboardInterrupt"],
)
def test_a_base_exception_answers_the_request_and_the_worker_is_replaced(
    exc: BaseException, error: str, engines: list[ThreadSafeEngine]
) -> None:
    engines.append(engine := ThreadSafeEngine(max_workers=1, backend=DiesOnce(exc)))
    engine.start()
    engine.submit_request("killer", "die")
    engine.submit_request("after", "next")
    responses = _collect(engine, 2, timeout=5)
    assert responses["killer"]["ok"] is False
    assert responses["killer"]["error"] == error
    assert responses["after"]["result"] == "ok next"
    status = engine.get_queue_status()
    assert (status["workers"], status["workers_replaced"], status["failed"]) == (1, 1, 1)
    assert status["last_worker_death"] == error
    assert _wait_until(lambda: len(_engine_threads()) == 1)
    engine.stop()
    assert _engine_threads() == []


def test_every_request_answered_when_every_call_kills_its_worker(
    engines: list[ThreadSafeEngine],
) -> None:
    class AlwaysDies:
        def generate(self, prompt: str, max_tokens: int) -> str:
            raise Shutdown(prompt)

    engines.append(engine := ThreadSafeEngine(max_workers=2, backend=AlwaysDies()))
    engine.start()
    for n in range(6):
        engine.submit_request(f"r{n}", f"p{n}")
    responses = _collect(engine, 6, timeout=5)
    assert {r["error"] for r in responses.values()} == {f"Shutdown: p{n}" for n in range(6)}
    # The last replacements may still be starting when the last answer arrives.
    assert _wait_until(lambda: engine.get_queue_status()["workers_replaced"] == 6)
    assert engine.get_queue_status()["workers"] == 2


def test_a_factory_backend_is_replaced_with_its_worker(engines: list[ThreadSafeEngine]) -> None:
    made: list[DiesOnce] = []
    closed: list[DiesOnce] = []

    class Closable(DiesOnce):
        def close(self) -> None:
            closed.append(self)

    def factory() -> DiesOnce:
        made.append(Closable(Shutdown("context lost")))
        return made[-1]

    engines.append(engine := ThreadSafeEngine(max_workers=1, backend_factory=factory))
    engine.start()
    engine.submit_request("killer", "die")
    engine.submit_request("after", "next")
    responses = _collect(engine, 2, timeout=5)
    assert responses["after"]["ok"]
    assert len(made) == 2  # the dead worker's backend is not reused: its state is unknown
    assert closed == [made[0]]
