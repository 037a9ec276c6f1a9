"""ThreadSafeEngine throughput with the default stand-in backend: 4 workers vs 1, as a ratio.

The stand-in backend waits on a clock to model a device's decode rate (see
`DeviceRateBackend`), so this measures how well the engine overlaps requests, not a model.
Three setups:

- ``per-worker``: ``backend_factory`` gives each worker its own backend with its own stream
  rate (one context per worker, like llama-server's slots): the ideal is 4x.
- ``shared-backend``: one backend object shared by the workers, which the engine enters one
  worker at a time (a llama.cpp context is not reentrant): the ideal is 1x. Before the
  engine serialised a shared backend, 4 workers entered it at once and this setup measured
  3.96x at the full size: throughput that a real single context could not deliver.
- ``shared-device``: one backend whose device rate all streams share: 1x, more threads cannot
  make the device faster.

All ratios come from runs in the same session. `make test` runs the smoke size; `make bench`
the full size (``--run-slow``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from reference_impl.concurrency_management import DeviceRateBackend, ThreadSafeEngine


@dataclass(frozen=True)
class Size:
    requests: int
    tokens: int
    tokens_per_second: float
    rounds: int


SMOKE = Size(requests=8, tokens=4, tokens_per_second=400.0, rounds=1)
FULL = Size(requests=32, tokens=48, tokens_per_second=400.0, rounds=3)


SETUPS = ("per-worker", "shared-backend", "shared-device")


def _engine(workers: int, size: Size, setup: str) -> ThreadSafeEngine:
    def stream_rate() -> DeviceRateBackend:
        return DeviceRateBackend(size.tokens_per_second, reply_tokens=size.tokens)

    if setup == "per-worker":
        return ThreadSafeEngine(
            max_workers=workers, backend_factory=stream_rate, max_queue_size=size.requests
        )
    backend = (
        stream_rate()
        if setup == "shared-backend"
        else DeviceRateBackend(
            None, device_tokens_per_second=size.tokens_per_second, reply_tokens=size.tokens
        )
    )
    return ThreadSafeEngine(max_workers=workers, backend=backend, max_queue_size=size.requests)


def _serve(workers: int, size: Size, setup: str) -> float:
    """Seconds to serve `size.requests` requests end to end with `workers` workers."""
    started = time.perf_counter()
    with _engine(workers, size, setup) as engine:
        for n in range(size.requests):
            engine.submit_request(f"r{n}", f"prompt {n}", max_tokens=size.tokens)
        responses = [engine.get_response(timeout=120) for _ in range(size.requests)]
    elapsed = time.perf_counter() - started
    assert all(r is not None and r["ok"] for r in responses), responses
    return elapsed


@pytest.mark.parametrize(
    "size", [pytest.param(SMOKE, id="smoke"), pytest.param(FULL, id="full", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("setup", SETUPS)
def test_engine_throughput_4_workers_vs_1(
    benchmark: BenchmarkFixture,
    capsys: pytest.CaptureFixture[str],
    size: Size,
    setup: str,
) -> None:
    baseline = statistics.median(_serve(1, size, setup) for _ in range(size.rounds))
    four_workers: list[float] = []

    def serve_with_4_workers() -> None:
        four_workers.append(_serve(4, size, setup))

    benchmark.pedantic(serve_with_4_workers, rounds=size.rounds)
    four = statistics.median(four_workers)  # also timed when xdist disables pytest-benchmark
    ratio = baseline / four
    tokens = size.requests * size.tokens
    benchmark.extra_info.update(
        {
            "tokens_per_s_1_worker": tokens / baseline,
            "tokens_per_s_4_workers": tokens / four,
            "throughput_ratio_4_vs_1": ratio,
        }
    )
    with capsys.disabled():  # the figure belongs in the `make bench` output
        print(
            f"\nengine {setup} "
            f"{size.requests}x{size.tokens} tokens at {size.tokens_per_second:g} tok/s: "
            f"1 worker {tokens / baseline:.0f} tok/s, 4 workers {tokens / four:.0f} tok/s, "
            f"ratio {ratio:.2f}x"
        )
    if size is FULL:
        # Loose bounds: the machine is shared and noisy. Per-worker backends must overlap; a
        # shared backend or device must not pretend to go faster than one stream.
        if setup == "per-worker":
            assert ratio > 2.0
        else:
            assert ratio < 1.5
