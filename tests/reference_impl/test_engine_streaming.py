"""ThreadSafeEngine streaming: on_token callbacks, per-request cancel and deadline, and every
request answered exactly once whatever the interleaving."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.concurrency_management import (
    DeviceRateBackend,
    EngineResponse,
    ThreadSafeEngine,
    generate_text,
)


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ThreadSafeEngine-worker")]


@pytest.fixture(autouse=True)
def _no_leaked_engine_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 5
    while _engine_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _engine_threads() == [], "engine threads outlived the test"


class Chunks:
    """Records what `on_token` received, per request id (called from worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_id: dict[str, list[str]] = defaultdict(list)

    def callback(self, request_id: str) -> Callable[[str], None]:
        def on_token(chunk: str) -> None:
            with self._lock:
                self.by_id[request_id].append(chunk)

        return on_token

    def text(self, request_id: str) -> str:
        with self._lock:
            return "".join(self.by_id[request_id])


class SteppedStream:
    """Streams "c0", "c1", ... one chunk per `step` release; records when a stream is closed."""

    def __init__(self, chunks: int = 5) -> None:
        self.chunks = chunks
        self.step = threading.Semaphore(0)
        self.yielded = threading.Semaphore(0)
        self.closed: list[str] = []
        self.entered = threading.Event()

    def stream(self, prompt: str, max_tokens: int) -> Iterator[str]:
        self.entered.set()
        try:
            for i in range(self.chunks):
                if not self.step.acquire(timeout=10):
                    raise TimeoutError("the test never released the next chunk")
                yield f"c{i}"
                self.yielded.release()
        finally:
            self.closed.append(prompt)

    def generate(self, prompt: str, max_tokens: int) -> str:
        return "".join(self.stream(prompt, max_tokens))


def _get(engine: ThreadSafeEngine, timeout: float = 10.0) -> EngineResponse:
    response = engine.get_response(timeout=timeout)
    assert response is not None, "no response in time"
    return response


# -- streaming ------------------------------------------------------------------------------------


def test_device_rate_stream_joins_to_generate_and_is_paced() -> None:
    clock: list[float] = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    backend = DeviceRateBackend(
        tokens_per_second=10, reply_tokens=6, clock=lambda: clock[0], sleep=sleep
    )
    chunks = list(backend.stream("hello", 4))
    assert len(chunks) == 4
    assert clock[0] == pytest.approx(0.4)  # 4 tokens at 10 tokens/s, one at a time
    assert waits == pytest.approx([0.1] * 4)
    assert "".join(chunks) == backend.generate("hello", 4)
    assert chunks[0].startswith("[stand-in reply to 'hello'] ")
    assert all(c.startswith(" ") for c in chunks[1:])


def test_on_token_receives_every_chunk_in_order() -> None:
    chunks = Chunks()
    backend = DeviceRateBackend(tokens_per_second=None, reply_tokens=5)
    with ThreadSafeEngine(max_workers=2, backend=backend) as engine:
        engine.submit_request("r", "stream me", max_tokens=5, on_token=chunks.callback("r"))
        response = _get(engine)
    assert response["ok"]
    assert len(chunks.by_id["r"]) == 5
    assert chunks.text("r") == response["result"] == backend.generate("stream me", 5)


def test_a_backend_with_only_generate_streams_one_chunk() -> None:
    class GenerateOnly:
        def generate(self, prompt: str, max_tokens: int) -> str:
            return f"all of {prompt}"

    chunks = Chunks()
    with ThreadSafeEngine(max_workers=1, backend=GenerateOnly()) as engine:
        engine.submit_request("r", "it", on_token=chunks.callback("r"))
        response = _get(engine)
    assert chunks.by_id["r"] == ["all of it"]
    assert response["result"] == "all of it"


def test_generate_text_outside_an_engine_joins_the_stream() -> None:
    backend = DeviceRateBackend(tokens_per_second=None, reply_tokens=3)
    assert generate_text(backend, "p", 3) == backend.generate("p", 3)


def test_a_raising_callback_fails_its_request_only() -> None:
    def on_token(chunk: str) -> None:
        if not chunk.startswith("[stand-in"):
            raise ValueError("display closed")

    backend = DeviceRateBackend(tokens_per_second=None, reply_tokens=4)
    with ThreadSafeEngine(max_workers=1, backend=backend) as engine:
        engine.submit_request("bad", "p", max_tokens=4, on_token=on_token)
        bad = _get(engine)
        engine.submit_request("next", "q", max_tokens=4)
        after = _get(engine)
        status = engine.get_queue_status()
    assert bad["error"] == "on_token callback raised ValueError: display closed"
    assert bad["result"] == next(iter(backend.stream("p", 4)))  # the chunk delivered before
    assert after["ok"]
    assert (status["failed"], status["workers_replaced"]) == (1, 0)


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_answers_a_queued_request_at_once() -> None:
    backend = SteppedStream(chunks=1)
    with ThreadSafeEngine(max_workers=1, backend=backend) as engine:
        engine.submit_request("running", "a")
        engine.submit_request("queued", "b")
        assert backend.entered.wait(5)
        assert engine.cancel("queued") is True
        response = _get(engine, timeout=1)  # answered while "running" is still blocked
        assert response["id"] == "queued"
        assert response["error"] == "cancelled: cancel() while queued"
        assert engine.cancel("queued") is False  # already answered
        assert engine.cancel("never-submitted") is False
        backend.step.release()
        assert _get(engine)["id"] == "running"
    assert backend.closed == ["a"]  # "b" never reached the backend
    assert engine.get_queue_status()["cancelled"] == 1


def test_cancel_stops_a_running_stream_at_its_next_chunk() -> None:
    backend = SteppedStream(chunks=5)
    chunks = Chunks()
    with ThreadSafeEngine(max_workers=1, backend=backend) as engine:
        engine.submit_request("r", "p", on_token=chunks.callback("r"))
        backend.step.release()
        backend.step.release()
        assert backend.yielded.acquire(timeout=5)
        assert backend.yielded.acquire(timeout=5)  # c0 and c1 delivered
        assert engine.cancel("r") is True
        assert engine.cancel("r") is False  # already being cancelled
        backend.step.release()  # c2 arrives, but the request is cancelled: not delivered
        response = _get(engine)
    assert response["error"] == "cancelled: cancel() after 2 chunks"
    assert response["result"] == "c0c1" == chunks.text("r")
    assert backend.closed == ["p"]  # the stream was closed, not left suspended


def test_stop_without_draining_stops_a_running_stream_at_its_next_chunk() -> None:
    backend = SteppedStream(chunks=5)
    chunks = Chunks()
    engine = ThreadSafeEngine(max_workers=1, backend=backend)
    engine.start()
    engine.submit_request("r", "p", on_token=chunks.callback("r"))
    backend.step.release()
    assert backend.yielded.acquire(timeout=5)  # c0 delivered
    stopper = threading.Thread(target=lambda: engine.stop(drain=False, timeout=10))
    stopper.start()
    for _ in range(10_000):  # until stop() has taken the engine's lock and marked the stream
        if engine.state == "stopping":
            break
        threading.Event().wait(0.001)
    backend.step.release()  # c1 arrives after the stop: not delivered, the stream ends
    stopper.join(10)
    assert not stopper.is_alive()
    response = _get(engine)
    assert response["error"] == "cancelled: engine stopped after 1 chunks"
    assert response["result"] == "c0" == chunks.text("r")
    assert backend.closed == ["p"]


# -- deadlines ------------------------------------------------------------------------------------


def test_a_request_queued_past_its_deadline_is_answered_without_starting() -> None:
    backend = SteppedStream(chunks=1)
    with ThreadSafeEngine(max_workers=1, backend=backend) as engine:
        engine.submit_request("blocker", "a")
        assert backend.entered.wait(5)
        engine.submit_request("late", "b", deadline_s=0.05)
        response = _get(engine, timeout=5)  # while "blocker" still holds the only worker
        assert response["id"] == "late"
        assert response["error"] == (
            "deadline exceeded: deadline_s=0.05 passed while queued; never started"
        )
        assert response["latency_s"] >= 0.05
        backend.step.release()
        assert _get(engine)["ok"]
    assert backend.closed == ["a"]
    assert engine.get_queue_status()["deadline_exceeded"] == 1


def test_a_stream_past_its_deadline_stops_between_chunks() -> None:
    class SlowSecondChunk:
        def stream(self, prompt: str, max_tokens: int) -> Iterator[str]:
            yield "first"
            time.sleep(0.5)  # the model taking long over the next token
            yield "second"

        def generate(self, prompt: str, max_tokens: int) -> str:
            return "".join(self.stream(prompt, max_tokens))

    with ThreadSafeEngine(max_workers=1, backend=SlowSecondChunk()) as engine:
        engine.submit_request("r", "p", deadline_s=0.25)
        response = _get(engine)
    assert response["error"] == (
        "deadline exceeded: deadline_s=0.25 passed after 1 chunks; stopped"
    )
    assert response["result"] == "first"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"deadline_s": 0}, ValueError, "deadline_s must be a number of seconds > 0, got 0"),
        ({"deadline_s": float("nan")}, ValueError, "deadline_s must be a number"),
        ({"deadline_s": "1"}, ValueError, "deadline_s must be a number"),
        ({"on_token": "print"}, TypeError, "on_token must be callable or None, got 'print'"),
    ],
)
def test_bad_streaming_arguments_are_named(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    engine = ThreadSafeEngine(max_workers=1)
    with pytest.raises(error, match=message):
        engine.submit_request("r", "p", **kwargs)  # type: ignore[arg-type]
    engine.stop()


# -- any interleaving: every request answered exactly once ----------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.integers(1, 6),
            st.one_of(st.none(), st.floats(0.001, 0.03)),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.none()),
        st.tuples(st.just("pause"), st.integers(0, 3), st.none()),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=_OPS, per_worker=st.booleans(), workers=st.integers(1, 3))
def test_random_cancel_and_deadline_interleavings_answer_every_request_once(
    ops: list[tuple[str, int, float | None]], per_worker: bool, workers: int
) -> None:
    def make() -> DeviceRateBackend:
        return DeviceRateBackend(tokens_per_second=2000, reply_tokens=6)

    reference = make()
    chunks = Chunks()
    submitted: dict[str, tuple[str, int]] = {}
    engine = (
        ThreadSafeEngine(workers, backend_factory=make, max_queue_size=64)
        if per_worker
        else ThreadSafeEngine(workers, backend=make(), max_queue_size=64)
    )
    engine.start()
    try:
        for op, number, deadline_s in ops:
            if op == "submit":
                request_id = f"r{len(submitted)}"
                submitted[request_id] = (f"prompt {len(submitted)}", number)
                engine.submit_request(
                    request_id,
                    submitted[request_id][0],
                    number,
                    on_token=chunks.callback(request_id),
                    deadline_s=deadline_s,
                )
            elif op == "cancel":
                engine.cancel(f"r{number}")
            else:
                time.sleep(number / 1000)  # let workers run between operations
        responses: dict[str, EngineResponse] = {}
        for _ in submitted:
            response = _get(engine)
            assert response["id"] not in responses, f"{response['id']} answered twice"
            responses[response["id"]] = response
        assert engine.get_response(timeout=0.02) is None  # nothing answered twice
    finally:
        engine.stop(drain=False, timeout=10)
    assert responses.keys() == submitted.keys()
    for request_id, response in responses.items():
        prompt, max_tokens = submitted[request_id]
        assert response["result"] == chunks.text(request_id)
        if response["ok"]:
            assert response["result"] == reference.generate(prompt, max_tokens)
        else:
            assert str(response["error"]).startswith(("cancelled: ", "deadline exceeded: "))
    status = engine.get_queue_status()
    answered = sum(int(status[k]) for k in ("completed", "failed", "cancelled"))
    assert answered + int(status["deadline_exceeded"]) == len(submitted)
    assert status["failed"] == 0
