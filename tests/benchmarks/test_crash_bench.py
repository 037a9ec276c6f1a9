"""Crash-harness throughput: kill-restart-recover cycles/s and power-loss states checked/s.

Each figure comes with a baseline from the same session: the naive way of doing the same
work with a fresh interpreter per child (what the template process saves). Quick sizes under
``make test``; full sizes with ``--run-slow`` (``make bench``), which also prints the figures
and the ratio. The figures are in each benchmark's extra_info too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.crash import CrashHarness
from pytest_edge.crash.harness import CrashSession
from tests.crash import workloads as w

FULL = pytest.mark.slow
_FIGURES: dict[str, float] = {}


def _show(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print a figure into the terminal output of ``make bench`` (outside capture)."""
    with capsys.disabled():
        print(f"\ncrash bench: {line}")


def _naive_cycle(state_dir: Path) -> None:
    """One kill-restart-recover cycle the naive way: a fresh interpreter for each child."""
    code = (
        "import sys; from tests.crash.workloads import {fn}; print(flush=True); {fn}(sys.argv[1])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code.format(fn="counter_writer"), str(state_dir)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # the interpreter is up and the workload starts: kill it now
    proc.kill()
    proc.wait()
    proc.stdout.close()
    subprocess.run(
        [sys.executable, "-c", code.format(fn="counter_recover"), str(state_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "cycles", [pytest.param(10, id="quick"), pytest.param(200, id="full", marks=FULL)]
)
def test_kill_cycles_per_second(
    benchmark: Any, fast_state_dir: Path, cycles: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with CrashSession(w.counter_writer, w.counter_recover, state_dir=fast_state_dir, seed=1) as s:
        started = time.perf_counter()
        benchmark.pedantic(s.cycle, args=("acks:5",), rounds=cycles, iterations=1)
        rate = cycles / (time.perf_counter() - started)
        s.report.assert_ok()
    benchmark.extra_info["cycles_per_second"] = round(rate, 1)
    benchmark.extra_info["layer"] = s.layer.name
    _FIGURES["kill"] = rate
    if cycles >= 100:
        _show(
            capsys,
            f"{rate:.1f} kill-restart-recover cycles/s (target >= 20; {s.layer.describe()})",
        )


@pytest.mark.parametrize(
    "cycles", [pytest.param(2, id="quick"), pytest.param(20, id="full", marks=FULL)]
)
def test_kill_cycles_naive_baseline(
    benchmark: Any, fast_state_dir: Path, cycles: int, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    benchmark.pedantic(_naive_cycle, args=(fast_state_dir,), rounds=cycles, iterations=1)
    rate = cycles / (time.perf_counter() - started)
    benchmark.extra_info["cycles_per_second"] = round(rate, 1)
    if cycles >= 20 and "kill" in _FIGURES:
        _show(
            capsys,
            f"naive baseline {rate:.1f} cycles/s; the harness is "
            f"{_FIGURES['kill'] / rate:.1f}x faster",
        )


@pytest.mark.parametrize(
    ("cycles", "states"),
    [pytest.param(1, 100, id="quick"), pytest.param(10, 1000, id="full", marks=FULL)],
)
def test_power_loss_states_per_second(
    benchmark: Any,
    fast_state_dir: Path,
    cycles: int,
    states: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports = []

    def run() -> None:
        report = CrashHarness(seed=2).run(
            w.small_safe_writer,
            w.counter_recover,
            state_dir=fast_state_dir,
            cycles=cycles,
            mode="power-loss",
            kill="acks:150",
            max_states=states,
        )
        report.assert_ok()
        reports.append(report)

    benchmark.pedantic(run, rounds=1, iterations=1)
    (report,) = reports
    benchmark.extra_info["states_checked"] = report.states_checked
    benchmark.extra_info["states_per_second"] = round(report.states_per_second, 1)
    benchmark.extra_info["layer"] = report.observed_at
    assert report.states_checked > 0
    if cycles >= 10:
        _show(
            capsys,
            f"{report.states_per_second:.0f} power-loss crash states checked/s "
            f"({report.states_checked} states; target >= 500; {report.observed})",
        )
