"""Concurrency for on-device inference: a thread-safe engine, TaskGroups, core-aware planning.

- `ThreadSafeEngine`: worker threads run a pluggable generate backend over a bounded request
  queue (a full queue rejects or blocks, by option); each request's error comes back in its
  response; `stop()` drains or cancels and joins every thread.
- `TaskGroupManager`: `asyncio.TaskGroup` plus a semaphore, so at most `max_concurrent` jobs run
  at once and one failure cancels the rest and surfaces as an `ExceptionGroup`. Embeddings and
  search are real, from `reference_impl.embeddings`.
- `ProcessorCoreOptimizer`: per-core usage from psutil and core facts from
  `pytest_edge.machine.current_machine()` (so a simulated device is seen), big.LITTLE
  detection from per-core maximum frequencies, and worker plans that follow from both.

Fault-injection seam: workers call the backend through the module-level function
`generate_text`, looked up at call time, so patching
``reference_impl.concurrency_management.generate_text`` (e.g. with ``edge_faults.fail``)
reaches every worker. Patch the module object the engine was imported from: the notebook
imports this file as the top-level module ``concurrency_management``, a separate object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict, TypeVar

import numpy as np
import psutil

from pytest_edge.machine import Machine, current_machine
from reference_impl.embeddings import Embedder, FloatMatrix, VectorIndex

T = TypeVar("T")
R = TypeVar("R")

# -- generate backends ---------------------------------------------------------------------------


class GenerateBackend(Protocol):
    """Produces the completion of `prompt`, at most `max_tokens` tokens. May raise."""

    def generate(self, prompt: str, max_tokens: int) -> str: ...


_STAND_IN_WORDS = (
    "model device memory token context latency quantized weights cache batch core thread "
    "inference edge local response request queue worker throughput budget layer attention "
    "embedding vector search summary prompt energy thermal"
)
_STAND_IN_VOCABULARY = _STAND_IN_WORDS.split()


class DeviceRateBackend:
    """A deterministic stand-in for a language model, not a model: it returns the same
    made-up words for the same prompt and emits them at a modelled device token rate.

    Each request yields ``min(max_tokens, reply_tokens)`` tokens. Token ``i`` of a stream is
    released no earlier than ``start + i / tokens_per_second`` on `clock`: this is real waiting
    that models a device's decode rate, not work. With `device_tokens_per_second` set, all
    streams also share that aggregate rate (one accelerator serving every worker), which is
    what a single model on a single device does; unset, streams are independent (one model
    instance per worker). The default rate of 400 tokens/s is chosen to keep demos quick and
    is not a device figure: pass a measured rate to model a device (e.g.
    ``tokens_per_second=4.6`` for llama3.2:3b Q4 on a Raspberry Pi 5 as reported in the
    project's edge-facts notes).
    """

    def __init__(
        self,
        tokens_per_second: float | None = 400.0,
        *,
        reply_tokens: int = 48,
        device_tokens_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, rate in (
            ("tokens_per_second", tokens_per_second),
            ("device_tokens_per_second", device_tokens_per_second),
        ):
            if rate is not None and not rate > 0:
                raise ValueError(f"DeviceRateBackend {name} must be > 0 or None, got {rate!r}")
        if reply_tokens < 1:
            raise ValueError(f"DeviceRateBackend reply_tokens must be >= 1, got {reply_tokens}")
        self.tokens_per_second = tokens_per_second
        self.device_tokens_per_second = device_tokens_per_second
        self.reply_tokens = reply_tokens
        self._clock = clock
        self._sleep = sleep
        self._device_lock = threading.Lock()
        self._device_free_at = 0.0

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            self._sleep(delay)

    def _device_slot(self) -> float:
        """Reserve the next free slot on the shared device clock."""
        assert self.device_tokens_per_second is not None
        with self._device_lock:
            slot = max(self._clock(), self._device_free_at)
            self._device_free_at = slot + 1.0 / self.device_tokens_per_second
        return slot

    def generate(self, prompt: str, max_tokens: int) -> str:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        count = min(max_tokens, self.reply_tokens)
        digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=64).digest()
        start = self._clock()
        words: list[str] = []
        for i in range(count):
            if self.tokens_per_second is not None:
                self._wait_until(start + (i + 1) / self.tokens_per_second)
            if self.device_tokens_per_second is not None:
                self._wait_until(self._device_slot())
            words.append(_STAND_IN_VOCABULARY[digest[i % len(digest)] % len(_STAND_IN_VOCABULARY)])
        return f"[stand-in reply to {prompt!r}] " + " ".join(words)


def generate_text(backend: GenerateBackend, prompt: str, max_tokens: int) -> str:
    """The one place workers call a backend: the fault-injection seam (see module docstring)."""
    return backend.generate(prompt, max_tokens)


# -- the engine ----------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

BackendFactory = Callable[[], GenerateBackend]


class EngineStoppedError(RuntimeError):
    """The engine was stopped; it cannot be restarted or take new requests."""


class QueueFullError(RuntimeError):
    """Backpressure: the engine already holds `max_queue_size` outstanding requests."""


class EngineResponse(TypedDict):
    """A finished request. `result` is "" and `error` says why when the request failed."""

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
    answered: bool = False


@dataclass(eq=False)
class _Worker:
    """One worker thread and the backend it calls: the shared one, or its own."""

    backend: GenerateBackend
    own_backend: bool
    thread: threading.Thread | None = None
    request: _Request | None = None
    retiring: bool = False


EngineState = Literal["new", "running", "stopping", "stopped"]


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
        (each gets a response with ``error="cancelled: engine stopped"``) and waits only for
        requests already running. Raises `TimeoutError` if a thread outlives `timeout`.
        Responses not yet collected stay available to `get_response`.
        """
        if threading.current_thread() in self._threads:
            raise RuntimeError("stop() called from an engine worker: it would join itself")
        with self._cond:
            if self._state == "stopped":
                return
            self._state = "stopping"
            if not drain:
                self._cancel_queued("cancelled: engine stopped")
            self._cond.notify_all()
        self._join_workers(None if timeout is None else time.monotonic() + timeout, timeout)
        with self._cond:
            # Requests queued before start() and never run (no workers) are cancelled too.
            self._cancel_queued("cancelled: engine stopped")
            self._threads.clear()
            self._state = "stopped"
            self._cond.notify_all()

    def _join_workers(self, deadline: float | None, timeout: float | None) -> None:
        """Join every worker thread, also replacements started while draining."""
        while True:
            with self._cond:
                alive = [t for t in self._threads if t.is_alive()]
            if not alive:
                return
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

    def submit_request(self, request_id: str, prompt: str, max_tokens: int = 256) -> None:
        """Queue a request. Raises `QueueFullError` on backpressure, `ValueError` for a bad or
        duplicate id, `EngineStoppedError` after `stop()`."""
        if not isinstance(request_id, str) or not request_id:
            raise ValueError(f"request id must be a non-empty string, got {request_id!r}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        self._top_up()  # a replacement whose backend could not be made is retried here
        with self._cond:
            self._check_open()
            if request_id in self._outstanding:
                raise ValueError(f"request id {request_id!r} is already outstanding")
            if len(self._outstanding) >= self.max_queue_size:
                self._wait_for_room(request_id)
            self._outstanding.add(request_id)
            self._queue.append(_Request(request_id, prompt, max_tokens, time.monotonic()))
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

    def get_response(self, timeout: float | None = None) -> EngineResponse | None:
        """The next finished request, or None if none finishes within `timeout` seconds.

        After `stop()` it returns what is left without waiting, then raises
        `EngineStoppedError` once nothing is left.
        """
        with self._cond:
            if not self._responses and self._state != "stopped":
                self._cond.wait_for(
                    lambda: bool(self._responses) or self._state == "stopped", timeout=timeout
                )
            if self._responses:
                response = self._responses.popleft()
                self._outstanding.discard(response["id"])
                self._cond.notify_all()
                return response
            if self._state == "stopped":
                raise EngineStoppedError("ThreadSafeEngine was stopped and has no responses left")
            return None

    def get_queue_status(self) -> dict[str, int | str]:
        """Counts and state. ``workers`` is the worker threads serving the queue now (a dead
        one is not counted); ``workers_retiring`` those finishing a last request after a
        shrink; ``workers_replaced`` the dead workers replaced; ``last_worker_death`` the
        exception that ended the latest one ("" if none)."""
        with self._cond:
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
                if self._queue and (worker.own_backend or not self._shared_busy):
                    worker.request = self._queue.popleft()
                    self._shared_busy |= not worker.own_backend
                    return worker.request
                if self._state != "running" and not self._queue:
                    return None  # stopping and nothing left to drain
                self._cond.wait()

    def _serve(self, worker: _Worker, request: _Request) -> BaseException | None:
        """Run `request` on the worker's backend and answer it. Returns the exception that must
        end this worker (a `BaseException` that is not an `Exception`), else None."""
        started = time.monotonic()
        result: str | None = None
        error: str | None = None
        death: BaseException | None = None
        try:
            result = generate_text(worker.backend, request.prompt, request.max_tokens)
        except Exception as exc:  # returned to the caller in the response, never swallowed
            error = describe_exception(exc)
        except BaseException as exc:  # answered first; then this worker ends and is replaced
            error, death = describe_exception(exc), exc
        with self._cond:
            self._release(worker)
            self._counts["completed" if error is None else "failed"] += 1
            self._finish(request, result, error, started)
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
    so far, in `max_concurrent` shards concurrently, with ids ``doc_<n>`` in embedding order.
    """

    def __init__(self, max_concurrent: int = 3, *, embedder: Embedder | None = None) -> None:
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        self.max_concurrent = max_concurrent
        self.index = VectorIndex(embedder)
        self.active = 0
        self.peak_active = 0

    async def _limited(self, semaphore: asyncio.Semaphore, job: Awaitable[R]) -> R:
        async with semaphore:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            try:
                return await job
            finally:
                self.active -= 1

    async def run_all(self, jobs: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        """Run `jobs` (zero-argument async callables) concurrently; results in input order."""
        semaphore = asyncio.Semaphore(self.max_concurrent)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._limited(semaphore, job())) for job in jobs]
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
        """The `top_k` embedded texts most similar to `query`: ``{'id', 'score', 'text'}``."""
        size = len(self.index)
        if size == 0:
            return []
        shard = -(-size // self.max_concurrent)
        shards = [slice(start, min(size, start + shard)) for start in range(0, size, shard)]
        self.index.matrix()  # stack once, before the shards read it from threads
        per_shard = await self.map(lambda rows: self.index.search(query, top_k, rows=rows), shards)
        hits = sorted(
            (hit for hits in per_shard for hit in hits), key=lambda h: (-h.score, h.position)
        )
        return [
            {"id": f"doc_{hit.position}", "score": hit.score, "text": hit.text}
            for hit in hits[:top_k]
        ]


# -- processor cores -----------------------------------------------------------------------------

WORKLOAD_KINDS = ("cpu_bound", "io_bound", "memory_bound")


class WorkloadPlan(TypedDict):
    """A worker plan from `ProcessorCoreOptimizer.optimize_for_workload`."""

    workload_type: str
    num_workers: int
    threading_model: str  # "process" | "thread"
    cpu_affinity: list[int]
    chunk_size: int
    memory_per_worker_mb: float
    reason: str


UsageReader = Callable[[float], list[float]]


def read_core_usage(interval: float) -> list[float]:
    """Per-core CPU usage in percent over `interval` seconds (psutil)."""
    return [float(p) for p in psutil.cpu_percent(interval=interval, percpu=True)]


class ProcessorCoreOptimizer:
    """Plans worker counts from the machine's cores and their measured load.

    Core facts come from `machine` (default: `current_machine()`, so a simulated device
    answers); usage from `usage_reader` (default: psutil over `sample_interval` seconds).
    A core counts as busy above `busy_percent`. Cores with a lower maximum frequency than the
    fastest are the LITTLE cluster of a big.LITTLE CPU.
    """

    def __init__(
        self,
        machine: Machine | None = None,
        *,
        usage_reader: UsageReader = read_core_usage,
        sample_interval: float = 0.2,
        busy_percent: float = 80.0,
    ) -> None:
        self.machine = machine if machine is not None else current_machine()
        self._read_usage = usage_reader
        self.sample_interval = sample_interval
        self.busy_percent = busy_percent
        self.cpu_count = self.machine.cpu_count()
        self.usable_cpus = sorted(self.machine.usable_cpus())
        self.max_freq_mhz = self.machine.cpu_max_freq_mhz()
        self.last_usage: dict[str, float] | None = None

    @property
    def heterogeneous(self) -> bool:
        """True when cores differ in maximum frequency (big.LITTLE)."""
        return len(set(self.max_freq_mhz.values())) > 1

    @property
    def big_cores(self) -> list[int]:
        """Usable cores at the highest maximum frequency (all usable cores if unknown)."""
        if not self.heterogeneous:
            return list(self.usable_cpus)
        top = max(self.max_freq_mhz.values())
        return [c for c in self.usable_cpus if self.max_freq_mhz.get(c) == top]

    @property
    def little_cores(self) -> list[int]:
        big = set(self.big_cores)
        return [c for c in self.usable_cpus if c not in big]

    def monitor_core_usage(self) -> dict[str, float]:
        """Measure usage per core, ``{"core_<n>": percent}``, for the machine's cores."""
        readings = self._read_usage(self.sample_interval)
        usage = {f"core_{n}": value for n, value in enumerate(readings[: self.cpu_count])}
        self.last_usage = usage
        return usage

    def _usage(self) -> dict[str, float]:
        return self.last_usage if self.last_usage is not None else self.monitor_core_usage()

    def idle_cores(self, cores: Sequence[int] | None = None) -> list[int]:
        """Usable cores (or those given) whose last measured usage is below `busy_percent`."""
        usage = self._usage()
        pool = self.usable_cpus if cores is None else list(cores)
        return [c for c in pool if usage.get(f"core_{c}", 0.0) < self.busy_percent]

    def get_optimization_recommendations(self) -> list[str]:
        """Advice derived from the measured usage and the core topology."""
        usage = self._usage()
        advice: list[str] = []
        busy = [core for core, pct in usage.items() if pct >= self.busy_percent]
        mean = sum(usage.values()) / len(usage) if usage else 0.0
        if len(self.usable_cpus) < self.cpu_count:
            advice.append(
                f"Only {len(self.usable_cpus)} of {self.cpu_count} cores are usable by this "
                "process (affinity or container limit): size pools to the usable cores."
            )
        if self.heterogeneous:
            advice.append(
                f"big.LITTLE CPU: big cores {self.big_cores} "
                f"({max(self.max_freq_mhz.values()):.0f} MHz), little cores {self.little_cores}"
                f" ({min(self.max_freq_mhz.values()):.0f} MHz): pin inference threads to the "
                "big cores, background work to the little ones."
            )
        elif not self.max_freq_mhz:
            advice.append("Per-core frequencies are not exposed: treating all cores as equal.")
        if busy:
            advice.append(
                f"{', '.join(busy)} at or above {self.busy_percent:.0f}%: leave them out of "
                "CPU-bound pools, or expect contention."
            )
        if mean >= self.busy_percent:
            advice.append(
                f"Average load {mean:.0f}%: the machine is saturated; queue work instead of "
                "adding threads."
            )
        elif mean < 25.0:
            advice.append(
                f"Average load {mean:.0f}%: {len(self.idle_cores())} idle cores available for "
                "parallel inference or embedding work."
            )
        else:
            advice.append(f"Average load {mean:.0f}%: moderate; keep one core free for the OS.")
        return advice

    def optimize_for_workload(
        self, workload_type: str, data_size: int, memory_mb: float
    ) -> WorkloadPlan:
        """A worker plan for `data_size` items within `memory_mb` megabytes.

        cpu_bound: processes (Python's GIL serialises CPU work in threads) on idle big cores.
        io_bound: threads, up to 4 per usable core, since they mostly wait.
        memory_bound: at most 2 workers, because memory bandwidth, not cores, is the limit on
        small boards (a heuristic, not a measurement).
        """
        if workload_type not in WORKLOAD_KINDS:
            raise ValueError(
                f"unknown workload kind {workload_type!r}; allowed: {', '.join(WORKLOAD_KINDS)}"
            )
        if isinstance(data_size, bool) or not isinstance(data_size, int) or data_size < 0:
            raise ValueError(f"data_size must be an integer >= 0, got {data_size!r}")
        if not memory_mb > 0:
            raise ValueError(f"memory_mb must be > 0, got {memory_mb!r}")
        items = max(1, data_size)
        kind = "big cores" if self.heterogeneous else "cores"
        busy = f"every candidate core is at or above {self.busy_percent:.0f}%: one worker"
        if workload_type == "cpu_bound":
            idle = self.idle_cores(self.big_cores)
            cores = idle or self.big_cores[:1]
            workers, model = min(len(cores), items), "process"
            reason = (
                f"{len(idle)} idle {kind}; processes, since the GIL serialises CPU work in threads"
                if idle
                else busy
            )
        elif workload_type == "io_bound":
            cores = list(self.usable_cpus)
            workers, model = min(4 * len(cores), items, 32), "thread"
            reason = f"I/O waits overlap: 4 threads per usable core over {len(cores)} cores"
        else:
            idle = self.idle_cores()
            cores = idle[:2] or self.usable_cpus[:1]
            workers, model = min(len(cores), items), "thread"
            reason = (
                "memory bandwidth bound: more than 2 workers rarely helps (heuristic)"
                if idle
                else busy
            )
        workers = max(1, workers)
        return {
            "workload_type": workload_type,
            "num_workers": workers,
            "threading_model": model,
            "cpu_affinity": sorted(cores)[:workers] if workload_type != "io_bound" else cores,
            "chunk_size": -(-items // workers),
            "memory_per_worker_mb": memory_mb / workers,
            "reason": reason,
        }


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
