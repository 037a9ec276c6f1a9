"""Simulated devices: the view (what code observes) and enforcement (limits on children)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.device.fixture import (
        EdgeDevice,
    )
    from pytest_edge.device.isolated import (
        IsolatedChildDied,
        IsolationError,
        IsolationLimits,
        RemoteError,
        run_isolated,
    )
    from pytest_edge.device.oom import (
        OomKilledError,
    )
    from pytest_edge.device.simulated import (
        SimulatedMachine,
    )
    from pytest_edge.device.speed import (
        DeviceSpeedUnknownWarning,
    )
    from pytest_edge.device.view import (
        DeviceView,
    )

__all__ = [
    "DeviceSpeedUnknownWarning",
    "DeviceView",
    "EdgeDevice",
    "IsolatedChildDied",
    "IsolationError",
    "IsolationLimits",
    "OomKilledError",
    "RemoteError",
    "SimulatedMachine",
    "run_isolated",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "DeviceSpeedUnknownWarning": "pytest_edge.device.speed",
    "DeviceView": "pytest_edge.device.view",
    "EdgeDevice": "pytest_edge.device.fixture",
    "IsolatedChildDied": "pytest_edge.device.isolated",
    "IsolationError": "pytest_edge.device.isolated",
    "IsolationLimits": "pytest_edge.device.isolated",
    "OomKilledError": "pytest_edge.device.oom",
    "RemoteError": "pytest_edge.device.isolated",
    "SimulatedMachine": "pytest_edge.device.simulated",
    "run_isolated": "pytest_edge.device.isolated",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
