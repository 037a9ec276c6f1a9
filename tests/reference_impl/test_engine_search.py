"""TaskGroupManager.run_vector_search does one search's work, whatever `max_concurrent` is."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from reference_impl.concurrency_management import TaskGroupManager
from reference_impl.embeddings import SearchHit, VectorIndex

TEXTS = [f"document {i} about edge inference and memory budgets" for i in range(40)]


class Spy:
    """Counts calls of `VectorIndex.search` and of its IDF weights, and the threads used."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.searches = 0
        self.weights = 0
        self.threads: set[int] = set()
        real_search, real_weights = VectorIndex.search, VectorIndex._weights

        def search(index: VectorIndex, *args: Any, **kwargs: Any) -> list[SearchHit]:
            self.searches += 1
            self.threads.add(threading.get_ident())
            return real_search(index, *args, **kwargs)

        def weights(index: VectorIndex, *args: Any) -> Any:
            self.weights += 1
            return real_weights(index, *args)

        monkeypatch.setattr(VectorIndex, "search", search)
        monkeypatch.setattr(VectorIndex, "_weights", weights)


@pytest.mark.parametrize("max_concurrent", [1, 3, 8])
def test_one_search_and_one_idf_pass_per_query(
    monkeypatch: pytest.MonkeyPatch, max_concurrent: int
) -> None:
    manager = TaskGroupManager(max_concurrent=max_concurrent)
    asyncio.run(manager.run_embedding_generation(TEXTS))
    expected = manager.index.search("document 7 memory", 5)
    spy = Spy(monkeypatch)
    hits = asyncio.run(manager.run_vector_search("document 7 memory", top_k=5))
    # Sharding ran one search per shard, each recomputing IDF over the whole index.
    assert (spy.searches, spy.weights) == (1, 1)
    assert [h["id"] for h in hits] == [f"doc_{h.position}" for h in expected]
    assert [h["score"] for h in hits] == [h.score for h in expected]


def test_a_large_index_is_searched_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = TaskGroupManager(inline_search_rows=10)
    asyncio.run(manager.run_embedding_generation(TEXTS))
    spy = Spy(monkeypatch)

    async def search() -> int:
        await manager.run_vector_search("memory", top_k=3)
        return threading.get_ident()

    loop_thread = asyncio.run(search())
    assert len(spy.threads) == 1
    assert loop_thread not in spy.threads


def test_a_small_index_is_searched_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = TaskGroupManager()  # 40 rows: below the default 2,000
    asyncio.run(manager.run_embedding_generation(TEXTS))
    spy = Spy(monkeypatch)
    asyncio.run(manager.run_vector_search("memory", top_k=3))
    assert spy.threads == {threading.get_ident()}


def test_bad_inline_search_rows_is_named() -> None:
    with pytest.raises(ValueError, match=r"inline_search_rows must be an integer, got 1\.5"):
        TaskGroupManager(inline_search_rows=1.5)  # type: ignore[arg-type]
