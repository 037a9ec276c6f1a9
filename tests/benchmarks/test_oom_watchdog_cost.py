"""What the simulated OOM killer costs: the shipped scenarios' measured runs, isolated on a
simulated Raspberry Pi 4, with the process-tree watchdog and without it (the baseline arm,
`IsolationLimits(watchdog=False)`: the rlimit alone).

Each scenario runs in both arms back to back, the order alternating by round, in one
process: the median of the pairs' wall-time ratios is the watchdog's cost (the shipped
scenarios are fsync-bound, and this machine's load drifts more between rounds than the
watchdog costs). The bar is a ratio <= 1.02. The parent's
own sampling time over the runs' wall time is printed beside it. Under ``make test`` one smoke
round checks both arms still run; ``make bench`` (``--run-slow``) measures.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_edge.device import oom
from pytest_edge.device.isolated import run_isolated
from pytest_edge.device.session import isolation_limits
from pytest_edge.profiles import load_profile
from pytest_edge.scenarios import load_scenario
from pytest_edge.scenarios.runner import ChildRun, Device, ScenarioRunner
from pytest_edge.scenarios.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios"
PI4 = load_profile("raspberry-pi")
_SAMPLING: list[float] = []  # the watchdog's own time, per watched run


def _scenarios() -> list[Scenario]:
    if str(ROOT) not in sys.path:  # the workloads live in reference_impl/
        sys.path.insert(0, str(ROOT))
    # The measured run is the isolated part; crash cycles run in the crash harness's children.
    return [
        dataclasses.replace(load_scenario(path), crash=None, expect=None)
        for path in sorted(SHIPPED.glob("*.toml"))
    ]


def _isolate(watchdog: bool) -> object:
    def isolate(
        fn: object,
        kwargs: dict[str, object],
        device: Device,
        timeout: float,
        peak_sink: object = None,
    ) -> ChildRun:
        limits = dataclasses.replace(isolation_limits(device.profile, None), watchdog=watchdog)
        outcome = run_isolated(fn, (), kwargs, limits, timeout)  # type: ignore[arg-type]
        if outcome.watch is not None:
            _SAMPLING.append(outcome.watch.seconds_spent)
        return ChildRun(outcome.value, outcome.peak_growth_bytes, tuple(outcome.notes))

    return isolate


def _run_suite(scenarios: list[Scenario], watchdog: bool) -> float:
    """Wall time of one measured run of every scenario, isolated on the Pi 4."""
    device = Device(PI4.name, PI4)
    isolate = _isolate(watchdog)
    start = time.perf_counter()
    for scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix="pytest-edge-bench-") as workdir:
            ScenarioRunner(
                scenario,
                device,
                seed=1,
                workdir=Path(workdir),
                isolate=isolate,  # type: ignore[arg-type]
            ).run()
    return time.perf_counter() - start


def measure(
    rounds: int, scenarios: list[Scenario], warm_up: bool = True
) -> tuple[float, float, float]:
    """(median with / without ratio, seconds with, sampling seconds / seconds with).

    Each scenario runs in both arms back to back (order alternating by round), so the pair
    shares the machine's load at that moment; the median of the pairs' ratios is the cost.
    """
    if warm_up:
        _run_suite(scenarios, True)  # imports, the forkserver, the page cache
    _SAMPLING.clear()
    ratios: list[float] = []
    seconds_with = 0.0
    for index in range(rounds):
        for scenario in scenarios:
            times = {}
            for watchdog in (True, False) if index % 2 == 0 else (False, True):
                times[watchdog] = _run_suite([scenario], watchdog)
            ratios.append(times[True] / times[False])
            seconds_with += times[True]
    return statistics.median(ratios), seconds_with, sum(_SAMPLING) / seconds_with


needs_proc = pytest.mark.skipif(not oom.supported(), reason="needs Linux /proc smaps_rollup")


@needs_proc
def test_watchdog_smoke() -> None:
    quickest = [s for s in _scenarios() if s.name == "agent-state-power-loss"]
    ratio, seconds, sampling = measure(1, quickest, warm_up=False)
    assert ratio > 0
    assert seconds > 0
    assert 0 <= sampling < 1


@needs_proc
@pytest.mark.slow
@pytest.mark.timing
def test_watchdog_costs_at_most_two_percent() -> None:
    ratio, seconds, sampling = measure(6, _scenarios())
    print(
        f"\nOOM watchdog on the shipped scenarios' isolated runs: ratio {ratio:.4f} "
        f"(with / without, {seconds:.1f} s with); sampling {sampling:.2%} of the wall time"
    )
    assert ratio <= 1.02, f"the watchdog made isolated runs {ratio - 1:.1%} slower"
