"""A small fake `Machine` for tests: fixed, adjustable facts instead of the host's."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_edge.machine import MIB, Accelerator, MemoryReading
from pytest_edge.profiles.model import DeviceProfile


@dataclass
class FakeMachine:
    """Answers like a device with `total_mb` of memory of which `available_mb` is free."""

    total_mb: float = 4096.0
    available_mb: float = 3000.0
    cores: int = 4
    accel: Accelerator = field(
        default_factory=lambda: Accelerator("integrated", False, True, "fake device")
    )
    device: DeviceProfile | None = None
    name: str = "fake-device"
    simulated: bool = True

    @property
    def profile(self) -> DeviceProfile | None:
        return self.device

    def memory(self) -> MemoryReading:
        return MemoryReading(
            total_bytes=int(self.total_mb * MIB),
            available_bytes=int(self.available_mb * MIB),
            swap_total_bytes=0,
            swap_free_bytes=0,
            bounded_by="fake",
        )

    def cpu_count(self) -> int:
        return self.cores

    def usable_cpus(self) -> frozenset[int]:
        return frozenset(range(self.cores))

    def cpu_max_freq_mhz(self) -> dict[int, float]:
        return {}

    def accelerator(self) -> Accelerator:
        return self.accel
