"""ThreadSafeEngine and TaskGroupManager surface injected backend failures per request.

Faults are armed on the seams the module documents: ``generate_text`` (every worker calls the
backend through it) and the embedder's ``embed``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_edge.faults import FaultInjector

concurrency = pytest.importorskip(
    "reference_impl.concurrency_management", reason="reference_impl.concurrency_management missing"
)

GENERATE = "reference_impl.concurrency_management.generate_text"
EMBED = "reference_impl.embeddings.HashedLexicalEmbedder.embed"


def serve(engine: Any, n: int, prefix: str) -> dict[str, dict[str, Any]]:
    for i in range(n):
        engine.submit_request(f"{prefix}{i}", f"question {i}", max_tokens=4)
    responses = {}
    for _ in range(n):
        response = engine.get_response(timeout=10)
        assert response is not None, "a request was lost"
        responses[response["id"]] = response
    return responses


def test_engine_returns_each_injected_failure_in_its_own_response(
    edge_faults: FaultInjector,
) -> None:
    armed = edge_faults.fail(GENERATE, TimeoutError("backend timed out"), every=2, times=None)
    engine = concurrency.ThreadSafeEngine(max_workers=3)
    engine.start()
    try:
        responses = serve(engine, 8, "req_")
        failed = [r for r in responses.values() if r.get("error")]
        ok = [r for r in responses.values() if not r.get("error")]
        assert len(failed) == len(armed.fired) == 4  # calls 2, 4, 6, 8
        assert all("TimeoutError: backend timed out" in str(r["error"]) for r in failed)
        assert all(r["result"] == "" for r in failed)
        assert all(r["result"].startswith("[stand-in reply") for r in ok)
        armed.disarm()
        again = serve(engine, 4, "after_")  # the engine keeps serving once the fault is gone
        assert not any(r.get("error") for r in again.values())
    finally:
        engine.stop()


def test_engine_under_seeded_random_failures_loses_no_request(
    edge_faults: FaultInjector,
) -> None:
    armed = edge_faults.fail(
        GENERATE, ConnectionError("model server gone"), probability=0.3, times=None
    )
    engine = concurrency.ThreadSafeEngine(max_workers=4)
    engine.start()
    try:
        responses = serve(engine, 30, "r")
    finally:
        engine.stop()
    failed = [r for r in responses.values() if r.get("error")]
    assert len(responses) == 30
    assert len(failed) == len(armed.fired)
    assert armed.calls == 30


def test_engine_latency_fault_shows_in_the_response(edge_faults: FaultInjector) -> None:
    edge_faults.slow(GENERATE, 0.2, nth=1)
    engine = concurrency.ThreadSafeEngine(max_workers=1)
    engine.start()
    try:
        [response] = serve(engine, 1, "slow").values()
    finally:
        engine.stop()
    assert not response.get("error")
    assert response["latency_s"] >= 0.2


def test_task_group_surfaces_an_embedding_failure_as_an_exception_group(
    edge_faults: FaultInjector,
) -> None:
    manager = concurrency.TaskGroupManager(max_concurrent=3)
    texts = [f"text about edge topic {i}" for i in range(6)]
    armed = edge_faults.fail(EMBED, RuntimeError("embedding backend crashed"), nth=3)
    with pytest.raises(ExceptionGroup) as info:
        asyncio.run(manager.run_embedding_generation(texts))
    assert info.group_contains(RuntimeError, match="embedding backend crashed")
    assert len(armed.fired) == 1
    armed.disarm()
    embeddings = asyncio.run(manager.run_embedding_generation(texts))
    assert len(embeddings) == len(texts)
    hits = asyncio.run(manager.run_vector_search("edge topic 4", top_k=2))
    assert len(hits) == 2
