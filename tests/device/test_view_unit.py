"""The view, the simulated machine and isolated runs, without pytester."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.device.isolated import IsolationLimits, run_isolated
from pytest_edge.device.simulated import SimulatedMachine
from pytest_edge.device.units import parse_size_mb
from pytest_edge.device.view import DeviceView
from pytest_edge.machine import MIB, current_machine, use_machine
from pytest_edge.profiles import DeviceProfile, load_profile

PI4 = load_profile("rpi4")


def test_view_patches_and_restores_by_identity() -> None:
    originals = [psutil.virtual_memory, psutil.cpu_count, os.cpu_count, os.sched_getaffinity]
    machine = SimulatedMachine(PI4)
    with DeviceView(machine) as view:
        assert view.installed
        assert psutil.virtual_memory().total == 4096 * MIB
        assert os.cpu_count() == 4
        assert os.sched_getaffinity(os.getpid()) == {0, 1, 2, 3}
    after = [psutil.virtual_memory, psutil.cpu_count, os.cpu_count, os.sched_getaffinity]
    assert all(a is b for a, b in zip(originals, after, strict=True))


def test_view_restores_when_the_block_raises() -> None:
    original = os.cpu_count
    with pytest.raises(RuntimeError, match="boom"), DeviceView(SimulatedMachine(PI4)):
        raise RuntimeError("boom")
    assert os.cpu_count is original


def test_bound_before_install_is_not_covered() -> None:
    """Documented limit: a name bound before the view keeps the real function."""
    from os import cpu_count as bound_early

    real = bound_early()
    with DeviceView(SimulatedMachine(load_profile("jetson"))):
        assert os.cpu_count() == 6
        assert bound_early is not os.cpu_count
        assert bound_early() == real


def test_pressure_lowers_available_memory_and_is_undone() -> None:
    machine = SimulatedMachine(PI4)
    with use_machine(machine):
        before = current_machine().memory().available_bytes
        machine.add_pressure(1000 * MIB)
        during = current_machine().memory().available_bytes
        machine.remove_pressure(1000 * MIB)
        after = current_machine().memory().available_bytes
    assert before - during >= 990 * MIB
    assert abs(after - before) < 50 * MIB
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        machine.add_pressure(-1)


@given(
    memory=st.integers(min_value=64, max_value=65536),
    reserved_share=st.floats(min_value=0, max_value=0.5),
    pressure_mb=st.integers(min_value=0, max_value=70000),
)
def test_available_is_total_minus_reserve_minus_growth_minus_pressure(
    memory: int, reserved_share: float, pressure_mb: int
) -> None:
    reserved = int(memory * reserved_share)
    profile = DeviceProfile(name="p", memory_mb=memory, cpu_cores=2, os_reserved_mb=reserved)
    machine = SimulatedMachine(profile, baseline_rss=10**15)  # no growth counted
    machine.add_pressure(pressure_mb * MIB)
    reading = machine.memory()
    assert reading.total_bytes == memory * MIB
    assert reading.available_bytes == max(0, (memory - reserved - pressure_mb) * MIB)
    assert 0 <= reading.available_bytes <= reading.total_bytes


def test_accelerator_follows_the_profile() -> None:
    assert SimulatedMachine(load_profile("jetson")).accelerator().kind == "tegra"
    pi = SimulatedMachine(PI4).accelerator()
    assert (pi.gpu, pi.uma) == (False, True)
    assert SimulatedMachine(load_profile("m2-air")).accelerator().kind == "apple-silicon"


@pytest.mark.parametrize(
    ("text", "mb"),
    [("300 MB", 300), ("300MB", 300), ("1.5 GB", 1536), ("512 KiB", 0.5), (64, 64), ("2gib", 2048)],
)
def test_parse_size(text: object, mb: float) -> None:
    assert parse_size_mb(text, "test") == mb


@pytest.mark.parametrize(
    ("text", "message"),
    [("lots", "not a memory size"), ("3 TB", "unknown unit 'tb'"), (0, "larger than zero")],
)
def test_parse_size_errors(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"where: .*{message}"):
        parse_size_mb(text, "where")


@given(st.floats(min_value=0.001, max_value=1e6))
def test_parse_size_round_trips_megabytes(mb: float) -> None:
    assert parse_size_mb(f"{mb:.3f} MB", "x") == pytest.approx(float(f"{mb:.3f}"))


def burn(cpu_seconds: float) -> float:
    start = time.process_time()
    while time.process_time() - start < cpu_seconds:
        pass
    return time.process_time() - start


def test_duty_cycle_slows_the_child_down() -> None:
    """At a 25% duty cycle, 0.3 s of CPU work needs well over 0.3 s of wall time."""
    limits = IsolationLimits(memory_budget_bytes=None, cpus=None, duty_cycle=0.25)
    start = time.monotonic()
    used = run_isolated(burn, (0.3,), {}, limits).value
    wall = time.monotonic() - start
    assert used >= 0.3
    assert wall >= 0.3 / 0.25 * 0.7


class _PickyMemoryError(MemoryError):
    def __init__(self, size: int, where: str) -> None:
        super().__init__(f"{size} bytes in {where}")


def raise_picky_memory_error() -> None:
    raise _PickyMemoryError(10, "arena")


def test_memory_error_subclass_that_cannot_travel_is_still_a_memory_error() -> None:
    limits = IsolationLimits(memory_budget_bytes=None, cpus=None)
    with pytest.raises(MemoryError, match="_PickyMemoryError: 10 bytes in arena"):
        run_isolated(raise_picky_memory_error, (), {}, limits)


def test_no_memory_enforcement_claimed_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_edge.device import isolated
    from pytest_edge.device.session import EdgeRun

    monkeypatch.setattr(isolated.sys, "platform", "darwin")
    assert isolated.memory_rlimit_name() is None
    run = EdgeRun(requested=["rpi4"], profiles=[PI4])
    assert run.header_lines() == [
        "edge: rpi4 -> raspberry-pi-4-4gb, 4096 MB, 4 cores (view only: no rlimit on this platform)"
    ]
    assert any("no memory rlimit on this platform" in note for note in run.enforcement_notes())


def test_child_processes_do_not_inherit_the_view() -> None:
    """Documented: the view lives in the test process; a subprocess sees the real host."""
    import subprocess
    import sys

    real = os.cpu_count()
    with DeviceView(SimulatedMachine(load_profile("rock-5b"))):
        assert os.cpu_count() == 8
        out = subprocess.run(
            [sys.executable, "-c", "import os; print(os.cpu_count())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert int(out) == real
