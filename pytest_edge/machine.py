"""Machine facts: the one place where pytest-edge and the reference implementation read the host.

Code that needs "how much memory, how many cores, which GPU" asks `current_machine()`.
On a real host that is a `HostMachine` reading psutil, ``/proc`` and ``/sys``; while a
simulated device is active (``--edge-profile``) the plugin installs a machine that answers as
the device does (`use_machine`), so code reading these facts directly and code calling psutil
see the same device.

This module imports nothing from pytest: production code may use it.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import psutil

from pytest_edge.errors import EdgeInputError

if TYPE_CHECKING:
    from pytest_edge.profiles.model import DeviceProfile

MIB = 1024 * 1024
# cgroup v1 reports "no limit" as a page-rounded LONG_MAX; anything this large means unlimited.
_CGROUP_V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class MemoryReading:
    """A consistent snapshot of memory, in bytes.

    `total_bytes` is the smaller of physical RAM and the container's limit;
    `available_bytes` the smallest of psutil's estimate, ``MemAvailable`` and the room left
    under the container limit. `bounded_by` names the reading that set `available_bytes`.
    """

    total_bytes: int
    available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    bounded_by: str
    cgroup_limit_bytes: int | None = None

    @property
    def total_mb(self) -> float:
        return self.total_bytes / MIB

    @property
    def available_mb(self) -> float:
        return self.available_bytes / MIB

    @property
    def used_fraction(self) -> float:
        """Share of `total_bytes` not available, in 0..1."""
        if self.total_bytes <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - self.available_bytes / self.total_bytes))


@dataclass(frozen=True)
class Accelerator:
    """What is known about the GPU and whether it shares memory with the CPU.

    ``None`` means unknown: the detector found no evidence either way and does not guess.
    """

    kind: str  # "apple-silicon" | "tegra" | "discrete" | "integrated" | "none" | "unknown"
    gpu: bool | None
    uma: bool | None
    evidence: str


@runtime_checkable
class Machine(Protocol):
    """The facts a program on an edge device asks about its machine."""

    @property
    def name(self) -> str: ...

    @property
    def simulated(self) -> bool: ...

    @property
    def profile(self) -> DeviceProfile | None:
        """The simulated device's profile; None on a real host."""
        ...

    def memory(self) -> MemoryReading: ...

    def cpu_count(self) -> int: ...

    def usable_cpus(self) -> frozenset[int]: ...

    def cpu_max_freq_mhz(self) -> dict[int, float]: ...

    def accelerator(self) -> Accelerator: ...


class InjectedPressure:
    """Memory that fault injection declares taken by other programs; nothing is allocated.

    A machine that inherits this subtracts `pressure_bytes` from the available memory it
    reports, so code reading memory through `current_machine()` (or the psutil view built on
    it) sees the pressure (``edge_faults.memory_pressure(mb)``, ``edge_device.add_pressure``).
    """

    def __init__(self) -> None:
        self._pressure_lock = threading.Lock()
        self._pressure = 0

    @property
    def pressure_bytes(self) -> int:
        with self._pressure_lock:
            return self._pressure

    def add_pressure(self, nbytes: int) -> None:
        """Pretend `nbytes` more are taken by other programs: available memory drops."""
        if nbytes < 0:
            raise EdgeInputError(f"add_pressure: nbytes must be >= 0, got {nbytes}")
        with self._pressure_lock:
            self._pressure += nbytes

    def remove_pressure(self, nbytes: int) -> None:
        """Undo `add_pressure(nbytes)` (never below zero)."""
        if nbytes < 0:
            raise EdgeInputError(f"remove_pressure: nbytes must be >= 0, got {nbytes}")
        with self._pressure_lock:
            self._pressure = max(0, self._pressure - nbytes)

    def clear_pressure(self) -> None:
        with self._pressure_lock:
            self._pressure = 0


class HostMachine(InjectedPressure):
    """Reads the real host. `root` lets tests point it at a fake ``/proc`` and ``/sys`` tree."""

    simulated = False
    profile = None

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        super().__init__()
        self._root = Path(root)

    @property
    def name(self) -> str:
        return f"host ({platform.machine() or 'unknown arch'})"

    def _path(self, absolute: str) -> Path:
        return self._root / absolute.lstrip("/")

    def _read_text(self, absolute: str) -> str | None:
        try:
            return self._path(absolute).read_text()
        except OSError:
            return None

    # -- memory -----------------------------------------------------------------------------

    def meminfo_available_bytes(self) -> int | None:
        """``MemAvailable`` from ``/proc/meminfo`` (Linux >= 3.14), or None."""
        text = self._read_text("/proc/meminfo")
        if text is None:
            return None
        for line in text.splitlines():
            if line.startswith("MemAvailable:"):
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    return int(parts[1]) * 1024
        return None

    def cgroup_memory(self) -> tuple[int, int, str] | None:
        """(limit, usage, "cgroup-v2"|"cgroup-v1") of this process's memory cgroup, if limited."""
        own = self._read_text("/proc/self/cgroup") or ""
        v2_dirs = [
            line.split("::", 1)[1].strip() for line in own.splitlines() if line.startswith("0::")
        ]
        for rel in [*v2_dirs, "/"]:
            base = "/sys/fs/cgroup" + ("" if rel in ("", "/") else rel)
            limit = self._read_text(f"{base}/memory.max")
            usage = self._read_text(f"{base}/memory.current")
            if limit is not None and usage is not None:
                if limit.strip() == "max":
                    return None
                return int(limit), int(usage), "cgroup-v2"
        limit = self._read_text("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        usage = self._read_text("/sys/fs/cgroup/memory/memory.usage_in_bytes")
        if limit is not None and usage is not None and int(limit) < _CGROUP_V1_UNLIMITED:
            return int(limit), int(usage), "cgroup-v1"
        return None

    def memory(self) -> MemoryReading:
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        total = int(vm.total)
        candidates: list[tuple[int, str]] = [(int(vm.available), "psutil")]
        meminfo = self.meminfo_available_bytes()
        if meminfo is not None:
            candidates.append((meminfo, "meminfo"))
        cgroup = self.cgroup_memory()
        limit = None
        if cgroup is not None:
            limit, usage, source = cgroup
            total = min(total, limit)
            candidates.append((max(0, limit - usage), source))
        available, bounded_by = min(candidates)
        if self.pressure_bytes:
            available = max(0, available - self.pressure_bytes)
            bounded_by += " - injected pressure"
        return MemoryReading(
            total_bytes=total,
            available_bytes=min(available, total),
            swap_total_bytes=int(swap.total),
            swap_free_bytes=int(swap.free),
            bounded_by=bounded_by,
            cgroup_limit_bytes=limit,
        )

    # -- CPU ----------------------------------------------------------------------------------

    def cpu_count(self) -> int:
        return os.cpu_count() or 1

    def usable_cpus(self) -> frozenset[int]:
        if hasattr(os, "sched_getaffinity"):
            return frozenset(os.sched_getaffinity(0))
        return frozenset(range(self.cpu_count()))

    def cpu_max_freq_mhz(self) -> dict[int, float]:
        """Per-core maximum frequency from cpufreq (big.LITTLE cores differ); empty if unknown."""
        result: dict[int, float] = {}
        cpu_dir = self._path("/sys/devices/system/cpu")
        for core_dir in sorted(cpu_dir.glob("cpu[0-9]*")):
            text = self._read_text(
                f"/sys/devices/system/cpu/{core_dir.name}/cpufreq/cpuinfo_max_freq"
            )
            if text and text.strip().isdigit():
                result[int(core_dir.name[3:])] = int(text) / 1000.0
        return result

    # -- accelerator ----------------------------------------------------------------------------

    def accelerator(self) -> Accelerator:
        if platform.system() == "Darwin" and platform.machine() == "arm64":
            return Accelerator("apple-silicon", True, True, "Darwin on arm64 (Apple silicon)")
        compatible = (self._read_text("/proc/device-tree/compatible") or "").replace("\0", " ")
        if "nvidia,tegra" in compatible or self._path("/etc/nv_tegra_release").exists():
            return Accelerator(
                "tegra", True, True, "NVIDIA Tegra SoC (device-tree / nv_tegra_release)"
            )
        nvidia = self._path("/proc/driver/nvidia/gpus")
        if nvidia.is_dir() and any(nvidia.iterdir()):
            return Accelerator("discrete", True, False, "/proc/driver/nvidia/gpus lists a GPU")
        model = (self._read_text("/proc/device-tree/model") or "").replace("\0", "")
        if "Raspberry Pi" in model:
            # VideoCore shares RAM with the CPU but exposes no compute API LLM runtimes use.
            return Accelerator("integrated", False, True, f"device-tree model: {model.strip()}")
        drm = self._path("/sys/class/drm")
        if drm.is_dir() and not any(drm.glob("card[0-9]*")):
            return Accelerator("none", False, False, "no DRM card and no NVIDIA driver")
        return Accelerator("unknown", None, None, "no conclusive evidence")


_lock = threading.Lock()
_stack: list[Machine] = []
_host = HostMachine()


def current_machine() -> Machine:
    """The machine code should believe it runs on: a simulated device if one is active."""
    with _lock:
        return _stack[-1] if _stack else _host


@contextmanager
def use_machine(machine: Machine) -> Iterator[Machine]:
    """Make `machine` what `current_machine()` returns until the block exits."""
    with _lock:
        _stack.append(machine)
    try:
        yield machine
    finally:
        with _lock:
            _stack.remove(machine)
