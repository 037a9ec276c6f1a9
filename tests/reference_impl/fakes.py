"""Small fakes for tests: a `Machine` with fixed, adjustable facts instead of the host's, and a
SQLite connection whose COMMIT fails on demand."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

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


class FailingCommit(sqlite3.Connection):
    """Raises "disk I/O error" on COMMIT while armed, like an injected fault at that statement
    (a `factory=` for `sqlite3.connect`; arm with ``monkeypatch.setattr(FailingCommit,
    "armed", True)``)."""

    armed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if type(self).armed and sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)
