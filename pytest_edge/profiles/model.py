"""The `DeviceProfile` value: one device's facts, each from a public source.

"MB" means MiB everywhere. A value that is not known is ``None``, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StorageSpec:
    """The device's main storage, e.g. a microSD card or an NVMe drive."""

    kind: str  # "microSD" | "eMMC" | "NVMe" | "SSD" | "UFS" | ...
    seq_write_mbps: float | None = None
    fsync_latency_ms: float | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """A device to simulate. Fields other than `name`, `memory_mb` and `cpu_cores` may be None."""

    name: str
    memory_mb: int
    cpu_cores: int
    aliases: tuple[str, ...] = ()
    description: str = ""
    os_reserved_mb: int = 0
    cpu_model: str | None = None
    cpu_max_mhz: float | None = None
    # Single-core speed relative to the catalog's named reference CPU (1.0 = as fast).
    cpu_speed_factor: float | None = None
    memory_bandwidth_gbps: float | None = None
    uma: bool | None = None
    gpu: str | None = None  # the GPU's name; None when the device has no usable GPU
    storage: StorageSpec | None = None
    sources: tuple[str, ...] = field(default=())
    # Swap the device has configured; None = unknown, and the view then reports no swap.
    swap_mb: int | None = None
    # Why an alias such as "raspberry-pi" points at this concrete model (catalog text).
    alias_reason: str | None = None

    @property
    def usable_memory_mb(self) -> int:
        """Memory a program can use: total minus what the OS keeps for itself."""
        return self.memory_mb - self.os_reserved_mb
