"""What the simulated-device view costs per test, against pytest's own monkeypatch.

Per test the plugin resets the profile's `SimulatedMachine`, pushes it with `use_machine`,
installs and removes the `DeviceView` patches and measures peak memory (`PeakTracker`).
The baseline is the cheapest comparable thing a suite already pays for: `pytest.MonkeyPatch`
setting and undoing the same attributes. Both run in the same session (group ``view-cost``);
compare the two rows as a ratio. Under ``make test`` (xdist) these are one-round smoke checks;
``make bench`` runs them in full.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack

import psutil
import pytest

from pytest_edge.device.probe import PeakTracker
from pytest_edge.device.simulated import SimulatedMachine
from pytest_edge.device.view import DeviceView
from pytest_edge.machine import current_machine, use_machine
from pytest_edge.profiles import load_profile

PROFILE = load_profile("raspberry-pi")
# The plugin builds one machine and view per profile and reuses them for every test.
MACHINE = SimulatedMachine(PROFILE)
VIEW = DeviceView(MACHINE)


def view_cycle() -> None:
    """One test's worth of view work, as the plugin does it."""
    with ExitStack() as stack:
        MACHINE.reset()
        stack.enter_context(use_machine(MACHINE))
        stack.enter_context(VIEW)
        tracker = PeakTracker()
        tracker.start()
        tracker.peak_growth_bytes()


def monkeypatch_cycle() -> None:
    """Baseline: pytest's MonkeyPatch doing the same number of attribute swaps."""
    patch = pytest.MonkeyPatch()
    for module, name in _TARGETS:
        patch.setattr(module, name, _noop)
    patch.undo()


def _noop(*args: object, **kwargs: object) -> None:
    return None


_TARGETS = [
    (psutil, "virtual_memory"),
    (psutil, "swap_memory"),
    (psutil, "cpu_count"),
    (psutil, "cpu_freq"),
    (psutil, "cpu_percent"),
    (os, "cpu_count"),
    (os, "sched_getaffinity"),
]


def _run(benchmark: Callable[..., object], fn: Callable[[], None], full: bool) -> None:
    if full:
        benchmark.pedantic(fn, rounds=200, iterations=20, warmup_rounds=5)  # type: ignore[attr-defined]
    else:
        benchmark.pedantic(fn, rounds=1, iterations=1)  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="view-cost")
def test_view_cycle_smoke(benchmark: Callable[..., object]) -> None:
    _run(benchmark, view_cycle, full=False)
    assert current_machine().simulated is False
    assert psutil.virtual_memory.__module__ == "psutil"


@pytest.mark.slow
@pytest.mark.benchmark(group="view-cost")
def test_view_cycle(benchmark: Callable[..., object]) -> None:
    _run(benchmark, view_cycle, full=True)


@pytest.mark.slow
@pytest.mark.benchmark(group="view-cost")
def test_monkeypatch_baseline(benchmark: Callable[..., object]) -> None:
    _run(benchmark, monkeypatch_cycle, full=True)


@pytest.mark.slow
@pytest.mark.benchmark(group="view-reads")
def test_virtual_memory_under_view(benchmark: Callable[..., object]) -> None:
    machine = SimulatedMachine(PROFILE)
    with use_machine(machine), DeviceView(machine):
        benchmark(psutil.virtual_memory)


@pytest.mark.slow
@pytest.mark.benchmark(group="view-reads")
def test_virtual_memory_real(benchmark: Callable[..., object]) -> None:
    benchmark(psutil.virtual_memory)
