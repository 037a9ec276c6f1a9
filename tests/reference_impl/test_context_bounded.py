"""Tier 3 is bounded by a configured cap; older turns spill to SQLite or are dropped, counted."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from reference_impl.context_optimization import (
    ContextConfig,
    ThreeTieredContextSystem,
    estimate_tokens,
)
from tests.reference_impl.conversation import QUERY, add_turns, first_sentence, prompt_cpu_costs


def test_without_a_spill_path_the_oldest_turns_are_dropped_and_counted() -> None:
    config = ContextConfig(max_context_tokens=400, buffer_tokens=60, max_semantic_items=20)
    with ThreeTieredContextSystem(config) as system:
        system.add_message("user", "The spare key hides under the blue flowerpot.")
        for n in range(99):
            system.add_message("user", f"Turn {n} about the battery of device {n}.")
        stats = system.get_statistics()
        assert stats["semantic_in_memory"] == 20
        assert stats["semantic_dropped"] == 80
        assert stats["semantic_spilled"] == 0
        assert stats["semantic_memory_size"] == 20
        assert stats["total_messages"] == 100
        assert system.get_semantic_matches("spare key flowerpot") == []


def test_with_a_spill_path_older_turns_stay_searchable(tmp_path: Path) -> None:
    config = ContextConfig(max_context_tokens=400, buffer_tokens=60, max_semantic_items=20)
    with ThreeTieredContextSystem(config, spill_path=tmp_path / "spill.sqlite") as system:
        system.add_message("user", "The spare key hides under the blue flowerpot.")
        for n in range(99):
            system.add_message("user", f"Turn {n} about the battery of device {n}.")
        stats = system.get_statistics()
        assert stats["semantic_in_memory"] == 20
        assert stats["semantic_spilled"] == 80
        assert stats["semantic_dropped"] == 0
        assert stats["semantic_memory_size"] == 100
        matches = system.get_semantic_matches("where is the spare key flowerpot?", top_k=1)
        assert [m["index"] for m in matches] == [0]
        assert matches[0]["score"] > 0
        assert "blue flowerpot" in system.get_final_prompt("where is the spare key?")


def test_a_bad_cap_is_named() -> None:
    with pytest.raises(ValueError, match="max_semantic_items must be an integer >= 1, got 0"):
        ContextConfig(max_semantic_items=0)


def _traced_growth(system: ThreeTieredContextSystem, start: int, stop: int) -> int:
    """Bytes allocated while adding turns start..stop that are still held afterwards."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        add_turns(system, start, stop)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


class CountingCounter:
    """`estimate_tokens` that tallies the characters it measured: the prompt's main work."""

    def __init__(self) -> None:
        self.chars = 0

    def __call__(self, text: str) -> int:
        self.chars += len(text)
        return estimate_tokens(text)


def _work(system: ThreeTieredContextSystem, counter: CountingCounter) -> tuple[int, int]:
    """(characters token-counted, rows scored) by one get_final_prompt: deterministic."""
    before = counter.chars
    system.get_final_prompt(QUERY)
    return counter.chars - before, len(system.memory)


def test_20k_turns_cost_at_most_twice_1k_and_memory_stays_at_the_cap() -> None:
    """The issue's bar, with the default cap (1024 turns) and the default lexical embedder.

    Memory (tracemalloc): a fresh system's first 1k turns leave S bytes held; the last 4k of
    20k turns leave at most 1.25 S held (an unbounded tier 3 would hold about 4 S). Cost: the
    work of one prompt (characters measured by the token counter, rows scored by the search)
    at 20k is within 1.25x / equal to 1k, and min-of-20 interleaved CPU times give
    get_final_prompt at 20k <= 2x at 1k.
    """
    small_counter, large_counter = CountingCounter(), CountingCounter()
    with (
        ThreeTieredContextSystem(summarizer=first_sentence, token_counter=small_counter) as small,
        ThreeTieredContextSystem(summarizer=first_sentence, token_counter=large_counter) as large,
    ):
        small_bytes = _traced_growth(small, 0, 1000)
        add_turns(large, 0, 16000)
        window_bytes = _traced_growth(large, 16000, 20000)
        stats = large.get_statistics()
        assert stats["total_messages"] == 20000
        assert stats["semantic_in_memory"] == ContextConfig().max_semantic_items == 1024
        assert stats["semantic_dropped"] == 20000 - 1024
        assert window_bytes <= 1.25 * small_bytes, (small_bytes, window_bytes)
        (small_chars, small_rows), (large_chars, large_rows) = (
            _work(small, small_counter),
            _work(large, large_counter),
        )
        assert (small_rows, large_rows) == (1000, 1024)
        assert large_chars <= 1.25 * small_chars, (small_chars, large_chars)
        small_cost, large_cost = prompt_cpu_costs([small, large])
        assert large_cost <= 2 * small_cost, (small_cost, large_cost)


def test_a_foreign_spill_file_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    from reference_impl.context_optimization import ContextStateError

    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"not a database at all, just some notes" * 40)
    with pytest.raises(ContextStateError, match=f"{junk}.*not a usable spill database"):
        ThreeTieredContextSystem(spill_path=junk)
    assert junk.read_bytes().startswith(b"not a database")
    other = tmp_path / "app.sqlite"
    import sqlite3

    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users(name TEXT)")
    db.close()
    with pytest.raises(ContextStateError, match="not a context spill database"):
        ThreeTieredContextSystem(spill_path=other)
