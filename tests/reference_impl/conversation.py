"""A long synthetic conversation for the context system's bounded-cost tests and benchmarks."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from reference_impl.context_optimization import ThreeTieredContextSystem, TokenCounter

QUERY = "which warehouse ships late in december with the battery?"

WORDS = (
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
)


def turn_text(rng: random.Random, words: int = 30) -> str:
    """One turn: `words` numbered words from a fixed vocabulary (so IDF has work to do)."""
    return " ".join(rng.choice(WORDS) + str(rng.randrange(200)) for _ in range(words)) + "."


POOL = [turn_text(random.Random(seed), words=12) for seed in range(997)]


def first_sentence(texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
    """A cheap summariser for bulk adding: the first sentence of the chunk."""
    return texts[0].split(".")[0][: max_tokens * 2]


def add_turns(system: ThreeTieredContextSystem, start: int, stop: int) -> None:
    """Add turns `start`..`stop` (alternating roles) and wait for their compression."""
    for n in range(start, stop):
        # A fresh string per turn (so tracemalloc sees it), drawn from a fixed pool.
        system.add_message("user" if n % 2 == 0 else "assistant", POOL[n % len(POOL)] + " ok.")
    system.flush()


def prompt_cpu_costs(systems: Sequence[ThreeTieredContextSystem], rounds: int = 20) -> list[float]:
    """Min-of-N CPU time (this thread's) of get_final_prompt per system, interleaved.

    Thread CPU time, not wall time: on a loaded 2-core machine a call is preempted many
    times, and wall time charges the waiting to whichever side happened to be running.
    """
    best = [float("inf")] * len(systems)
    for _ in range(rounds):
        for i, system in enumerate(systems):
            start = time.thread_time()
            system.get_final_prompt(QUERY)
            best[i] = min(best[i], time.thread_time() - start)
    return best
