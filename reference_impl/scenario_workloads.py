"""Workloads of the shipped scenarios (``scenarios/*.toml``): the reference implementation at work.

Each workload follows the scenario contract: ``workload(state_dir, **params)`` returns
``{"items": completed, "errors": failed, "unit": ...}`` (plus ``details`` for custom checks).
Recover functions take the state directory and return ``{key: value}`` as recovered, which
the crash harness compares with the writes the workload acknowledged (``pytest_edge.ack``).
They live in an importable module because they run in child processes.
"""

from __future__ import annotations

import contextlib
import mmap
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pytest_edge.durable import ack, intent
from pytest_edge.machine import current_machine
from reference_impl.concurrency_management import (
    DeviceRateBackend,
    QueueFullError,
    ThreadSafeEngine,
)
from reference_impl.context_optimization import ContextConfig, ThreeTieredContextSystem
from reference_impl.database_optimization import (
    DatabaseConfig,
    EdgeDatabaseError,
    EdgeDatabaseOptimizer,
)
from reference_impl.embeddings import HashedLexicalEmbedder
from reference_impl.memory_management import DeviceMemoryManager, WatermarkLevel
from reference_impl.production_patterns import (
    GracefulDegradationManager,
    StateCorruptedError,
    StateDurabilityError,
    StatePersistenceManager,
    StateWriteError,
)
from reference_impl.self_healing import SelfHealingController, psi_pressure_source

Result = dict[str, Any]

STATE_FILE = "agent_state.bin"


# --- production_patterns: state persistence ---------------------------------------------------


def agent_state_saves(state_dir: Path, saves: int = 200, payload_bytes: int = 256) -> Result:
    """An agent checkpoints its state after every step and acknowledges each saved step.

    On restart (a crash cycle) it loads what is on disk and continues from there, as a real
    agent would. Every `save_state` that returns is acknowledged: its step must survive.
    """
    manager = StatePersistenceManager(Path(state_dir) / STATE_FILE)
    manager.load_state()
    start = int(manager.get_state("step", 0))
    filler = "x" * payload_bytes
    done = errors = 0
    for step in range(start + 1, start + saves + 1):
        note = (f"note-{step % 16}", f"{step}:{filler}")
        manager.set_state("step", step)
        manager.set_state(*note)
        # The save may land even if the process dies before it returns: an intent, not an ack.
        intent("step", step)
        intent(*note)
        try:
            manager.save_state()
        except StateDurabilityError:
            # fsync failed: what is on disk is unknown; a real agent restarts and reloads.
            errors += 1
            manager = StatePersistenceManager(Path(state_dir) / STATE_FILE)
            manager.load_state()
            continue
        except StateWriteError:
            errors += 1
            continue
        ack("step", step)
        ack(*note)
        done += 1
    return {"items": done, "errors": errors, "unit": "saves"}


def recover_agent_state(state_dir: str) -> dict[str, Any]:
    """What a restarted agent finds: the newest valid generation on disk."""
    manager = StatePersistenceManager(Path(state_dir) / STATE_FILE)
    manager.load_state()
    return manager.as_dict()


def corrupted_state_recovery(
    state_dir: Path, rounds: int = 50, damage: str = "flip", payload_bytes: int = 512
) -> Result:
    """Damage the newest state file (as SD-card bit rot or a torn write would) and restart.

    Each round saves two generations, damages the current file (``flip``: one flipped byte in
    the payload; ``truncate``: the file cut in half; ``empty``: zero bytes), and loads with a
    fresh manager. A round counts as an item when the load falls back to the previous
    generation and returns exactly its values; otherwise it is an error.
    """
    if damage not in ("flip", "truncate", "empty"):
        raise ValueError(f"damage={damage!r}: use 'flip', 'truncate' or 'empty'")
    path = Path(state_dir) / STATE_FILE
    done = errors = 0
    fallbacks = 0
    for r in range(rounds):
        writer = StatePersistenceManager(path)
        writer.load_state()
        previous = {"round": r, "generation": "previous", "data": "p" * payload_bytes}
        for key, value in previous.items():
            writer.set_state(key, value)
        writer.save_state()
        writer.set_state("generation", "current")
        writer.save_state()
        raw = bytearray(path.read_bytes())
        if damage == "flip":
            raw[len(raw) - 1 - (r % (payload_bytes // 2))] ^= 0x20
        elif damage == "truncate":
            raw = raw[: len(raw) // 2]
        else:
            raw = bytearray()
        path.write_bytes(bytes(raw))
        reader = StatePersistenceManager(path)
        try:
            report = reader.load_state()
        except StateCorruptedError:
            errors += 1
            continue
        if report.fell_back:
            fallbacks += 1
        if reader.as_dict() == previous and report.fell_back:
            done += 1
        else:
            errors += 1
    return {
        "items": done,
        "errors": errors,
        "unit": "recoveries",
        "details": {"fallbacks": fallbacks},
    }


# --- text for the workloads ---------------------------------------------------------------------

_WORDS = [
    "the",
    "device",
    "keeps",
    "a",
    "local",
    "model",
    "warm",
    "while",
    "the",
    "agent",
    "plans",
    "a",
    "trip",
    "to",
    "the",
    "coast",
    "checks",
    "the",
    "weather",
    "reads",
    "sensor",
    "logs",
    "summarises",
    "meetings",
    "answers",
    "questions",
    "about",
    "invoices",
    "schedules",
    "maintenance",
    "for",
    "the",
    "greenhouse",
    "pumps",
    "and",
    "remembers",
    "that",
    "the",
    "user",
    "prefers",
    "short",
    "replies",
    "battery",
    "level",
    "memory",
    "budget",
    "thermal",
    "throttling",
    "microSD",
    "card",
    "quantized",
    "weights",
    "cache",
]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


# --- context_optimization: a long conversation under a fixed window ---------------------------


def long_conversation(
    state_dir: Path,
    turns: int = 300,
    max_context_tokens: int = 1024,
    buffer_tokens: int = 256,
    words_per_turn: int = 40,
    seed: int = 7,
) -> Result:
    """A chat that runs far past the model's context window; every prompt must still fit.

    Each turn adds a user and an assistant message and builds the prompt for the next query.
    A turn is an item when the prompt is within `max_context_tokens` (by the system's token
    counter) and still contains the query; otherwise it is an error.
    """
    config = ContextConfig(max_context_tokens=max_context_tokens, buffer_tokens=buffer_tokens)
    with ThreeTieredContextSystem(config) as system:  # joins its compression worker
        rng = random.Random(seed)  # noqa: S311 - reproducible test text, not security
        done = errors = 0
        for turn in range(turns):
            system.add_message("user", _sentence(rng, words_per_turn))
            system.add_message("assistant", _sentence(rng, words_per_turn))
            query = f"question {turn}: {_sentence(rng, 8)}"
            prompt = system.get_final_prompt(query)
            if system.count_tokens(prompt) <= max_context_tokens and f"question {turn}:" in prompt:
                done += 1
            else:
                errors += 1
        stats = system.get_statistics()
    return {"items": done, "errors": errors, "unit": "turns", "details": dict(stats)}


def conversation_was_compressed(outcome: Any) -> str | None:
    """Custom check: the window really overflowed (compressions and summaries happened)."""
    details = outcome.result.details
    if details.get("compressions", 0) < 1 or details.get("summary_count", 0) < 1:
        return f"the conversation never overflowed the buffer: {details}"
    return None


# --- concurrency_management: the engine under a failing backend, and a burst ------------------


class FlakyBackend:
    """A backend whose calls fail with probability `rate` (seeded): a stand-in for a model
    runtime that restarts or times out. Thread-safe; the failures are counted."""

    def __init__(self, inner: DeviceRateBackend, rate: float, seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"backend_failure_rate={rate!r}: a probability in 0..1")
        self.inner, self.rate = inner, rate
        self._rng = random.Random(seed)  # noqa: S311 - reproducible failures, not security
        self._lock = threading.Lock()
        self.failures = 0

    def generate(self, prompt: str, max_tokens: int) -> str:
        with self._lock:
            fail = self._rng.random() < self.rate
            self.failures += fail
        if fail:
            raise RuntimeError("backend unavailable (simulated)")
        return self.inner.generate(prompt, max_tokens)


def engine_requests(
    state_dir: Path,
    requests: int = 200,
    workers: int = 4,
    retries: int = 2,
    tokens_per_second: float = 4000.0,
    reply_tokens: int = 16,
    backend_failure_rate: float = 0.0,
    seed: int = 13,
) -> Result:
    """Clients send requests through the engine and retry a failed one up to `retries` times.

    Backend failures come from the scenario's faults (e.g. a `fail` fault on
    ``reference_impl.concurrency_management.generate_text``) or, without fault injection,
    from `backend_failure_rate` (a seeded `FlakyBackend`). An item is a request that
    was finally answered; an error is one that failed on every attempt. Every request must
    get exactly one final response: a lost or duplicated response is reported in `details`.
    """
    backend: DeviceRateBackend | FlakyBackend = DeviceRateBackend(
        tokens_per_second, reply_tokens=reply_tokens
    )
    if backend_failure_rate:
        assert isinstance(backend, DeviceRateBackend)
        backend = FlakyBackend(backend, backend_failure_rate, seed)
    attempts: dict[str, int] = {}
    final: dict[str, bool] = {}
    backend_failures = 0
    with ThreadSafeEngine(workers, backend=backend, max_queue_size=max(requests, 1)) as engine:
        for n in range(requests):
            engine.submit_request(f"r{n}-0", f"request {n}", reply_tokens)
            attempts[f"r{n}"] = 0
        while len(final) < requests:
            response = engine.get_response(timeout=30)
            if response is None:
                break
            base, _, attempt = response["id"].rpartition("-")
            if response["ok"]:
                final[base] = True
                continue
            backend_failures += 1
            if int(attempt) < retries:
                attempts[base] = int(attempt) + 1
                engine.submit_request(f"{base}-{int(attempt) + 1}", response["id"], reply_tokens)
            else:
                final[base] = False
        status = engine.get_queue_status()
    done = sum(final.values())
    return {
        "items": done,
        "errors": requests - done,
        "unit": "requests",
        "details": {
            "unanswered": requests - len(final),
            "backend_failures": backend_failures,
            "retries": sum(attempts.values()),
            "engine": dict(status),
        },
    }


def every_request_answered(outcome: Any) -> str | None:
    """Custom check: no request was left without a final response."""
    unanswered = outcome.result.details.get("unanswered")
    return None if unanswered == 0 else f"{unanswered} requests never got a final response"


def request_burst(
    state_dir: Path,
    burst: int = 400,
    workers: int = 2,
    max_queue_size: int = 16,
    tokens_per_second: float = 2000.0,
    reply_tokens: int = 8,
) -> Result:
    """A burst far larger than the engine's queue, from a client that honours backpressure.

    On `QueueFullError` the client collects a response before trying again. An item is an
    answered request; an error is a failed one. `details` records how often backpressure
    engaged and the most requests ever outstanding, which must never exceed the bound.
    """
    backend = DeviceRateBackend(tokens_per_second, reply_tokens=reply_tokens)
    rejected = answered = failed = 0
    most_outstanding = 0
    outstanding = 0
    with ThreadSafeEngine(workers, backend=backend, max_queue_size=max_queue_size) as engine:
        for n in range(burst):
            while True:
                try:
                    engine.submit_request(f"b{n}", f"burst {n}", reply_tokens)
                except QueueFullError:
                    rejected += 1
                    response = engine.get_response(timeout=30)
                    if response is not None:
                        outstanding -= 1
                        answered += response["ok"]
                        failed += not response["ok"]
                    continue
                outstanding += 1
                most_outstanding = max(most_outstanding, outstanding)
                break
        while outstanding:
            response = engine.get_response(timeout=30)
            if response is None:
                break
            outstanding -= 1
            answered += response["ok"]
            failed += not response["ok"]
    return {
        "items": answered,
        "errors": failed + outstanding,
        "unit": "requests",
        "details": {
            "rejected": rejected,
            "most_outstanding": most_outstanding,
            "max_queue_size": max_queue_size,
        },
    }


def backpressure_held(outcome: Any) -> str | None:
    """Custom check: backpressure engaged, and outstanding requests never passed the bound."""
    d = outcome.result.details
    if d["rejected"] < 1:
        return "the burst never filled the queue: backpressure was not exercised"
    if d["most_outstanding"] > d["max_queue_size"]:
        return (
            f"{d['most_outstanding']} requests outstanding, above the bound {d['max_queue_size']}"
        )
    return None


# --- database_optimization + embeddings: RAG ingest, disk full, lock contention ------------------

_DB_FILE = "rag.db"


def _db_config(state_dir: Path, pool: int = 2, durable: bool = False) -> DatabaseConfig:
    # A Pi-sized configuration: small page cache, no mmap, a short busy timeout.
    return DatabaseConfig(
        db_path=Path(state_dir) / _DB_FILE,
        connection_pool_size=pool,
        cache_size_mb=8,
        enable_mmap=False,
        busy_timeout_ms=2000,
        durable=durable,
    )


def _batch_counts(db_path: Path) -> dict[int, tuple[int, int]]:
    """(documents, vectors) per ingest batch, read with a plain read-only connection."""
    if not db_path.exists():
        return {}
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        counts: dict[int, list[int]] = {}
        for table, column in (("documents", 0), ("embeddings", 1)):
            try:
                rows = conn.execute(
                    f"SELECT json_extract(metadata, '$.batch'), count(*) FROM {table} GROUP BY 1"  # noqa: S608 - fixed table names
                ).fetchall()
            except sqlite3.OperationalError:  # schema not created yet
                rows = []
            for batch, n in rows:
                if batch is not None:
                    counts.setdefault(int(batch), [0, 0])[column] = int(n)
        return {b: (d, v) for b, (d, v) in counts.items()}
    finally:
        conn.close()


def _corpus(documents: int, seed: int) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test text, not security
    return [_sentence(rng, 30) for _ in range(documents)]


def rag_ingest(
    state_dir: Path,
    documents: int = 400,
    batch_size: int = 40,
    dim: int = 128,
    seed: int = 11,
    durable: bool = False,
) -> Result:
    """Ingest documents and their embeddings batch by batch; resume after a restart.

    Each batch is two transactions (documents, then vectors); the batch is acknowledged once
    both are committed. A restarted ingest reads what is already stored and continues, so a
    half-ingested batch gets its missing half. At the end a vector query must find the first
    document (the store is usable, not merely non-empty). ``durable`` is the store's
    ``DatabaseConfig.durable``: with it an acknowledged batch also survives a power cut.
    """
    texts = _corpus(documents, seed)
    embedder = HashedLexicalEmbedder(dim)
    db_path = Path(state_dir) / _DB_FILE
    done = errors = 0
    with EdgeDatabaseOptimizer(_db_config(state_dir, durable=durable)) as db:
        counts = _batch_counts(db_path)
        for b, start in enumerate(range(0, documents, batch_size)):
            idx = range(start, min(start + batch_size, documents))
            have_docs, have_vectors = counts.get(b, (0, 0))
            if have_docs == 0:
                db.batch_insert_documents(
                    {"title": f"doc {i}", "content": texts[i], "metadata": {"batch": b}}
                    for i in idx
                )
            if have_vectors == 0:
                vectors = embedder.embed([texts[i] for i in idx])
                db.batch_insert_embeddings(
                    {"vector_id": f"doc-{i}", "vector": vectors[k], "metadata": {"batch": b}}
                    for k, i in enumerate(idx)
                )
            ack(f"batch-{b}", {"docs": len(idx), "vectors": len(idx)})
            done += len(idx)
        hits = db.search_similar(embedder.embed([texts[0]])[0], top_k=1)
        if not hits or hits[0].get("vector_id") != "doc-0":
            errors += 1
    return {"items": done, "errors": errors, "unit": "docs"}


def recover_rag_store(state_dir: str) -> dict[str, Any]:
    """What a restarted ingest finds: per batch, the documents and vectors stored."""
    counts = _batch_counts(Path(state_dir) / _DB_FILE)
    return {f"batch-{b}": {"docs": d, "vectors": v} for b, (d, v) in sorted(counts.items())}


def create_rag_store(state_dir: Path, **_params: Any) -> None:
    """Setup: create the empty store, so faults on its file can be armed before the workload."""
    EdgeDatabaseOptimizer(_db_config(state_dir)).close()


def ingest_until_disk_full(
    state_dir: Path, batches: int = 60, batch_size: int = 25, seed: int = 5
) -> Result:
    """Keep ingesting after the disk fills: the store must fail batch-wise and stay usable.

    An item is a committed batch, an error a rejected one. `details` compares what the
    workload believes it committed with what is in the file, counts partial batches (must be
    0: a batch is all or nothing) and records whether full-text search still works.
    """
    texts = _corpus(batches * batch_size, seed)
    committed = rejected = 0
    messages: set[str] = set()
    with EdgeDatabaseOptimizer(_db_config(state_dir)) as db:
        for b in range(batches):
            docs = [
                {
                    "title": f"doc {b}-{i}",
                    "content": texts[b * batch_size + i],
                    "metadata": {"batch": b},
                }
                for i in range(batch_size)
            ]
            try:
                db.batch_insert_documents(docs)
            except EdgeDatabaseError as exc:
                rejected += 1
                messages.add(str(exc.__cause__ or exc).split(":")[0][:80])
                continue
            committed += 1
        searchable = bool(db.search_documents(texts[0].split()[0], limit=1)) if committed else None
    counts = _batch_counts(Path(state_dir) / _DB_FILE)
    partial = sum(1 for d, _ in counts.values() if d not in (0, batch_size))
    return {
        "items": committed,
        "errors": rejected,
        "unit": "batches",
        "details": {
            "stored_batches": sum(1 for d, _ in counts.values() if d == batch_size),
            "partial_batches": partial,
            "searchable": searchable,
            "errors_seen": sorted(messages),
        },
    }


def disk_full_handled(outcome: Any) -> str | None:
    """Custom check: the disk did fill, batches stayed atomic, committed data is all there."""
    r = outcome.result
    d = r.details
    if r.errors == 0:
        return "the disk never filled: the fault did not bite"
    if d["partial_batches"]:
        return f"{d['partial_batches']} batches were stored partially"
    if d["stored_batches"] != r.items:
        return f"{r.items} batches reported committed but {d['stored_batches']} are stored"
    if r.items and not d["searchable"]:
        return "full-text search failed after the disk filled"
    return None


def contended_writes(
    state_dir: Path,
    writers: int = 4,
    readers: int = 2,
    batches_per_writer: int = 20,
    batch_size: int = 10,
    seed: int = 3,
) -> Result:
    """Writer and reader threads share one pooled store: SQLite allows one writer at a time.

    Writers insert batches concurrently (real lock contention on the write lock, served by
    the busy timeout); readers search meanwhile. An item is a committed batch, an error a
    batch that failed (e.g. "database is locked" past the busy timeout). Readers must never
    see a partial batch.
    """

    texts = _corpus(writers * batches_per_writer * batch_size, seed)
    committed = [0] * writers
    failed = [0] * writers
    reader_errors: list[str] = []
    stop = threading.Event()
    with EdgeDatabaseOptimizer(_db_config(state_dir, pool=writers + readers)) as db:

        def write(w: int) -> None:
            for b in range(batches_per_writer):
                base = (w * batches_per_writer + b) * batch_size
                docs = [
                    {
                        "title": f"w{w} b{b} {i}",
                        "content": texts[base + i],
                        "metadata": {"batch": w * batches_per_writer + b},
                    }
                    for i in range(batch_size)
                ]
                try:
                    db.batch_insert_documents(docs)
                    committed[w] += 1
                except EdgeDatabaseError:
                    failed[w] += 1

        def read() -> None:
            while not stop.is_set():
                try:
                    db.search_documents("device memory", limit=5, match="any")
                except EdgeDatabaseError as exc:
                    reader_errors.append(str(exc)[:120])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        threads += [threading.Thread(target=read) for _ in range(readers)]
        for t in threads:
            t.start()
        for t in threads[:writers]:
            t.join()
        stop.set()
        for t in threads[writers:]:
            t.join()
    counts = _batch_counts(Path(state_dir) / _DB_FILE)
    partial = sum(1 for d, _ in counts.values() if d not in (0, batch_size))
    return {
        "items": sum(committed),
        "errors": sum(failed),
        "unit": "batches",
        "details": {
            "partial_batches": partial,
            "stored_batches": len(counts) - partial,
            "reader_errors": reader_errors[:5],
        },
    }


def contention_handled(outcome: Any) -> str | None:
    d = outcome.result.details
    if d["partial_batches"]:
        return f"{d['partial_batches']} batches were stored partially"
    if d["stored_batches"] != outcome.result.items:
        return f"{outcome.result.items} batches committed but {d['stored_batches']} stored"
    if d["reader_errors"]:
        return f"readers failed during writes: {d['reader_errors']}"
    return None


# --- memory_management + production_patterns: watermarks drive degradation ---------------------

_MIB = 1024 * 1024


def memory_pressure_steps(
    state_dir: Path,
    step_mb: int = 64,
    steps: int = 8,
    recovery_checks: int = 6,
    background_mb: int = 0,
) -> Result:
    """Memory fills in steps and drains again; degradation must follow the watermarks both ways.

    The workload really allocates `steps` x `step_mb` MB (touched, so resident), reading the
    watermark after each step through `DeviceMemoryManager` (on a simulated device the reading
    is the device's: its total minus what is taken). A `SelfHealingController` wires the
    watermark to `GracefulDegradationManager`: entering MEDIUM (and HIGH) steps degradation up
    one level each; below MEDIUM it steps back down after two calm checks in a row (the
    scenario `self_healing.toml` applies the levels' settings too). Then it frees the memory
    step by step and keeps checking. Each watermark check is an item; a MemoryError while
    allocating is an error (the step did not fit).

    `background_mb` is memory other processes hold (the model runtime, a browser kiosk): on a
    simulated device it is taken from the device's available memory with the device's own
    `add_pressure` for the whole run; on the real host it is ignored (said in `details`).
    """
    machine = current_machine()
    add_pressure = getattr(machine, "add_pressure", None)
    background = bool(background_mb and add_pressure is not None)
    if background:
        machine.add_pressure(background_mb * _MIB)  # type: ignore[attr-defined]
    try:
        return _memory_steps(step_mb, steps, recovery_checks, background_mb if background else 0)
    finally:
        if background:
            machine.remove_pressure(background_mb * _MIB)  # type: ignore[attr-defined]


def _memory_steps(step_mb: int, steps: int, recovery_checks: int, background_mb: int) -> Result:
    manager = DeviceMemoryManager()
    # The same wiring an app uses (reference_impl.self_healing), without settings to apply:
    # MEDIUM asks for one degradation step, HIGH for two; back down after 2 calm checks.
    healing = SelfHealingController(
        GracefulDegradationManager(),
        full_context_tokens=2048,
        full_workers=1,
        recovery_checks=2,
    )
    healing.attach(manager)
    degradation = healing.degradation
    trail: list[tuple[str, str]] = []
    held: list[bytearray] = []
    checks = errors = 0
    max_level = WatermarkLevel.NORMAL
    max_degradation = 0
    refused_after_mb: int | None = None

    def observe() -> None:
        nonlocal checks, max_level, max_degradation
        healing.check()
        level = manager.watermark_level
        checks += 1
        max_level = max(max_level, level)
        max_degradation = max(max_degradation, degradation.level_index)
        trail.append((level.name, degradation.level.name))

    observe()
    for _ in range(steps):
        try:
            block = bytearray(step_mb * _MIB)
            block[::4096] = b"\x01" * len(range(0, len(block), 4096))
        except MemoryError:
            errors += 1
            refused_after_mb = len(held) * step_mb
            break
        held.append(block)
        observe()
    while held:
        held.pop()
        observe()
    for _ in range(recovery_checks):
        observe()
    healing.close()
    return {
        "items": checks,
        "errors": errors,
        "unit": "checks",
        "details": {
            "max_level": max_level.name,
            "max_degradation": max_degradation,
            "final_level": manager.watermark_level.name,
            "final_degradation": degradation.level_index,
            "memory_error_after_mb": refused_after_mb,
            "background_mb": background_mb,
            "trail": trail,
        },
    }


def degraded_and_recovered(outcome: Any) -> str | None:
    """Custom check: MEDIUM reached, degradation stepped up, then back below MEDIUM and full."""
    d = outcome.result.details
    if d["memory_error_after_mb"] is not None:
        return (
            f"MemoryError after {d['memory_error_after_mb']} MB: the workload's memory does not "
            f"fit in the {outcome.budget_mb} MB budget of {outcome.profile}"
        )
    if d["max_level"] not in ("MEDIUM", "HIGH"):
        return f"memory never reached the MEDIUM watermark (max {d['max_level']}): {d['trail']}"
    if d["max_degradation"] < 1:
        return "degradation never stepped up"
    if d["final_level"] not in ("NORMAL", "LOW") or d["final_degradation"] != 0:
        return (
            f"did not recover: watermark {d['final_level']}, degradation level "
            f"{d['final_degradation']} after the memory was freed; trail {d['trail']}"
        )
    return None


# --- self-healing: pressure -> degradation -> smaller window, fewer workers -> recovery ---------


class _HealingRun:
    """The real engine, context system and memory manager of `self_healing_under_pressure`,
    and what was observed of them (never what the controller says it did)."""

    def __init__(
        self,
        engine: ThreadSafeEngine,
        context: ThreeTieredContextSystem,
        manager: DeviceMemoryManager,
        controller: SelfHealingController | None,
        words_per_turn: int,
        reply_tokens: int,
        seed: int,
    ) -> None:
        self.engine, self.context, self.manager = engine, context, manager
        self.controller = controller
        self.words_per_turn, self.reply_tokens = words_per_turn, reply_tokens
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test text, not security
        self.observations: list[dict[str, Any]] = []
        self.watermarks: list[tuple[str, str]] = []
        self.submitted = self.answered = self.failed = 0
        self.turn = 0

    def check(self, phase: str) -> WatermarkLevel:
        """One periodic pressure check, as the app's own loop would do it."""
        if self.controller is not None:
            self.controller.check()  # reads the watermark (and PSI) itself
            level = self.manager.watermark_level
        else:
            level = self.manager.check_watermark()
        self.watermarks.append((phase, level.name))
        return level

    def add_turn(self) -> None:
        self.context.add_message("user", _sentence(self.rng, self.words_per_turn))
        self.context.add_message("assistant", _sentence(self.rng, self.words_per_turn))
        self.turn += 1

    def serve(self, phase: str, requests: int) -> None:
        """`requests` chat turns through the engine; the prompt size and the engine's live
        workers are recorded with every response."""
        prompt_tokens: dict[str, int] = {}
        for n in range(requests):
            self.add_turn()
            prompt = self.context.get_final_prompt(
                f"question {self.turn}: {_sentence(self.rng, 8)}"
            )
            request_id = f"{phase}-{n}"
            prompt_tokens[request_id] = self.context.count_tokens(prompt)
            self.engine.submit_request(request_id, prompt, self.reply_tokens)
            self.submitted += 1
            self.check(phase)
        for _ in range(requests):
            response = self.engine.get_response(timeout=30)
            if response is None:
                break
            self.answered += response["ok"]
            self.failed += not response["ok"]
            status = self.engine.get_queue_status()
            self.observations.append(
                {
                    "phase": phase,
                    "prompt_tokens": prompt_tokens[response["id"]],
                    "workers": status["workers"],
                    "in_progress": status["in_progress"],
                    "threads": _engine_threads(),
                }
            )


def _engine_threads() -> int:
    """Engine worker threads alive in this process, counted by the interpreter itself."""
    return sum(t.name.startswith("ThreadSafeEngine-worker") for t in threading.enumerate())


def _hold_until_medium(run: _HealingRun, step_mb: int, max_hold_mb: int) -> list[mmap.mmap]:
    """Really allocate (and touch) memory in steps until the watermark reaches MEDIUM."""
    held: list[mmap.mmap] = []
    while len(held) * step_mb < max_hold_mb:
        block = mmap.mmap(-1, step_mb * _MIB)  # anonymous: unmapped (returned) on close
        for offset in range(0, len(block), mmap.PAGESIZE):
            block[offset] = 1
        held.append(block)
        if run.check("pressure") >= WatermarkLevel.MEDIUM:
            break
    return held


def self_healing_under_pressure(
    state_dir: Path,
    full_context_tokens: int = 2048,
    workers: int = 4,
    requests_per_phase: int = 16,
    prefill_turns: int = 12,
    step_mb: int = 32,
    max_hold_mb: int = 768,
    recovery_checks: int = 3,
    max_recovery_checks: int = 40,
    words_per_turn: int = 60,
    tokens_per_second: float = 2000.0,
    reply_tokens: int = 16,
    self_healing: bool = True,
    seed: int = 3,
) -> Result:
    """Memory pressure on a busy chat agent: it must shrink its window and workers, keep
    answering, and grow back once the memory is freed.

    The real `ThreeTieredContextSystem` and `ThreadSafeEngine` are driven by a
    `SelfHealingController` over the real `DeviceMemoryManager` (on a simulated device its
    readings are the device's, with the scenario's memory_pressure fault taken). Phases:
    ``baseline`` (a full conversation, all workers), ``pressure`` (the workload really
    allocates memory in steps until the watermark reaches MEDIUM, then serves while holding
    it), ``released`` (the memory freed, checks until the watermark falls, then serves
    again). Every response records the prompt's token count (the context system's counter)
    and the engine's live workers (`get_queue_status`); the check judges those, not the
    controller's claims. ``self_healing=False`` runs the same without the controller.
    Items are answered requests, errors failed ones.
    """
    manager = DeviceMemoryManager()
    context = ThreeTieredContextSystem(
        ContextConfig(
            max_context_tokens=full_context_tokens, buffer_tokens=full_context_tokens // 4
        )
    )
    backend = DeviceRateBackend(tokens_per_second, reply_tokens=reply_tokens)
    engine = ThreadSafeEngine(workers, backend=backend, max_queue_size=max(requests_per_phase, 1))
    controller = (
        SelfHealingController(
            GracefulDegradationManager(),
            full_context_tokens=full_context_tokens,
            full_workers=workers,
            set_context_window=context.set_context_window,
            set_worker_count=engine.set_worker_count,
            pressure_source=psi_pressure_source(),  # None on a simulated device
            recovery_checks=recovery_checks,
        )
        if self_healing
        else None
    )
    run = _HealingRun(engine, context, manager, controller, words_per_turn, reply_tokens, seed)
    with engine, context, controller if controller is not None else contextlib.nullcontext():
        if controller is not None:
            controller.attach(manager)
        for _ in range(prefill_turns):
            run.add_turn()
        run.serve("baseline", requests_per_phase)
        held = _hold_until_medium(run, step_mb, max_hold_mb)
        held_mb = len(held) * step_mb
        run.serve("pressure", requests_per_phase)
        for block in held:
            block.close()
        held.clear()
        for _ in range(max_recovery_checks):
            if run.check("released") < WatermarkLevel.MEDIUM and (
                controller is None or controller.degradation.level_index == 0
            ):
                break
        run.serve("released", requests_per_phase)
    transitions = [] if controller is None else controller.transitions
    return {
        "items": run.answered,
        "errors": run.failed + (run.submitted - run.answered - run.failed),
        "unit": "requests",
        "details": {
            "full_context_tokens": full_context_tokens,
            "full_workers": workers,
            "held_mb": held_mb,
            "unanswered": run.submitted - run.answered - run.failed,
            "observations": run.observations,
            "watermarks": run.watermarks,
            "controller_transitions": [f"{t.old} -> {t.new}: {t.reason}" for t in transitions],
        },
    }


def _phase(observations: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [o for o in observations if o["phase"] == phase]


def healed_and_recovered(outcome: Any) -> str | None:
    """Custom check: from the engine's and the context's own readings, the whole sequence.

    baseline: every prompt answered with all workers, prompts larger than half the window;
    pressure: the watermark reached MEDIUM, every prompt fits half the window, the engine
    ends the phase with at most half its workers serving and at some point no more than half
    its worker threads alive (counted by `threading.enumerate`); released: the watermark fell
    below MEDIUM, the engine is back to all its workers and threads and prompts grow past
    half the window again.
    Every request answered throughout.
    """
    d = outcome.result.details
    full, workers = d["full_context_tokens"], d["full_workers"]
    half_window, half_workers = full // 2, max(1, workers // 2)
    if d["unanswered"] or outcome.result.errors:
        return f"{d['unanswered']} unanswered and {outcome.result.errors} failed requests"
    base, pressure, released = (
        _phase(d["observations"], p) for p in ("baseline", "pressure", "released")
    )
    problems = []
    if not base or max(o["prompt_tokens"] for o in base) <= half_window:
        problems.append(f"baseline prompts never used more than half the {full}-token window")
    if any(o["workers"] != workers for o in base):
        problems.append(f"baseline ran with fewer than {workers} workers")
    marks = dict.fromkeys(p for p, level in d["watermarks"] if level in ("MEDIUM", "HIGH"))
    if "pressure" not in marks:
        problems.append(
            f"the watermark never reached MEDIUM under pressure ({d['held_mb']} MB held)"
        )
    too_big = [o["prompt_tokens"] for o in pressure if o["prompt_tokens"] > half_window]
    if not pressure or too_big:
        problems.append(
            f"under pressure {len(too_big)} prompts exceeded {half_window} tokens:"
            " the window did not shrink"
        )
    if not pressure or pressure[-1]["workers"] > half_workers:
        live = pressure[-1]["workers"] if pressure else None
        problems.append(
            f"under pressure the engine still had {live} live workers (want <= {half_workers})"
        )
    elif min(o["threads"] for o in pressure) > half_workers:
        problems.append(
            f"under pressure {min(o['threads'] for o in pressure)} engine threads stayed alive"
            f" (want <= {half_workers}): retired workers never ended"
        )
    last_mark = [level for p, level in d["watermarks"] if p == "released"][-1:]
    if last_mark in (["MEDIUM"], ["HIGH"]):
        problems.append(f"the watermark stayed {last_mark[0]} after the memory was freed")
    last = released[-1] if released else {"workers": None, "threads": None}
    if last["workers"] != workers or last["threads"] != workers:
        problems.append(
            f"after the pressure the engine has {last['workers']} live workers and"
            f" {last['threads']} threads, not {workers}"
        )
    if not released or max(o["prompt_tokens"] for o in released) <= half_window:
        problems.append(f"after the pressure prompts never grew past {half_window} tokens again")
    return "; ".join(problems) or None
