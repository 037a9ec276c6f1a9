"""Simulated devices: the view (what code observes) and enforcement (limits on children)."""

from __future__ import annotations

from pytest_edge.device.fixture import EdgeDevice
from pytest_edge.device.isolated import (
    IsolatedChildDied,
    IsolationError,
    IsolationLimits,
    RemoteError,
    run_isolated,
)
from pytest_edge.device.simulated import SimulatedMachine
from pytest_edge.device.view import DeviceView

__all__ = [
    "DeviceView",
    "EdgeDevice",
    "IsolatedChildDied",
    "IsolationError",
    "IsolationLimits",
    "RemoteError",
    "SimulatedMachine",
    "run_isolated",
]
