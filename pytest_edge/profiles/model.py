"""The `DeviceProfile` value: one device's facts, each from a public source.

"MB" means MiB everywhere. A value that is not known is ``None``, never guessed. The fields'
annotations are also the profile file's schema (`pytest_edge.profiles.catalog` reads files
with them): what each key allows is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pytest_edge.schema import (
    Declared,
    Flag,
    Invalid,
    Number,
    Opt,
    Optional,
    Record,
    Text,
    TextList,
    Whole,
)

_POSITIVE = Optional(Number(0.0, above=True, what="a number"))
_NAME = Optional(Text("a name"))


class ProfileError(Invalid):
    """A profile file or a profile entry is not valid."""


@dataclass(frozen=True)
class StorageSpec(Declared):
    """The device's main storage, e.g. a microSD card or an NVMe drive."""

    error_type: ClassVar[type[Invalid]] = ProfileError

    kind: Annotated[str, Opt(Text("a name like 'microSD'"), "microSD | eMMC | NVMe | SSD | UFS")]
    seq_write_mbps: Annotated[float | None, Opt(_POSITIVE)] = None
    fsync_latency_ms: Annotated[float | None, Opt(_POSITIVE)] = None


@dataclass(frozen=True)
class DeviceProfile(Declared):
    """A device to simulate. Fields other than `name`, `memory_mb` and `cpu_cores` may be None."""

    error_type: ClassVar[type[Invalid]] = ProfileError

    name: str  # the [profiles.NAME] table's name, not a key inside it
    memory_mb: Annotated[int, Opt(Whole(1, note="MB = MiB"), "total memory")]
    cpu_cores: Annotated[int, Opt(Whole(1), "cores the device has")]
    aliases: Annotated[tuple[str, ...], Opt(TextList(), "other names")] = ()
    description: Annotated[str, Opt(Text(empty=True))] = ""
    os_reserved_mb: Annotated[int, Opt(Whole(0, note="MB = MiB"), "kept by the OS")] = 0
    cpu_model: Annotated[str | None, Opt(_NAME)] = None
    cpu_max_mhz: Annotated[float | None, Opt(_POSITIVE)] = None
    # Single-core speed relative to the catalog's named reference CPU (1.0 = as fast).
    cpu_speed_factor: Annotated[float | None, Opt(_POSITIVE)] = None
    # The benchmark score behind the factor (the reference benchmark's unit) and its source.
    cpu_speed_score: Annotated[float | None, Opt(_POSITIVE)] = None
    cpu_speed_source: Annotated[str | None, Opt(Optional(Text("a URL")))] = None
    # Why no factor is given: floors on this device are then checked at host speed, warned.
    cpu_speed_unknown: Annotated[str | None, Opt(Optional(Text("a reason")))] = None
    memory_bandwidth_gbps: Annotated[float | None, Opt(_POSITIVE)] = None
    uma: Annotated[bool | None, Opt(Optional(Flag()), "CPU and GPU share memory")] = None
    # The GPU's name; None when the device has no usable GPU.
    gpu: Annotated[str | None, Opt(_NAME)] = None
    storage: Annotated[StorageSpec | None, Opt(Optional(Record(StorageSpec)))] = None
    sources: Annotated[tuple[str, ...], Opt(TextList(), "where each number comes from")] = ()
    # Swap the device has configured; None = unknown, and the view then reports no swap.
    swap_mb: Annotated[int | None, Opt(Optional(Whole(0)))] = None
    # Why an alias such as "raspberry-pi" points at this concrete model (catalog text).
    alias_reason: str | None = None

    def cross_check(self) -> None:
        if self.os_reserved_mb >= self.memory_mb:
            raise ProfileError(
                f"must be smaller than memory_mb = {self.memory_mb}",
                "os_reserved_mb",
                self.os_reserved_mb,
            )
        if self.cpu_speed_unknown is not None and self.cpu_speed_factor is not None:
            raise ProfileError(
                f"gives a reason the speed is unknown, but cpu_speed_factor = "
                f"{self.cpu_speed_factor:g}: keep one of the two",
                "cpu_speed_unknown",
                self.cpu_speed_unknown,
            )

    @property
    def usable_memory_mb(self) -> int:
        """Memory a program can use: total minus what the OS keeps for itself."""
        return self.memory_mb - self.os_reserved_mb
