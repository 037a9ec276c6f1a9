"""ThreadSafeEngine throughput with the default stand-in backend: 4 workers vs 1, as a ratio.

The stand-in backend waits on a clock to model a device's decode rate (see
`DeviceRateBackend`), so this measures how well the engine overlaps requests, not a model.
Two device models: independent streams (one model instance per worker: the ideal is 4x) and
one shared device rate (one accelerator for all workers: the ideal is 1x, more threads
cannot make the device faster). Both ratios come from runs in the same session.
`make test` runs the smoke size; `make bench` the full size (``--run-slow``).
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


def _serve(workers: int, size: Size, *, shared_device: bool) -> float:
    """Seconds to serve `size.requests` requests end to end with `workers` workers."""
    backend = DeviceRateBackend(
        tokens_per_second=None if shared_device else size.tokens_per_second,
        device_tokens_per_second=size.tokens_per_second if shared_device else None,
        reply_tokens=size.tokens,
    )
    started = time.perf_counter()
    with ThreadSafeEngine(
        max_workers=workers, backend=backend, max_queue_size=size.requests
    ) as engine:
        for n in range(size.requests):
            engine.submit_request(f"r{n}", f"prompt {n}", max_tokens=size.tokens)
        responses = [engine.get_response(timeout=120) for _ in range(size.requests)]
    elapsed = time.perf_counter() - started
    assert all(r is not None and r["ok"] for r in responses), responses
    return elapsed


@pytest.mark.parametrize(
    "size", [pytest.param(SMOKE, id="smoke"), pytest.param(FULL, id="full", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("shared_device", [False, True], ids=["independent", "shared-device"])
def test_engine_throughput_4_workers_vs_1(
    benchmark: BenchmarkFixture,
    capsys: pytest.CaptureFixture[str],
    size: Size,
    shared_device: bool,
) -> None:
    baseline = statistics.median(
        _serve(1, size, shared_device=shared_device) for _ in range(size.rounds)
    )
    four_workers: list[float] = []

    def serve_with_4_workers() -> None:
        four_workers.append(_serve(4, size, shared_device=shared_device))

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
            f"\nengine {'shared-device' if shared_device else 'independent'} "
            f"{size.requests}x{size.tokens} tokens at {size.tokens_per_second:g} tok/s: "
            f"1 worker {tokens / baseline:.0f} tok/s, 4 workers {tokens / four:.0f} tok/s, "
            f"ratio {ratio:.2f}x"
        )
    if size is FULL:
        # Loose bounds: the machine is shared and noisy. Independent streams must overlap;
        # a shared device must not pretend to go faster than its rate.
        if shared_device:
            assert ratio < 1.5
        else:
            assert ratio > 2.0
