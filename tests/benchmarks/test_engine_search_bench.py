"""TaskGroupManager.run_vector_search against one plain `VectorIndex.search` of the same index.

Both run in the same event loop, interleaved query by query, so the noise of a shared machine
hits both sides alike; the figure is the median of the per-pair ratios (each call of ours over
the plain call just before it), which survives bursts of load that shift whole windows of
minimums. The deterministic bar (one search's work per call) is in
tests/reference_impl/test_engine_search.py; the bound here is a loose sanity check. The
default run uses 1,000 rows (the size the issue measured: sharded 11.8 ms vs 0.7 ms plain);
``make bench`` (``--run-slow``) adds 10,000 and 100,000 rows. Figures go to pytest-benchmark's
``extra_info`` and are printed as ``ENGINE-SEARCH`` lines.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from reference_impl.concurrency_management import TaskGroupManager

_WORDS = [
    *("model", "device", "memory", "token", "context", "latency", "quantized", "weights"),
    *("cache", "batch", "core", "thread", "inference", "edge", "local", "response"),
    *("request", "queue", "worker", "throughput", "budget", "layer", "attention"),
]
QUERY = "device memory cache latency"


def _manager(rows: int) -> TaskGroupManager:
    rng = np.random.default_rng(17)
    texts = [" ".join(rng.choice(_WORDS, 8)) + f" doc{i}" for i in range(rows)]
    manager = TaskGroupManager(max_concurrent=3)
    manager.index.add(texts)
    manager.index.search(QUERY, 1)  # stack the matrix once: both sides search a warm index
    return manager


async def _paired_times(
    ours: Callable[[], Awaitable[object]], plain: Callable[[], object], repetitions: int
) -> list[tuple[float, float]]:
    """(ours, plain) seconds per repetition, alternating one call of each."""
    pairs = []
    for _ in range(repetitions):
        start = time.perf_counter()
        plain()
        middle = time.perf_counter()
        await ours()
        pairs.append((time.perf_counter() - middle, middle - start))
    return pairs


@pytest.mark.parametrize(
    ("rows", "repetitions"),
    [
        pytest.param(1_000, 60, id="1k"),
        pytest.param(10_000, 20, id="10k", marks=pytest.mark.slow),
        pytest.param(100_000, 7, id="100k", marks=pytest.mark.slow),
    ],
)
def test_run_vector_search_costs_about_one_plain_search(
    benchmark: BenchmarkFixture, capsys: pytest.CaptureFixture[str], rows: int, repetitions: int
) -> None:
    manager = _manager(rows)
    expected = [h.text for h in manager.index.search(QUERY, 5)]

    async def ours() -> None:
        hits = await manager.run_vector_search(QUERY, top_k=5)
        assert [h["text"] for h in hits] == expected  # the same answer, not just a fast one

    def plain() -> None:
        manager.index.search(QUERY, 5)

    pairs = asyncio.run(_paired_times(ours, plain, repetitions))
    benchmark.pedantic(lambda: asyncio.run(ours()), rounds=3)
    ratio = statistics.median(o / p for o, p in pairs)
    ours_s, plain_s = min(o for o, _ in pairs), min(p for _, p in pairs)
    benchmark.extra_info.update(
        {"rows": rows, "run_vector_search_s": ours_s, "plain_search_s": plain_s, "ratio": ratio}
    )
    with capsys.disabled():
        print(
            f"\nENGINE-SEARCH {rows} rows: run_vector_search {ours_s * 1e3:.2f} ms, "
            f"plain search {plain_s * 1e3:.2f} ms (minimums), median pair ratio {ratio:.2f}x"
        )
    # One search (inline up to 2,000 rows, else in one worker thread); the sharded version
    # measured 2.33x at 1k rows on this machine. Loose: a loaded 2-core machine is noisy.
    assert ratio < 2.0
