"""Memory pressure: less simulated available memory, or N MB really allocated and held."""

from __future__ import annotations

import mmap
from typing import Protocol, runtime_checkable

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.machine import MIB, HostMachine, current_machine


@runtime_checkable
class PressureHook(Protocol):
    """A machine that takes injected pressure (`pytest_edge.machine.InjectedPressure`)."""

    def add_pressure(self, nbytes: int) -> None: ...

    def remove_pressure(self, nbytes: int) -> None: ...


# Never let a held allocation leave the host with less than this available.
HOST_RESERVE_MB = 512


class MemoryPressureFault:
    """``hold=False``: the current `Machine` (the host, or a simulated device) reports `mb`
    less available memory, through its ``add_pressure`` hook. ``hold=True``:
    allocate `mb` MB, touch every page so it is resident, and keep it until the fault ends.
    The arguments are checked by their declaration (`faults.declarations.MemoryPressure`)."""

    def __init__(self, mb: float, hold: bool) -> None:
        self.mb = mb
        self.hold = hold
        self.nbytes = int(mb * MIB)
        self._machine: PressureHook | None = None
        self._buffer: bytearray | None = None

    def arm(self) -> None:
        if not self.hold:
            machine = current_machine()
            if not isinstance(machine, PressureHook):
                raise FaultArgumentError(
                    f"memory_pressure: the current machine {machine.name!r} takes no injected "
                    "pressure (it has no add_pressure/remove_pressure); use hold=True"
                )
            machine.add_pressure(self.nbytes)
            self._machine = machine
            return
        available = HostMachine().memory().available_bytes
        if self.nbytes > available - HOST_RESERVE_MB * MIB:
            raise FaultArgumentError(
                f"mb={self.mb!r} with hold=True: the host has {available / MIB:.0f} MB "
                f"available and pytest-edge keeps at least {HOST_RESERVE_MB} MB free; "
                "use hold=False to simulate the pressure instead"
            )
        buffer = bytearray(self.nbytes)
        page = mmap.PAGESIZE
        # bytearray memory may be lazily mapped zero pages: write one byte per page.
        buffer[::page] = b"\x01" * len(range(0, self.nbytes, page))
        self._buffer = buffer

    def disarm(self) -> None:
        if self._machine is not None:
            self._machine.remove_pressure(self.nbytes)
            self._machine = None
        self._buffer = None

    def describe(self) -> str:
        how = "held (real allocation)" if self.hold else "simulated (machine readings)"
        return f"{self.mb:g} MB {how}"
