"""Concurrency for on-device inference: a thread-safe engine, TaskGroups, core-aware planning.

- `ThreadSafeEngine`: worker threads run a pluggable generate backend over a bounded request
  queue (a full queue rejects or blocks, by option); each request's error comes back in its
  response; `stop()` drains or cancels and joins every thread.
- `TaskGroupManager`: `asyncio.TaskGroup` plus a semaphore, so at most `max_concurrent` jobs run
  at once and one failure cancels the rest and surfaces as an `ExceptionGroup`. Embeddings and
  search are real, from `reference_impl.embeddings`.
- `ProcessorCoreOptimizer` (in `reference_impl.engine_cores`, re-exported here): per-core
  usage and core facts from `pytest_edge.machine.current_machine()`, big.LITTLE detection,
  and plans that follow from both (llama.cpp's one process with N threads for inference).
- Backends (in `reference_impl.engine_backends`, re-exported here): the `GenerateBackend` and
  `StreamingBackend` protocols and the `DeviceRateBackend` stand-in.

Fault-injection seam: workers call the backend through the module-level function
`generate_text`, looked up at call time, so patching
``reference_impl.concurrency_management.generate_text`` (e.g. with ``edge_faults.fail``)
reaches every worker. Patch the module object the engine was imported from: the notebook
imports this file as the top-level module ``concurrency_management``, a separate object.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict, TypeVar

import numpy as np

from reference_impl.embeddings import Embedder, FloatMatrix, VectorIndex
from reference_impl.engine_backends import DeviceRateBackend, GenerateBackend, StreamingBackend
from reference_impl.engine_cores import (
    WORKLOAD_KINDS,
    ProcessorCoreOptimizer,
    UsageReader,
    WorkloadPlan,
    read_core_usage,
)

__all__ = [
    "WORKLOAD_KINDS",
    "BackendFactory",
    "DeviceRateBackend",
    "EngineResponse",
    "EngineStoppedError",
    "GenerateBackend",
    "ProcessorCoreOptimizer",
    "QueueFullError",
    "SearchResult",
    "StreamingBackend",
    "TaskGroupManager",
    "ThreadSafeEngine",
    "TokenCallback",
    "UsageReader",
    "WorkloadPlan",
    "describe_exception",
    "generate_text",
    "read_core_usage",
]

T = TypeVar("T")
R = TypeVar("R")

# -- the backend seam ----------------------------------------------------------------------------

# The chunk sink of the request the current worker thread is serving (see `generate_text`).
_sink = threading.local()


def generate_text(backend: GenerateBackend, prompt: str, max_tokens: int) -> str:
    """The one place workers call a backend: the fault-injection seam (see module docstring).

    A backend with a `stream` method is streamed: each chunk goes to the request the calling
    worker serves (its ``on_token`` callback, with the cancel and deadline checks between
    chunks), and the joined chunks are returned. Outside a worker it just joins them.
    """
    stream = getattr(backend, "stream", None)
    if not callable(stream):
        return backend.generate(prompt, max_tokens)
    deliver: Callable[[str], None] | None = getattr(_sink, "deliver", None)
    chunks: list[str] = []
    tokens: Iterator[str] = stream(prompt, max_tokens)
    try:
        for chunk in tokens:
            if deliver is not None:
                deliver(chunk)
            chunks.append(chunk)
    finally:
        close = getattr(tokens, "close", None)
        if callable(close):
            close()  # a stopped generator runs its cleanup now, not at garbage collection
    return "".join(chunks)


# -- the engine ----------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

BackendFactory = Callable[[], GenerateBackend]
TokenCallback = Callable[[str], None]


class EngineStoppedError(RuntimeError):
    """The engine was stopped; it cannot be restarted or take new requests."""


class QueueFullError(RuntimeError):
    """Backpressure: the engine already holds `max_queue_size` outstanding requests."""


class EngineResponse(TypedDict):
    """A finished request. `error` is None on success, else why it failed or stopped.

    `result` is the text delivered: the whole completion on success; what was streamed to
    ``on_token`` before a cancel, deadline or error stopped it (often "") otherwise.
    """

    id: str
    result: str
    ok: bool
    error: str | None
    max_tokens: int
    queued_s: float
    latency_s: float


@dataclass(eq=False)
class _Request:
    id: str
    prompt: str
    max_tokens: int
    submitted_at: float
    on_token: TokenCallback | None = None
    deadline_s: float | None = None
    answered: bool = False
    cancel_reason: str | None = None  # why a running request must stop at its next chunk

    @property
    def deadline(self) -> float | None:
        return None if self.deadline_s is None else self.submitted_at + self.deadline_s


class _StopStream(Exception):
    """Raised between chunks to stop a request: cancelled, or past its deadline."""

    def __init__(self, error: str, counter: str) -> None:
        super().__init__(error)
        self.error, self.counter = error, counter


class _CallbackError(Exception):
    """``on_token`` raised; the original exception is the ``__cause__``."""


@dataclass(eq=False)
class _Delivery:
    """Hands one request's chunks to its ``on_token``, checking cancel and deadline first."""

    request: _Request
    chunks: list[str]

    def checkpoint(self) -> None:
        request, now = self.request, time.monotonic()
        done = f"after {len(self.chunks)} chunks" if self.chunks else "before the first chunk"
        if request.cancel_reason is not None:
            raise _StopStream(f"cancelled: {request.cancel_reason} {done}", "cancelled")
        if request.deadline is not None and now >= request.deadline:
            raise _StopStream(
                f"deadline exceeded: deadline_s={request.deadline_s:g} passed {done}; stopped",
                "deadline_exceeded",
            )

    def deliver(self, chunk: str) -> None:
        self.checkpoint()
        if self.request.on_token is not None:
            try:
                self.request.on_token(chunk)
            except Exception as exc:
                raise _CallbackError(describe_exception(exc)) from exc
        self.chunks.append(chunk)


@dataclass(eq=False)
class _Worker:
    """One worker thread and the backend it calls: the shared one, or its own."""

    backend: GenerateBackend
    own_backend: bool
    thread: threading.Thread | None = None
    request: _Request | None = None
    retiring: bool = False


def _streams(worker: _Worker) -> bool:
    """Whether `worker`'s backend streams, so its request can stop between chunks."""
    return callable(getattr(worker.backend, "stream", None))


EngineState = Literal["new", "running", "stopping", "stopped"]


def _earliest(*timeouts: float | None) -> float | None:
    """The shortest of the given waits; None (wait forever) only if all are None."""
    given = [t for t in timeouts if t is not None]
    return min(given) if given else None


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` (just ``"Type"`` without a message), as responses report errors."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _close(backend: GenerateBackend) -> None:
    """Call the backend's ``close()`` if it has one (llama-cpp-python's ``Llama`` does)."""
    close = getattr(backend, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            logger.exception("closing engine backend %r failed", backend)


class ThreadSafeEngine:
    """Worker threads serving generate requests from a bounded queue.

    `max_queue_size` bounds the outstanding requests (queued, running, or finished but not yet
    collected with `get_response`), so memory stays bounded even if nobody reads responses.
    When it is reached, `when_full="reject"` raises `QueueFullError`; `"block"` waits up to
    `submit_timeout` seconds (forever if None) and then raises it. A request id may not be
    reused while it is outstanding.

    Backends. A llama.cpp context is not reentrant, so the one `backend` (default: a
    `DeviceRateBackend`) is shared and entered by one worker at a time. `backend_factory`
    instead gives each worker its own backend, called once per worker (and again for a
    replacement), as llama-server gives each slot its own context. Passing both is a
    `TypeError`. A backend that is safe to enter concurrently (an HTTP client of a
    llama-server started with ``--parallel N``) can be shared without serialisation with
    ``backend_factory=lambda: client``.

    Streaming. `submit_request` takes ``on_token`` (called on the worker thread with each
    chunk: keep it quick, it runs while the backend is held) and ``deadline_s`` (seconds from
    submission). A backend's optional ``stream`` method is used when present; one with only
    ``generate`` delivers its completion as one chunk. `cancel` answers a queued request at
    once; a running one stops at its next chunk. A request queued past its deadline is
    answered without starting; a running one stops between chunks. Either way the response
    carries the text delivered so far. An ``on_token`` that raises fails its request only.

    Workers. `set_worker_count` resizes the pool while running. Every request is answered
    exactly once: a backend raising any `BaseException` (also `SystemExit`,
    `KeyboardInterrupt`) gets its request answered with the error; for a non-`Exception` the
    worker thread then ends and a new one replaces it (counted in ``workers_replaced``).
    """

    def __init__(
        self,
        max_workers: int = 4,
        *,
        backend: GenerateBackend | None = None,
        backend_factory: BackendFactory | None = None,
        max_queue_size: int = 64,
        when_full: Literal["reject", "block"] = "reject",
        submit_timeout: float | None = None,
    ) -> None:
        _check_count("max_workers", max_workers)
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size!r}")
        if when_full not in ("reject", "block"):
            raise ValueError(f"when_full must be 'reject' or 'block', got {when_full!r}")
        if backend is not None and backend_factory is not None:
            raise TypeError(
                "pass either backend= (one backend shared by all workers, entered one at a "
                "time) or backend_factory= (one backend per worker), not both"
            )
        if backend_factory is not None and not callable(backend_factory):
            raise TypeError(f"backend_factory must be callable, got {backend_factory!r}")
        self.max_workers = max_workers
        self.max_queue_size = max_queue_size
        self.when_full = when_full
        self.submit_timeout = submit_timeout
        self.backend_factory = backend_factory
        # The shared backend; None when each worker has its own from `backend_factory`.
        self.backend: GenerateBackend | None = None
        if backend_factory is None:
            self.backend = backend if backend is not None else DeviceRateBackend()
        self._cond = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._responses: deque[EngineResponse] = deque()
        self._outstanding: set[str] = set()
        self._workers: list[_Worker] = []  # serving the queue
        self._retiring: list[_Worker] = []  # finishing their last request after a shrink
        self._threads: list[threading.Thread] = []  # started and possibly alive
        self._spawned = 0
        self._pending = 0  # workers whose backends are being made by `_top_up`
        self._shared_busy = False  # a worker is inside the shared backend
        self._state: EngineState = "new"
        self._counts = {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0, "rejected": 0}
        self._counts["deadline_exceeded"] = 0
        self._workers_replaced = 0
        self._dead = 0  # dead workers not replaced yet
        self._last_death = ""

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def state(self) -> EngineState:
        return self._state

    def start(self) -> None:
        """Start the worker threads. Idempotent while running; an error after `stop()`.

        With `backend_factory`, every worker's backend is made first: if the factory raises,
        the error propagates, nothing is started and the engine stays "new".
        """
        with self._cond:
            self._check_startable()
            if self._state == "running":
                return
            wanted = self.max_workers
        backends = self._new_backends(wanted)
        with self._cond:
            if self._state == "new":
                self._state = "running"
                for backend in backends:
                    self._spawn(backend)
                return
        for backend in backends:  # another thread started or stopped the engine meanwhile
            self._discard(backend)
        with self._cond:
            self._check_startable()

    def set_worker_count(self, n: int) -> None:
        """Grow or shrink the live workers to `n` (>= 1); before `start()` just set the count.

        Shrinking retires idle workers first; a busy one finishes its current request, then
        leaves. Growing makes the new workers' backends in the calling thread (a factory
        error propagates). Raises `EngineStoppedError` after `stop()`.
        """
        _check_count("worker count", n)
        with self._cond:
            self._check_open()
            self.max_workers = n
            self._retire_surplus()
        self._top_up()

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests and join every worker thread.

        `drain=True` finishes every queued request first; `drain=False` cancels the queued ones
        (each gets a response with ``error="cancelled: engine stopped"``) and stops running
        streams at their next chunk (answered with the text so far, as `cancel` does); a
        backend with only ``generate`` cannot be interrupted and is waited for. Raises
        `TimeoutError` if a thread outlives `timeout`. Responses not yet collected stay
        available to `get_response`.
        """
        if threading.current_thread() in self._threads:
            raise RuntimeError("stop() called from an engine worker: it would join itself")
        with self._cond:
            if self._state == "stopped":
                return
            self._state = "stopping"
            if not drain:
                self._cancel_queued("cancelled: engine stopped")
                for worker in self._workers + self._retiring:
                    request = worker.request
                    # A generate-only backend's result is kept: it cannot be cut short anyway.
                    if request is not None and request.cancel_reason is None and _streams(worker):
                        request.cancel_reason = "engine stopped"
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._join_workers(deadline, timeout)
            with self._cond:
                if any(t.is_alive() for t in self._threads):
                    continue  # a replacement started while draining: join it too
                # Requests queued before start() and never run (no workers) are cancelled too.
                self._cancel_queued("cancelled: engine stopped")
                self._threads.clear()
                self._state = "stopped"
                self._cond.notify_all()
                return

    def _join_workers(self, deadline: float | None, timeout: float | None) -> None:
        """Join the worker threads alive now; `TimeoutError` past `deadline`."""
        with self._cond:
            alive = [t for t in self._threads if t.is_alive()]
        for thread in alive:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                raise TimeoutError(f"{thread.name} still running after stop(timeout={timeout})")

    def __enter__(self) -> ThreadSafeEngine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # Ctrl-C or sys.exit() in the block: the caller wants out, so do not serve the queue.
        interrupted = exc is not None and not isinstance(exc, Exception)
        self.stop(drain=not interrupted)

    # -- requests --------------------------------------------------------------------------------

    def submit_request(
        self,
        request_id: str,
        prompt: str,
        max_tokens: int = 256,
        *,
        on_token: TokenCallback | None = None,
        deadline_s: float | None = None,
    ) -> None:
        """Queue a request. Raises `QueueFullError` on backpressure, `ValueError` for a bad or
        duplicate id, `EngineStoppedError` after `stop()`.

        `on_token` receives each chunk of the completion on the worker thread; `deadline_s`
        (seconds from now, > 0) bounds how long the request may take, queued and running.
        """
        if not isinstance(request_id, str) or not request_id:
            raise ValueError(f"request id must be a non-empty string, got {request_id!r}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if on_token is not None and not callable(on_token):
            raise TypeError(f"on_token must be callable or None, got {on_token!r}")
        if deadline_s is not None and (
            isinstance(deadline_s, bool)
            or not isinstance(deadline_s, int | float)
            or not 0 < deadline_s < float("inf")
        ):
            raise ValueError(f"deadline_s must be a number of seconds > 0, got {deadline_s!r}")
        self._top_up()  # a replacement whose backend could not be made is retried here
        with self._cond:
            self._check_open()
            if request_id in self._outstanding:
                raise ValueError(f"request id {request_id!r} is already outstanding")
            if len(self._outstanding) >= self.max_queue_size:
                self._wait_for_room(request_id)
            self._outstanding.add(request_id)
            self._queue.append(
                _Request(request_id, prompt, max_tokens, time.monotonic(), on_token, deadline_s)
            )
            self._counts["submitted"] += 1
            self._cond.notify_all()

    def _wait_for_room(self, request_id: str) -> None:
        """Apply the `when_full` policy; the caller holds the lock."""
        if self.when_full == "reject":
            self._counts["rejected"] += 1
            raise QueueFullError(
                f"queue full: {self.max_queue_size} outstanding requests "
                "(collect responses, or use when_full='block')"
            )
        has_room = self._cond.wait_for(
            lambda: (
                self._state not in ("new", "running")
                or len(self._outstanding) < self.max_queue_size
            ),
            timeout=self.submit_timeout,
        )
        self._check_open()
        if not has_room:
            self._counts["rejected"] += 1
            raise QueueFullError(
                f"queue still full after {self.submit_timeout} s: "
                f"{self.max_queue_size} outstanding requests"
            )
        if request_id in self._outstanding:
            raise ValueError(f"request id {request_id!r} is already outstanding")

    def cancel(self, request_id: str) -> bool:
        """Cancel a queued or running request; False if `request_id` is neither (unknown, or
        already answered, or already cancelled).

        A queued request is answered at once (``error="cancelled: cancel() while queued"``).
        A running one stops at its next chunk and is answered with the text streamed so far;
        a backend with only ``generate`` cannot be interrupted, so its result is dropped.
        """
        with self._cond:
            for request in self._queue:
                if request.id == request_id:
                    self._queue.remove(request)
                    self._counts["cancelled"] += 1
                    self._finish(request, None, "cancelled: cancel() while queued")
                    return True
            for worker in self._workers + self._retiring:
                running = worker.request
                if running is not None and running.id == request_id:
                    if running.cancel_reason is not None:
                        return False
                    running.cancel_reason = "cancel()"
                    return True
            return False

    def get_response(self, timeout: float | None = None) -> EngineResponse | None:
        """The next finished request, or None if none finishes within `timeout` seconds.

        After `stop()` it returns what is left without waiting, then raises
        `EngineStoppedError` once nothing is left.
        """
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._expire_queued()
                if self._responses:
                    response = self._responses.popleft()
                    self._outstanding.discard(response["id"])
                    self._cond.notify_all()
                    return response
                if self._state == "stopped":
                    raise EngineStoppedError(
                        "ThreadSafeEngine was stopped and has no responses left"
                    )
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(_earliest(left, self._until_next_deadline()))

    def get_queue_status(self) -> dict[str, int | str]:
        """Counts and state. ``workers`` is the worker threads serving the queue now (a dead
        one is not counted); ``workers_retiring`` those finishing a last request after a
        shrink; ``workers_replaced`` the dead workers replaced; ``last_worker_death`` the
        exception that ended the latest one ("" if none)."""
        with self._cond:
            self._expire_queued()
            busy = [w for w in self._workers + self._retiring if w.request is not None]
            return {
                "state": self._state,
                "workers": len(self._workers),
                "max_workers": self.max_workers,
                "queued": len(self._queue),
                "in_progress": len(busy),
                "responses_waiting": len(self._responses),
                "max_queue_size": self.max_queue_size,
                **self._counts,
                "workers_retiring": len(self._retiring),
                "workers_replaced": self._workers_replaced,
                "last_worker_death": self._last_death,
            }

    # -- internals (the lock is held where a docstring says so) ----------------------------------

    def _check_open(self) -> None:
        if self._state in ("stopping", "stopped"):
            raise EngineStoppedError("ThreadSafeEngine was stopped; it takes no new requests")

    def _check_startable(self) -> None:
        if self._state in ("stopping", "stopped"):
            raise EngineStoppedError("ThreadSafeEngine was stopped; create a new engine")

    def _expire_queued(self) -> None:
        """Answer the queued requests whose deadline has passed; the caller holds the lock."""
        now = time.monotonic()
        for request in [r for r in self._queue if r.deadline is not None and r.deadline <= now]:
            self._queue.remove(request)
            self._counts["deadline_exceeded"] += 1
            self._finish(
                request,
                None,
                f"deadline exceeded: deadline_s={request.deadline_s:g} passed while queued; "
                "never started",
            )

    def _until_next_deadline(self) -> float | None:
        """Seconds until the earliest queued deadline (None if none); the lock is held."""
        deadlines = [r.deadline for r in self._queue if r.deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _cancel_queued(self, reason: str) -> None:
        """Answer every queued request with `reason`; the caller holds the lock."""
        while self._queue:
            self._finish(self._queue.popleft(), None, reason)
            self._counts["cancelled"] += 1

    def _finish(
        self,
        request: _Request,
        result: str | None,
        error: str | None,
        started: float | None = None,
    ) -> None:
        """Record the response, once per request; the caller holds the lock."""
        if request.answered:
            return
        request.answered = True
        now = time.monotonic()
        started = now if started is None else started
        self._responses.append(
            {
                "id": request.id,
                "result": result or "",
                "ok": error is None,
                "error": error,
                "max_tokens": request.max_tokens,
                "queued_s": started - request.submitted_at,
                "latency_s": now - request.submitted_at,
            }
        )
        self._cond.notify_all()

    # -- workers ---------------------------------------------------------------------------------

    def _new_backends(self, n: int) -> list[GenerateBackend]:
        """`n` backends for new workers: the shared one, or `n` from the factory. Not under the
        lock (loading a model takes seconds); a factory error closes those already made."""
        if self.backend_factory is None:
            assert self.backend is not None
            return [self.backend] * n
        made: list[GenerateBackend] = []
        try:
            for _ in range(n):
                made.append(self.backend_factory())
        except BaseException:
            for backend in made:
                _close(backend)
            raise
        return made

    def _discard(self, backend: GenerateBackend) -> None:
        if self.backend_factory is not None:
            _close(backend)

    def _spawn(self, backend: GenerateBackend) -> None:
        """Start one worker thread on `backend`; the caller holds the lock."""
        worker = _Worker(backend, own_backend=self.backend_factory is not None)
        worker.thread = threading.Thread(
            target=self._worker_main,
            args=(worker,),
            name=f"ThreadSafeEngine-worker-{self._spawned}",
            daemon=True,
        )
        self._spawned += 1
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(worker.thread)
        self._workers.append(worker)
        worker.thread.start()

    def _retire_surplus(self) -> None:
        """Retire workers above `max_workers`, idle ones first; the caller holds the lock."""
        surplus = len(self._workers) - self.max_workers
        if surplus <= 0:
            return
        for worker in sorted(self._workers, key=lambda w: w.request is not None)[:surplus]:
            worker.retiring = True
            self._workers.remove(worker)
            self._retiring.append(worker)
        self._cond.notify_all()

    def _missing_workers(self) -> int:
        if self._state == "running" or (self._state == "stopping" and self._queue):
            return self.max_workers - len(self._workers) - self._pending
        return 0

    def _top_up(self) -> None:
        """Start workers until `max_workers` serve; a factory error propagates."""
        with self._cond:
            missing = self._missing_workers()
            if missing <= 0:
                return
            self._pending += missing
        try:
            backends = self._new_backends(missing)
        finally:
            with self._cond:
                self._pending -= missing
        with self._cond:
            wanted = max(0, self._missing_workers())
            for backend in backends[:wanted]:
                self._spawn(backend)
            replaced = min(wanted, self._dead)
            self._workers_replaced += replaced
            self._dead -= replaced
        for backend in backends[wanted:]:
            self._discard(backend)

    def _worker_main(self, worker: _Worker) -> None:
        death: BaseException | None = None
        try:
            while death is None and (request := self._take(worker)) is not None:
                death = self._serve(worker, request)
        except BaseException as exc:  # outside the backend call: the request is answered below
            death = exc
        finally:
            self._leave(worker, death)
        if death is not None and not worker.retiring:
            self._replace(worker, death)

    def _take(self, worker: _Worker) -> _Request | None:
        """The next request for `worker`, or None when it should exit."""
        with self._cond:
            while True:
                if worker.retiring:
                    return None
                self._expire_queued()
                if self._queue and (worker.own_backend or not self._shared_busy):
                    worker.request = self._queue.popleft()
                    self._shared_busy |= not worker.own_backend
                    return worker.request
                if self._state != "running" and not self._queue:
                    return None  # stopping and nothing left to drain
                self._cond.wait(self._until_next_deadline())

    def _serve(self, worker: _Worker, request: _Request) -> BaseException | None:
        """Run `request` on the worker's backend and answer it. Returns the exception that must
        end this worker (a `BaseException` that is not an `Exception`), else None."""
        started = time.monotonic()
        delivery = _Delivery(request, [])
        error: str | None = None
        counter = "completed"
        death: BaseException | None = None
        _sink.deliver = delivery.deliver
        try:
            delivery.checkpoint()  # cancelled or expired while waiting for the backend
            text = generate_text(worker.backend, request.prompt, request.max_tokens)
            if not delivery.chunks and text:
                delivery.deliver(text)  # a backend with only `generate`: one chunk
        except _StopStream as stop:
            error, counter = stop.error, stop.counter
        except _CallbackError as exc:
            error, counter = f"on_token callback raised {exc}", "failed"
        except Exception as exc:  # returned to the caller in the response, never swallowed
            error, counter = describe_exception(exc), "failed"
        except BaseException as exc:  # answered first; then this worker ends and is replaced
            error, counter, death = describe_exception(exc), "failed", exc
        finally:
            _sink.deliver = None
        with self._cond:
            self._release(worker)
            self._counts[counter] += 1
            self._finish(request, "".join(delivery.chunks), error, started)
            if death is not None:  # in the same breath, so the status never counts it alive
                self._drop(worker, death)
        return death

    def _release(self, worker: _Worker) -> None:
        """`worker` is done with its request and backend; the caller holds the lock."""
        worker.request = None
        if not worker.own_backend:
            self._shared_busy = False
        self._cond.notify_all()

    def _leave(self, worker: _Worker, death: BaseException | None) -> None:
        """A worker thread ends: answer a request it still held and drop it from the pool."""
        with self._cond:
            if worker.request is not None and death is not None:
                self._counts["failed"] += 1
                self._finish(worker.request, None, f"worker died: {describe_exception(death)}")
            self._release(worker)
            self._drop(worker, death)
        if worker.own_backend:
            _close(worker.backend)

    def _drop(self, worker: _Worker, death: BaseException | None) -> None:
        """Take `worker` out of the pool; the caller holds the lock."""
        for pool in (self._workers, self._retiring):
            if worker in pool:
                pool.remove(worker)
                if death is not None:
                    self._last_death = describe_exception(death)
                    self._dead += not worker.retiring

    def _replace(self, worker: _Worker, death: BaseException) -> None:
        """Start a worker in place of one a `BaseException` ended.

        It cannot be re-raised where the caller would see it (Python delivers `SystemExit` and
        `KeyboardInterrupt` only to the thread that raised them; a real Ctrl-C arrives in the
        main thread), so it is logged with its traceback and reported in the status.
        """
        name = worker.thread.name if worker.thread else "worker"
        logger.error(
            "%s died from %s; replacing it", name, describe_exception(death), exc_info=death
        )
        try:
            self._top_up()
        except Exception as exc:
            logger.exception("replacing %s failed: its backend could not be made", name)
            with self._cond:
                if not self._workers:  # nobody left to serve the queue: answer it now
                    self._counts["failed"] += len(self._queue)
                    while self._queue:
                        self._finish(
                            self._queue.popleft(),
                            None,
                            f"no worker: replacing a dead worker failed: {describe_exception(exc)}",
                        )


# -- TaskGroup concurrency -----------------------------------------------------------------------


class SearchResult(TypedDict):
    """A vector-search hit: ``doc_<n>`` (n = embedding order), cosine score and the text."""

    id: str
    score: float
    text: str


class TaskGroupManager:
    """Runs async jobs in an `asyncio.TaskGroup`, at most `max_concurrent` at a time.

    If one job raises, the TaskGroup cancels the others and raises an `ExceptionGroup` holding
    the failure(s). `run_embedding_generation` embeds texts (in worker threads, so the event
    loop stays responsive) and remembers them; `run_vector_search` searches the texts embedded
    so far (one search in a worker thread), with ids ``doc_<n>`` in embedding order.
    """

    def __init__(
        self,
        max_concurrent: int = 3,
        *,
        embedder: Embedder | None = None,
        inline_search_rows: int = 2_000,
    ) -> None:
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        if isinstance(inline_search_rows, bool) or not isinstance(inline_search_rows, int):
            raise ValueError(f"inline_search_rows must be an integer, got {inline_search_rows!r}")
        self.max_concurrent = max_concurrent
        self.inline_search_rows = inline_search_rows
        self.index = VectorIndex(embedder)
        self.active = 0
        self.peak_active = 0

    async def _limited(self, semaphore: asyncio.Semaphore, job: Callable[[], Awaitable[R]]) -> R:
        # The job's awaitable is made only once a slot is held: a task cancelled while it waits
        # leaves no coroutine behind that was never awaited.
        async with semaphore:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            try:
                return await job()
            finally:
                self.active -= 1

    async def run_all(self, jobs: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        """Run `jobs` (zero-argument async callables) concurrently; results in input order."""
        semaphore = asyncio.Semaphore(self.max_concurrent)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._limited(semaphore, job)) for job in jobs]
        return [task.result() for task in tasks]

    async def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Apply a blocking `function` to each item in worker threads, `max_concurrent` at once."""

        def job(item: T) -> Callable[[], Awaitable[R]]:
            return lambda: asyncio.to_thread(function, item)

        return await self.run_all([job(item) for item in items])

    async def run_embedding_generation(self, texts: Sequence[str]) -> list[FloatMatrix]:
        """One embedding vector per text, in order; the texts become searchable."""
        embedder = self.index.embedder
        rows = await self.map(lambda text: embedder.embed([text])[0], list(texts))
        if rows:
            self.index.add(list(texts), np.stack(rows))
        return rows

    async def run_vector_search(self, query: str, top_k: int = 5) -> list[SearchResult]:
        """The `top_k` embedded texts most similar to `query`: ``{'id', 'score', 'text'}``.

        One exact search. Up to `inline_search_rows` rows it runs on the event loop (about a
        millisecond, less than handing it to a thread costs); above, in a worker thread so the
        loop stays responsive. It is not sharded: `max_concurrent` shards searched
        concurrently measured slower than one search at 1k, 10k and 100k rows
        (tests/benchmarks/test_engine_search_bench.py), since each shard recomputes the IDF
        weights over the whole index and numpy already does the product in one native call.
        """
        size = len(self.index)
        if size == 0:
            return []
        if size <= self.inline_search_rows:
            hits = self.index.search(query, top_k)
        else:
            hits = await asyncio.to_thread(self.index.search, query, top_k)
        return [{"id": f"doc_{hit.position}", "score": hit.score, "text": hit.text} for hit in hits]


async def _demo_async() -> None:
    manager = TaskGroupManager(max_concurrent=2)
    await manager.run_embedding_generation(
        ["a quantized model on a Raspberry Pi", "vector search over embeddings", "thermal limits"]
    )
    print(await manager.run_vector_search("embeddings search", top_k=2))


def _demo() -> None:
    with ThreadSafeEngine(max_workers=2) as engine:
        for n in range(4):
            engine.submit_request(f"req_{n}", f"question {n}", max_tokens=16)
        for _ in range(4):
            print(engine.get_response(timeout=10))
    asyncio.run(_demo_async())
    optimizer = ProcessorCoreOptimizer()
    print(optimizer.monitor_core_usage())
    for line in optimizer.get_optimization_recommendations():
        print("-", line)
    for kind in WORKLOAD_KINDS:
        print(kind, optimizer.optimize_for_workload(kind, 1000, 2000))


if __name__ == "__main__":
    _demo()
