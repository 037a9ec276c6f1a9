"""What an armed fault costs when it does not fire: a hot function patched vs unpatched.

`make bench` runs the full sizes; under `make test` (xdist) pytest-benchmark is disabled and
the quick variants only check that the measured code runs. The figure to read is the group's
mean per loop of the armed variant minus the unpatched one, divided by the calls per loop.
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.faults import FaultInjector
from tests.faults import helpers

NEVER = 10**12  # nth: armed, counting every call, never reached
SIZES = [pytest.param(10, id="quick"), pytest.param(2_000, id="full", marks=pytest.mark.slow)]
# fsync goes to the disk: fewer calls, and expect noise far above the patch's cost
FSYNC_SIZES = [pytest.param(5, id="quick"), pytest.param(200, id="full", marks=pytest.mark.slow)]


def loop(fn: Callable[..., Any], arg: Any, calls: int) -> None:
    for _ in range(calls):
        fn(arg)


@pytest.fixture
def fsync_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "bench.bin", os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"x")
    yield fd
    os.close(fd)


@pytest.mark.parametrize("calls", SIZES)
@pytest.mark.parametrize("armed", [False, True], ids=["unpatched", "armed-not-firing"])
def test_trivial_function(benchmark: Any, armed: bool, calls: int) -> None:
    benchmark.group = f"faults: trivial function x{calls}"
    with FaultInjector() as faults:
        if armed:
            faults.fail("tests.faults.helpers.ping", OSError(5, "EIO"), nth=NEVER)
        benchmark(loop, helpers.ping, 1, calls)
    assert not faults.fired


@pytest.mark.parametrize("calls", FSYNC_SIZES)
@pytest.mark.parametrize("armed", [False, True], ids=["unpatched", "armed-not-firing"])
def test_os_fsync(benchmark: Any, armed: bool, calls: int, fsync_fd: int) -> None:
    benchmark.group = f"faults: os.fsync x{calls}"
    with FaultInjector() as faults:
        if armed:
            faults.fail("os.fsync", OSError(5, "EIO"), nth=NEVER)
        benchmark(loop, os.fsync, fsync_fd, calls)
    assert not faults.fired


@pytest.mark.slow
def test_overhead_per_call_report(benchmark: Any) -> None:
    """The armed call benchmarked, with the unpatched baseline of the same session beside it."""
    calls = 10_000

    def best(fn: Callable[..., Any]) -> float:
        return min(timeit.repeat(lambda: loop(fn, 1, calls), number=1, repeat=25)) / calls

    baseline = best(helpers.ping)
    with FaultInjector() as faults:
        faults.fail("tests.faults.helpers.ping", OSError(5, "EIO"), nth=NEVER)
        armed = best(helpers.ping)
        benchmark(loop, helpers.ping, 1, calls)
    benchmark.extra_info.update(
        baseline_ns_per_call=baseline * 1e9,
        armed_ns_per_call=armed * 1e9,
        overhead_ns_per_call=(armed - baseline) * 1e9,
        ratio=armed / baseline,
    )
    print(
        f"\nfault overhead: unpatched {baseline * 1e9:.0f} ns/call, armed-not-firing "
        f"{armed * 1e9:.0f} ns/call, overhead {(armed - baseline) * 1e9:.0f} ns/call "
        f"({armed / baseline:.1f}x)"
    )
