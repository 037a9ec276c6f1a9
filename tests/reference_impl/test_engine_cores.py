"""ProcessorCoreOptimizer: an unmeasured core is unknown, not idle; inference gets llama.cpp's
shape (one process, one thread per performance core), not N processes splitting the memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pytest_edge.device.simulated import SimulatedMachine
from pytest_edge.machine import Accelerator, MemoryReading, use_machine
from pytest_edge.profiles import load_profile
from reference_impl.concurrency_management import ProcessorCoreOptimizer


@dataclass(frozen=True)
class Board:
    """A fake board: `freqs` gives each core's maximum MHz."""

    freqs: tuple[float, ...] = (2400.0,) * 4
    name: str = "fake board"
    simulated: bool = True
    profile: None = None

    def memory(self) -> MemoryReading:
        return MemoryReading(8 << 30, 4 << 30, 0, 0, "fake")

    def cpu_count(self) -> int:
        return len(self.freqs)

    def usable_cpus(self) -> frozenset[int]:
        return frozenset(range(len(self.freqs)))

    def cpu_max_freq_mhz(self) -> dict[int, float]:
        return dict(enumerate(self.freqs))

    def accelerator(self) -> Accelerator:
        return Accelerator("none", False, False, "fake")


BIG_LITTLE = Board(freqs=(1800.0,) * 4 + (2400.0,) * 4)  # like an RK3588


def _reader(values: list[float]) -> Callable[[float], list[float]]:
    return lambda interval: list(values)


# -- unmeasured cores ----------------------------------------------------------------------------


def test_cores_without_a_reading_are_unknown_not_idle() -> None:
    # A 4-core device measured by a reader that sees only 2 cores (a 2-core host).
    optimizer = ProcessorCoreOptimizer(Board(), usage_reader=_reader([5.0, 90.0]))
    usage = optimizer.monitor_core_usage()
    assert list(usage) == ["core_0", "core_1", "core_2", "core_3"]
    assert math.isnan(usage["core_2"])
    assert math.isnan(usage["core_3"])
    assert optimizer.idle_cores() == [0]
    assert optimizer.busy_cores() == [1]
    assert optimizer.unmeasured_cores() == [2, 3]
    advice = optimizer.get_optimization_recommendations()
    assert any("core_2, core_3: no usage reading: unknown" in line for line in advice)
    assert not any("idle cores available" in line and "3 idle" in line for line in advice)


def test_low_average_counts_only_measured_idle_cores() -> None:
    optimizer = ProcessorCoreOptimizer(Board(), usage_reader=_reader([5.0, 5.0]))
    advice = optimizer.get_optimization_recommendations()
    assert any("Average load 5% over 2 measured cores: 2 idle cores" in line for line in advice)


def test_a_simulated_device_from_current_machine_has_unknown_core_load() -> None:
    """The simulated device reports cores and frequencies, not per-core load; the host's
    psutil readings are not the device's."""
    with use_machine(SimulatedMachine(load_profile("raspberry-pi-5-8gb"))):
        optimizer = ProcessorCoreOptimizer(sample_interval=0.01)
    usage = optimizer.monitor_core_usage()
    assert len(usage) == 4
    assert all(math.isnan(value) for value in usage.values())
    assert optimizer.idle_cores() == []
    assert optimizer.unmeasured_cores() == [0, 1, 2, 3]
    advice = optimizer.get_optimization_recommendations()
    assert any(line.startswith("Simulated device: per-core load is unknown") for line in advice)
    plan = optimizer.optimize_for_workload("cpu_bound", 1000, 2000)
    assert (plan["num_workers"], plan["threads_per_worker"]) == (1, 4)  # llama.cpp's default
    assert "4 of them unmeasured" in plan["reason"]
    # Idle-core plans do not count unknown cores as idle either.
    assert optimizer.optimize_for_workload("memory_bound", 1000, 2000)["num_workers"] == 1


# -- llama.cpp's plan ---------------------------------------------------------------------------


def test_inference_is_one_process_with_a_thread_per_big_core() -> None:
    optimizer = ProcessorCoreOptimizer(BIG_LITTLE, usage_reader=_reader([5.0] * 8))
    plan = optimizer.optimize_for_workload("cpu_bound", 1000, 2000)
    assert plan["num_workers"] == 1
    assert plan["threading_model"] == "process"
    assert plan["threads_per_worker"] == 4
    assert plan["cpu_affinity"] == [4, 5, 6, 7]
    assert plan["memory_per_worker_mb"] == 2000  # the model is loaded once, not split 4 ways
    advice = optimizer.get_optimization_recommendations()
    assert any("one inference process with --threads 4 (cores [4, 5, 6, 7])" in a for a in advice)


def test_busy_big_cores_get_no_inference_thread() -> None:
    usage = [5.0, 5.0, 5.0, 5.0, 5.0, 99.0, 5.0, 5.0]
    optimizer = ProcessorCoreOptimizer(BIG_LITTLE, usage_reader=_reader(usage))
    plan = optimizer.optimize_for_workload("cpu_bound", 10, 2000)
    assert (plan["threads_per_worker"], plan["cpu_affinity"]) == (3, [4, 6, 7])
    saturated = ProcessorCoreOptimizer(BIG_LITTLE, usage_reader=_reader([97.0] * 8))
    assert saturated.optimize_for_workload("cpu_bound", 10, 2000)["threads_per_worker"] == 1


def test_independent_cpu_work_still_gets_processes() -> None:
    optimizer = ProcessorCoreOptimizer(BIG_LITTLE, usage_reader=_reader([5.0] * 8))
    plan = optimizer.optimize_for_workload("cpu_bound", 1000, 2000, shared_model=False)
    assert (plan["num_workers"], plan["threads_per_worker"]) == (4, 1)
    assert plan["memory_per_worker_mb"] == 500


@pytest.mark.parametrize("kind", ["io_bound", "memory_bound"])
def test_other_plans_use_one_thread_per_worker(kind: str) -> None:
    optimizer = ProcessorCoreOptimizer(Board(), usage_reader=_reader([5.0] * 4))
    assert optimizer.optimize_for_workload(kind, 100, 100)["threads_per_worker"] == 1
