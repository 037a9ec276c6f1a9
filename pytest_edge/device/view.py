"""The view: while installed, psutil / os / multiprocessing answer as the simulated device.

Patched (module attributes, so code calling ``psutil.virtual_memory()`` or ``os.cpu_count()``
through the module sees the device):

- ``psutil.virtual_memory``, ``psutil.swap_memory``, ``psutil.cpu_count``, ``psutil.cpu_freq``,
  ``psutil.cpu_percent`` (``percpu=True`` gives one entry per device core);
- ``os.cpu_count``, ``os.sched_getaffinity`` (for this process), ``os.process_cpu_count``
  (Python >= 3.13);
- ``multiprocessing.cpu_count`` reads ``os.cpu_count`` at call time, so it follows.

Not covered: a name bound before the view was installed (``from os import cpu_count`` at
import time keeps the real function), C extensions reading the system directly, and files such
as ``/proc/meminfo`` read by hand; code should ask `pytest_edge.current_machine()` for those
facts, which the plugin points at the same simulated device. Child processes do not inherit
the view (they start with the real modules).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import psutil

from pytest_edge.device.simulated import SimulatedMachine

_REAL_CPU_PERCENT = psutil.cpu_percent
_TYPES: dict[str, Any] = {}


class _Scpufreq(NamedTuple):
    current: float
    min: float
    max: float


def _result_types() -> dict[str, Any]:
    """psutil's own result types, read once, so patched answers look like the real ones."""
    if not _TYPES:
        _TYPES["svmem"] = type(psutil.virtual_memory())
        _TYPES["sswap"] = type(psutil.swap_memory())
    return _TYPES


def _build_patches(machine: SimulatedMachine) -> list[tuple[ModuleType, str, Any]]:
    types = _result_types()
    svmem, sswap = types["svmem"], types["sswap"]
    profile = machine.profile
    cores = profile.cpu_cores
    mhz = profile.cpu_max_mhz
    own_pid = os.getpid()
    real_getaffinity: Callable[[int], set[int]] | None = getattr(os, "sched_getaffinity", None)

    def virtual_memory() -> Any:
        reading = machine.memory()
        total, available = reading.total_bytes, reading.available_bytes
        used = total - available
        values: dict[str, float] = dict.fromkeys(svmem._fields, 0)
        values.update(
            total=total,
            available=available,
            percent=round(100.0 * used / total, 1) if total else 0.0,
            used=used,
            free=available,
        )
        return svmem(**values)

    def swap_memory() -> Any:
        total = (profile.swap_mb or 0) * 1024 * 1024
        values: dict[str, float] = dict.fromkeys(sswap._fields, 0)
        values.update(total=total, free=total, percent=0.0)
        return sswap(**values)

    def cpu_count(logical: bool = True) -> int:
        return cores

    def cpu_freq(percpu: bool = False) -> Any:
        if mhz is None:
            return [] if percpu else None
        value = _Scpufreq(float(mhz), 0.0, float(mhz))
        return [value] * cores if percpu else value

    def cpu_percent(interval: float | None = None, percpu: bool = False) -> Any:
        overall = _REAL_CPU_PERCENT(interval=interval, percpu=False)
        return [overall] * cores if percpu else overall

    def os_cpu_count() -> int:
        return cores

    def sched_getaffinity(pid: int, /) -> set[int]:
        if pid in (0, own_pid) or real_getaffinity is None:
            return set(range(cores))
        return real_getaffinity(pid)

    patches: list[tuple[ModuleType, str, Any]] = [
        (psutil, "virtual_memory", virtual_memory),
        (psutil, "swap_memory", swap_memory),
        (psutil, "cpu_count", cpu_count),
        (psutil, "cpu_freq", cpu_freq),
        (psutil, "cpu_percent", cpu_percent),
        (os, "cpu_count", os_cpu_count),
    ]
    if real_getaffinity is not None:
        patches.append((os, "sched_getaffinity", sched_getaffinity))
    if hasattr(os, "process_cpu_count"):
        patches.append((os, "process_cpu_count", os_cpu_count))
    return patches


class DeviceView:
    """Installs and removes the patches for one simulated machine; restores by identity."""

    def __init__(self, machine: SimulatedMachine) -> None:
        self.machine = machine
        self._patches = _build_patches(machine)
        self._saved: list[tuple[ModuleType, str, Any]] = []

    @property
    def installed(self) -> bool:
        return bool(self._saved)

    def install(self) -> None:
        if self._saved:
            raise RuntimeError("DeviceView.install: already installed")
        for module, name, replacement in self._patches:
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, replacement)

    def uninstall(self) -> None:
        """Put every original back (the very object saved), in reverse order."""
        while self._saved:
            module, name, original = self._saved.pop()
            setattr(module, name, original)

    def __enter__(self) -> DeviceView:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
