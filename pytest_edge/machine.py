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


@dataclass(frozen=True)
class PressureRecord:
    """One line of a PSI file: % of time stalled over 10/60/300 s, and total stall in µs."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int


@dataclass(frozen=True)
class PressureStall:
    """Memory pressure stall information (PSI).

    `some`: share of time at least one task stalled on memory; `full`: share of time all
    non-idle tasks stalled at once (None where the kernel has no ``full`` line).
    https://docs.kernel.org/accounting/psi.html
    """

    some: PressureRecord
    full: PressureRecord | None


def _parse_pressure_line(line: str) -> tuple[str, PressureRecord]:
    kind, *fields = line.split()
    values = dict(field.partition("=")[::2] for field in fields)
    try:
        record = PressureRecord(
            float(values["avg10"]),
            float(values["avg60"]),
            float(values["avg300"]),
            int(values["total"]),
        )
    except (KeyError, ValueError):
        raise ValueError(
            f"pressure line must read 'some|full avg10=F avg60=F avg300=F total=N', got {line!r}"
        ) from None
    if record.total_us < 0 or not all(
        0.0 <= v <= 100.0 for v in (record.avg10, record.avg60, record.avg300)
    ):
        raise ValueError(f"pressure line has values out of range (0..100 %, total >= 0): {line!r}")
    return kind, record


def parse_pressure(text: str) -> PressureStall:
    """Parse a PSI file (``some ...`` and optionally ``full ...`` lines)."""
    records = dict(_parse_pressure_line(line) for line in text.splitlines() if line.strip())
    if "some" not in records or set(records) - {"some", "full"}:
        raise ValueError(
            f"pressure text must have a 'some' line and at most a 'full' line, got {text!r}"
        )
    return PressureStall(records["some"], records.get("full"))


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

    def _stat_value(self, stat_path: str, key: str) -> int | None:
        """One counter from a cgroup ``memory.stat`` file, or None."""
        for line in (self._read_text(stat_path) or "").splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
        return None

    def _own_cgroup(self, controller: str) -> str | None:
        """This process's cgroup path for a v1 `controller`, or the v2 path for ``""``."""
        for line in (self._read_text("/proc/self/cgroup") or "").splitlines():
            parts = line.strip().split(":", 2)
            if len(parts) != 3:
                continue
            if (controller == "" and parts[0] == "0" and parts[1] == "") or (
                controller and controller in parts[1].split(",")
            ):
                return "/" + parts[2].strip("/")
        return None

    def _cgroup_v2_level(self, rel: str) -> tuple[int, int, str] | None:
        """(limit, working set, limiting file) of one v2 cgroup, if it sets a limit.

        The limit is the smaller of ``memory.max`` and ``memory.high`` (above ``memory.high``
        the kernel throttles and reclaims hard); the working set is ``memory.current`` minus
        ``inactive_file`` from ``memory.stat``, page cache the kernel reclaims before any OOM:
        https://docs.kernel.org/admin-guide/cgroup-v2.html (memory.max, memory.high,
        memory.stat). Kubelet and ``docker stats`` count usage the same way:
        https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/ (its
        https://kubernetes.io/examples/admin/resource/memory-available.sh) and
        https://docs.docker.com/reference/cli/docker/container/stats/
        """
        base = "/sys/fs/cgroup" + ("" if rel == "/" else rel)
        current = (self._read_text(f"{base}/memory.current") or "").strip()
        if not current.isdigit():
            return None
        limits = []
        for name in ("memory.max", "memory.high"):
            text = (self._read_text(f"{base}/{name}") or "max").strip()
            if text.isdigit():
                limits.append((int(text), name))
        if not limits:
            return None
        limit, name = min(limits)
        inactive = self._stat_value(f"{base}/memory.stat", "inactive_file") or 0
        return limit, max(0, int(current) - inactive), name

    def _cgroup_v2_levels(self) -> list[tuple[int, int, str]]:
        """(limit, working set, source) of every limited v2 level, own cgroup up to the root."""
        own = self._own_cgroup("")
        if own is None:
            return []
        if not self._path("/sys/fs/cgroup" + own.rstrip("/")).is_dir():
            own = "/"  # no cgroup namespace: the mount shows our cgroup as its root
        found = []
        level = own
        while True:
            reading = self._cgroup_v2_level(level)
            if reading is not None:
                limit, used, name = reading
                source = "cgroup-v2" if level == own else f"cgroup-v2 {level} {name}"
                found.append((limit, used, source))
            if level == "/":
                return found
            level = level.rsplit("/", 1)[0] or "/"

    def _cgroup_v1(self) -> tuple[int, int, str] | None:
        """v1 memory controller: this process's cgroup if visible, else the mount root.

        ``hierarchical_memory_limit`` in memory.stat includes the ancestors' limits; usage is
        ``usage_in_bytes`` minus ``total_inactive_file``
        (https://docs.kernel.org/admin-guide/cgroup-v1/memory.html, 5.2 stat file).
        """
        own = self._own_cgroup("memory")
        bases = ["/sys/fs/cgroup/memory" + own] if own not in (None, "/") else []
        for base in [*bases, "/sys/fs/cgroup/memory"]:
            limit_text = self._read_text(f"{base}/memory.limit_in_bytes")
            usage_text = self._read_text(f"{base}/memory.usage_in_bytes")
            if limit_text is None or usage_text is None:
                continue
            limit = int(limit_text)
            hierarchical = self._stat_value(f"{base}/memory.stat", "hierarchical_memory_limit")
            if hierarchical is not None:
                limit = min(limit, hierarchical)
            if limit >= _CGROUP_V1_UNLIMITED:
                return None
            inactive = self._stat_value(f"{base}/memory.stat", "total_inactive_file") or 0
            return limit, max(0, int(usage_text) - inactive), "cgroup-v1"
        return None

    def cgroup_memory(self) -> tuple[int, int, str] | None:
        """(limit, working set, source) of the cgroup level that binds this process, if any.

        cgroup v2: every level from this process's cgroup up to the root counts; at each the
        limit is min(memory.max, memory.high) and the room is limit - working set; the level
        with the least room binds (`source` names it when it is an ancestor).
        """
        levels = self._cgroup_v2_levels()
        if levels:
            return min(levels, key=lambda level: (level[0] - level[1], level[0]))
        return self._cgroup_v1()

    def cgroup_limit_bytes(self) -> int | None:
        """The smallest cgroup limit up to the root: the most memory this process can get."""
        levels = self._cgroup_v2_levels()
        if levels:
            return min(limit for limit, _, _ in levels)
        v1 = self._cgroup_v1()
        return None if v1 is None else v1[0]

    def memory_pressure(self) -> PressureStall | None:
        """System-wide memory PSI from ``/proc/pressure/memory``; None where absent.

        Absent on kernels before 4.20 or booted with ``psi=0`` (reading then fails with
        EOPNOTSUPP): https://docs.kernel.org/accounting/psi.html
        """
        text = self._read_text("/proc/pressure/memory")
        if not text:
            return None
        return parse_pressure(text)

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
            binding_limit, usage, source = cgroup
            limit = self.cgroup_limit_bytes() or binding_limit
            total = min(total, limit)
            candidates.append((max(0, binding_limit - usage), source))
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
