"""memory_management sees simulated memory pressure through current_machine()."""

from __future__ import annotations

import pytest

from pytest_edge.faults import FaultInjector

memory = pytest.importorskip("reference_impl.memory_management")


def test_pressure_shrinks_the_model_limit_and_refuses_models(edge_faults: FaultInjector) -> None:
    manager = memory.DeviceMemoryManager(memory.DeviceMemoryProfiler())
    free_mb = manager.profile.available_memory_mb
    small_model = min(100.0, manager.model_memory_limit / 4)
    assert manager.can_load_model(small_model)
    assert manager.get_optimal_context_size(small_model) > 0

    armed = edge_faults.memory_pressure(mb=free_mb)  # take (nearly) all of it
    manager.refresh()
    assert manager.profile.available_memory_mb < 1024  # what other processes freed meanwhile
    assert not manager.can_load_model(small_model)
    assert manager.get_optimal_context_size(small_model) == 0

    armed.disarm()
    manager.refresh()
    assert manager.can_load_model(small_model)
    assert manager.get_optimal_context_size(small_model) > 0
