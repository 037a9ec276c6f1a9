"""Memory pressure: less simulated available memory, or N MB really allocated and held."""

from __future__ import annotations

import mmap

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.machine import MIB, HostMachine, memory_pressure

# Never let a held allocation leave the host with less than this available.
HOST_RESERVE_MB = 512


class MemoryPressureFault:
    """``hold=False``: subtract `mb` from the available memory every `Machine` reports
    (`pytest_edge.machine.memory_pressure`). ``hold=True``: allocate `mb` MB, touch every page
    so it is resident, and keep it until the fault ends."""

    def __init__(self, mb: float, hold: bool) -> None:
        if isinstance(mb, bool) or not isinstance(mb, int | float) or not 0 < mb < float("inf"):
            raise FaultArgumentError(f"mb={mb!r}: must be a number of MB > 0")
        if not isinstance(hold, bool):
            raise FaultArgumentError(f"hold={hold!r}: must be True or False")
        self.mb = mb
        self.hold = hold
        self.nbytes = int(mb * MIB)
        self._token: int | None = None
        self._buffer: bytearray | None = None

    def arm(self) -> None:
        if not self.hold:
            self._token = memory_pressure.add(self.nbytes)
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
        if self._token is not None:
            memory_pressure.remove(self._token)
            self._token = None
        self._buffer = None

    def describe(self) -> str:
        how = "held (real allocation)" if self.hold else "simulated (machine readings)"
        return f"{self.mb:g} MB {how}"
