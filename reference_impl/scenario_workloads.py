"""Workloads of the shipped scenarios (``scenarios/*.toml``): the reference implementation at work.

Each workload follows the scenario contract: ``workload(state_dir, **params)`` returns
``{"items": completed, "errors": failed, "unit": ...}`` (plus ``details`` for custom checks).
Recover functions take the state directory and return ``{key: value}`` as recovered, which
the crash harness compares with the writes the workload acknowledged (``pytest_edge.ack``).
They live in an importable module because they run in child processes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from reference_impl.concurrency_management import (
    DeviceRateBackend,
    QueueFullError,
    ThreadSafeEngine,
)
from reference_impl.context_optimization import ContextConfig, ThreeTieredContextSystem
from reference_impl.production_patterns import (
    StateCorruptedError,
    StatePersistenceManager,
)

Result = dict[str, Any]

STATE_FILE = "agent_state.bin"


# --- production_patterns: state persistence ---------------------------------------------------


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
    system = ThreeTieredContextSystem(config)
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


def engine_requests(
    state_dir: Path,
    requests: int = 200,
    workers: int = 4,
    retries: int = 2,
    tokens_per_second: float = 4000.0,
    reply_tokens: int = 16,
) -> Result:
    """Clients send requests through the engine and retry a failed one up to `retries` times.

    With the scenario's fault (a share of backend calls failing), an item is a request that
    was finally answered; an error is one that failed on every attempt. Every request must
    get exactly one final response: a lost or duplicated response is reported in `details`.
    """
    backend = DeviceRateBackend(tokens_per_second, reply_tokens=reply_tokens)
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
