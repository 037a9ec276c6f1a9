"""`EdgeDevice`: what the ``edge_device`` fixture gives a test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pytest_edge.device.isolated import IsolationLimits, run_isolated
from pytest_edge.device.session import isolation_limits
from pytest_edge.machine import MIB, Machine, current_machine
from pytest_edge.profiles.model import DeviceProfile


class EdgeDevice:
    """The device a test runs on: its profile, its machine view and isolated runs.

    Picklable (the machine is looked up, not stored), so isolated tests can take it as an
    argument.
    """

    def __init__(
        self,
        profile: DeviceProfile,
        simulated: bool,
        duty_cycle: float | None = None,
        timeout: float | None = None,
        on_peak: Callable[[float], None] | None = None,
    ) -> None:
        self.profile = profile
        self.simulated = simulated
        self.duty_cycle = duty_cycle
        self.timeout = timeout
        self.last_peak_memory_mb: float | None = None
        self._on_peak = on_peak  # the plugin's report hears of every isolated peak

    def __repr__(self) -> str:
        level = "simulated" if self.simulated else "host"
        return f"<EdgeDevice {self.profile.name} ({level})>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (EdgeDevice, (self.profile, self.simulated, self.duty_cycle, self.timeout))

    @property
    def machine(self) -> Machine:
        return current_machine()

    @property
    def memory_budget_mb(self) -> int:
        """Memory a program may grow by on this device: total minus the OS reserve."""
        return self.profile.usable_memory_mb

    def limits(self) -> IsolationLimits:
        """The device's limits; on the host, without installing a simulated view."""
        limits = isolation_limits(self.profile, self.duty_cycle)
        return limits if self.simulated else replace(limits, profile=None)

    def run_isolated(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a child held to the device's memory and cores.

        Returns fn's result; re-raises its exception (``MemoryError`` past the budget).
        `last_peak_memory_mb` is the child's peak growth over its own start.
        """
        __tracebackhide__ = True

        def remember(peak: int) -> None:
            self.last_peak_memory_mb = peak / MIB
            if self._on_peak is not None:
                self._on_peak(peak / MIB)

        self.last_peak_memory_mb = None
        outcome = run_isolated(fn, args, kwargs, self.limits(), self.timeout, remember)
        return outcome.value

    def add_pressure(self, nbytes: int) -> None:
        """Lower the simulated available memory by `nbytes` (simulated devices only)."""
        machine = current_machine()
        add = getattr(machine, "add_pressure", None)
        if add is None:
            raise RuntimeError("add_pressure needs a simulated device (--edge-profile)")
        add(nbytes)

    def remove_pressure(self, nbytes: int) -> None:
        machine = current_machine()
        remove = getattr(machine, "remove_pressure", None)
        if remove is None:
            raise RuntimeError("remove_pressure needs a simulated device (--edge-profile)")
        remove(nbytes)
