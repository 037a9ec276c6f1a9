"""ThreeTieredContextSystem at many turns: prompt cost, tier-3 memory, summariser calls.

Every figure comes from the same run as its baseline: get_final_prompt at N turns against
the same call at 1k turns, measured interleaved (min of N) so that noise from a shared machine
hits both sides alike; tier-3 memory as tracemalloc bytes held per turn; summariser calls per
turn as a count. The default embedder and the default cap (1024 turns in memory) are used;
bulk adding uses a cheap first-sentence summariser except in the calls-per-turn case.
`make test` runs the smoke size (4k turns); `make bench` the full 20k (``--run-slow``), with
and without a SQLite spill. Figures go to ``extra_info`` and are printed (``-s``) as
``CTX-BENCH`` lines.

The issue's bar (20k turns <= 2x the 1k cost, memory at the cap) is asserted in
tests/reference_impl/test_context_bounded.py; the asserts here are looser sanity bounds.
Measured on the 2-core dev box (loaded), 2026-12-02: before this work get_final_prompt took
6.6 ms at 1k turns and 70 ms at 20k, tier 3 held ~2.7 KB per turn without bound and the
summariser ran ~2.0 times per turn; after: ~3 ms at both sizes without a spill, tier 3 flat
at the cap, ~0.2 summariser calls per turn. See the report for the figures of each run.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from reference_impl.context_optimization import (
    ContextConfig,
    ThreeTieredContextSystem,
    TokenCounter,
    extractive_summary,
)

QUERY = "which warehouse ships late in december with the battery?"
_WORDS = [
    "battery",
    "thermal",
    "cache",
    "latency",
    "storage",
    "network",
    "quantization",
    "kernel",
    "memory",
    "model",
    "warehouse",
    "sales",
    "forecast",
    "pandas",
    "matplotlib",
    "december",
    "smoothing",
    "device",
    "context",
    "token",
]
_POOL = [
    " ".join(rng.choice(_WORDS) + str(rng.randrange(200)) for _ in range(20)) + "."
    for rng in (random.Random(seed) for seed in range(997))
]


def _first_sentence(texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
    return texts[0].split(".")[0][: max_tokens * 2]


def _add(system: ThreeTieredContextSystem, start: int, stop: int) -> None:
    for n in range(start, stop):
        system.add_message("user" if n % 2 == 0 else "assistant", _POOL[n % len(_POOL)] + " ok.")
    system.flush()


def _costs(systems: Sequence[ThreeTieredContextSystem], rounds: int = 15) -> list[float]:
    best = [float("inf")] * len(systems)
    for _ in range(rounds):
        for i, system in enumerate(systems):
            start = time.perf_counter()
            system.get_final_prompt(QUERY)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _report(benchmark: Any, name: str, **figures: float) -> None:
    benchmark.extra_info.update(figures)
    print(f"\nCTX-BENCH {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items()))


@pytest.mark.parametrize(
    "turns",
    [pytest.param(4000, id="smoke"), pytest.param(20000, id="full", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("spill", [False, True], ids=["no-spill", "spill"])
def test_final_prompt_cost_at_n_turns_vs_1k(
    benchmark: BenchmarkFixture, tmp_path: Path, turns: int, spill: bool
) -> None:
    small_spill = tmp_path / "small.sqlite" if spill else None
    large_spill = tmp_path / "large.sqlite" if spill else None
    with (
        ThreeTieredContextSystem(summarizer=_first_sentence, spill_path=small_spill) as small,
        ThreeTieredContextSystem(summarizer=_first_sentence, spill_path=large_spill) as large,
    ):
        _add(small, 0, 1000)
        _add(large, 0, turns)
        small_s, large_s = _costs([small, large])
        benchmark.pedantic(large.get_final_prompt, args=(QUERY,), rounds=20, iterations=1)
        stats = large.get_statistics()
        _report(
            benchmark,
            f"get_final_prompt {turns} turns ({'spill' if spill else 'no spill'})",
            ms_at_1k=small_s * 1e3,
            ms_at_n=large_s * 1e3,
            ratio=large_s / small_s,
            in_memory=stats["semantic_in_memory"],
            spilled=stats["semantic_spilled"],
        )
        assert stats["semantic_in_memory"] == ContextConfig().max_semantic_items
        assert large_s <= 4 * small_s


def test_tier3_bytes_per_turn_stay_flat(benchmark: BenchmarkFixture) -> None:
    """Bytes still held from the allocations of 1k, then 3k more turns: flat past the cap."""
    with ThreeTieredContextSystem(summarizer=_first_sentence) as system:
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            benchmark.pedantic(_add, args=(system, 0, 1000), rounds=1, iterations=1)
            gc.collect()
            first = tracemalloc.get_traced_memory()[0] - start
            _add(system, 1000, 4000)
            gc.collect()
            total = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
    _report(
        benchmark,
        "tier-3 memory",
        kib_after_1k=first / 1024,
        kib_after_4k=total / 1024,
        bytes_per_turn_past_the_cap=(total - first) / 3000,
    )
    assert total <= 1.25 * first


def test_summarizer_calls_per_turn(benchmark: BenchmarkFixture) -> None:
    calls = 0

    def counting(texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
        nonlocal calls
        calls += 1
        return extractive_summary(texts, max_tokens, count)

    with ThreeTieredContextSystem(summarizer=counting) as system:
        benchmark.pedantic(_add, args=(system, 0, 2000), rounds=1, iterations=1)
        stats = system.get_statistics()
    _report(
        benchmark,
        "summariser calls",
        calls_per_turn=calls / 2000,
        turns_per_chunk=stats["summarized_messages"] / max(1, stats["compressions"]),
        merges=stats["summary_merges"],
    )
    assert calls / 2000 < 0.5
