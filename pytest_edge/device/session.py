"""One run's simulated devices: which profiles, what the host can enforce, peak-memory records.

`EdgeRun` is plain Python: the device plugin feeds it and prints what it says. It is the run's
shared device state: other capabilities read it with `edge_run(config)`, never through the
device plugin. Cheap to import: psutil, the catalog and the isolation code load on first use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from pytest_edge.device.units import MIB

if TYPE_CHECKING:
    from pytest_edge.device.isolated import IsolationLimits
    from pytest_edge.profiles.catalog import ProfileCatalog
    from pytest_edge.profiles.model import DeviceProfile


def host_profile() -> DeviceProfile:
    """This machine as a profile: what `edge_device.profile` is without ``--edge-profile``."""
    from pytest_edge.machine import HostMachine
    from pytest_edge.profiles.model import DeviceProfile

    host = HostMachine()
    reading = host.memory()
    return DeviceProfile(
        name="host",
        memory_mb=int(reading.total_bytes // MIB),
        cpu_cores=host.cpu_count(),
        description="this machine, not simulated (no --edge-profile given)",
    )


def host_cpus() -> tuple[int, ...]:
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    import psutil

    return tuple(range(psutil.cpu_count() or 1))


def isolation_limits(profile: DeviceProfile | None, duty_cycle: float | None) -> IsolationLimits:
    """What an isolated child on `profile` is held to: its usable memory, at most its cores
    (of those this process may use), the duty cycle; no limits for the host (None)."""
    from pytest_edge.device.isolated import IsolationLimits

    if profile is None:
        return IsolationLimits(memory_budget_bytes=None, cpus=None)
    cpus = host_cpus()
    return IsolationLimits(
        memory_budget_bytes=profile.usable_memory_mb * MIB,
        cpus=cpus[: min(profile.cpu_cores, len(cpus))],
        duty_cycle=duty_cycle,
        profile=profile,
    )


def _rlimit_name() -> str | None:
    from pytest_edge.device.isolated import memory_rlimit_name

    return memory_rlimit_name()


@dataclass(frozen=True)
class MemoryRecord:
    """Peak memory growth of one test against its device's budget."""

    nodeid: str
    profile: str
    peak_mb: float
    budget_mb: float
    isolated: bool
    method: str


@dataclass
class EdgeRun:
    """The profiles chosen for a run (first one is the default) and what was measured."""

    requested: list[str]
    profiles: list[DeviceProfile]
    throttle: bool = False
    host_speed_factor: float | None = None
    profile_files: tuple[str, ...] = ()
    records: list[MemoryRecord] = field(default_factory=list)
    _catalog: ProfileCatalog | None = None

    @property
    def catalog(self) -> ProfileCatalog:
        """Loaded on first use, so a run without profiles does not parse any TOML."""
        if self._catalog is None:
            from pytest_edge.profiles.catalog import ProfileCatalog

            self._catalog = ProfileCatalog.load(self.profile_files)
        return self._catalog

    @property
    def active(self) -> bool:
        return bool(self.profiles)

    def header_lines(self) -> list[str]:
        lines = []
        for asked, profile in zip(self.requested, self.profiles, strict=True):
            arrow = asked if asked == profile.name else f"{asked} -> {profile.name}"
            level = "view; memory enforced in isolated tests"
            if _rlimit_name() is None:
                level = "view only: no rlimit on this platform"
            duty = self.duty_cycle(profile)
            if duty is not None:
                level += f"; isolated CPU duty-cycled to {duty:.0%}, an approximation"
            lines.append(
                f"edge: {arrow}, {profile.memory_mb} MB, {profile.cpu_cores} cores ({level})"
            )
        return lines

    def enforcement_notes(self) -> list[str]:
        """What this host cannot enforce for the chosen profiles, said plainly."""
        notes = []
        cpus = len(host_cpus())
        for profile in self.profiles:
            if profile.cpu_cores > cpus:
                notes.append(
                    f"{profile.name} has {profile.cpu_cores} cores but this host lets us use "
                    f"{cpus}: isolated tests run on {cpus} (the view still reports "
                    f"{profile.cpu_cores})"
                )
        if self.profiles and _rlimit_name() is None:
            notes.append(
                "no memory rlimit on this platform: isolated tests are not held to "
                "the device's memory (peak memory is still measured)"
            )
        if self.throttle:
            for profile in self.profiles:
                duty = self.duty_cycle(profile)
                if duty is None:
                    notes.append(f"{profile.name}: no cpu_speed_factor, so no CPU throttling")
            if self.host_speed_factor is None:
                notes.append(
                    "CPU throttling assumes this host is as fast as the reference CPU "
                    "(give --edge-host-speed-factor for a better approximation)"
                )
        return notes

    def duty_cycle(self, profile: DeviceProfile) -> float | None:
        """Share of wall time an isolated child may run to approach the device's speed."""
        from pytest_edge.device.speed import device_speed_factor

        duty = device_speed_factor(profile, self.host_speed_factor)
        if not self.throttle or duty is None:
            return None
        return None if duty >= 1.0 else max(0.05, duty)

    def top_records(self, limit: int = 10) -> list[MemoryRecord]:
        return sorted(self.records, key=lambda r: r.peak_mb, reverse=True)[:limit]

    def summary_lines(self, limit: int = 10) -> list[str]:
        lines = []
        for record in self.top_records(limit):
            share = 100.0 * record.peak_mb / record.budget_mb if record.budget_mb else 0.0
            where = "isolated child" if record.isolated else record.method
            lines.append(
                f"{record.peak_mb:9.1f} MB of {record.budget_mb:7.0f} MB ({share:5.1f}%)  "
                f"{record.profile}  {record.nodeid}  [{where}]"
            )
        return lines


def split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class PeakMemory:
    """A test's peak memory growth, how it was measured, and whether in an isolated child."""

    mb: float
    method: str
    isolated: bool


def budget_failure(
    peak: PeakMemory, budget_mb: float | None, profile: DeviceProfile | None
) -> str | None:
    """Why a test with this peak breaks its ``edge_memory_budget``, or None when it does not."""
    if budget_mb is None or peak.mb <= budget_mb:
        return None
    device = f", device {profile.name}" if profile is not None else ""
    return (
        f"edge_memory_budget: peak memory growth {peak.mb:.1f} MB exceeds the budget "
        f"of {budget_mb:g} MB (measured: {peak.method}{device})"
    )


EDGE_RUN_KEY = pytest.StashKey[EdgeRun]()


def edge_run(config: pytest.Config) -> EdgeRun:
    """The run's devices (set up by the device plugin; an empty run when it is not loaded)."""
    run = config.stash.get(EDGE_RUN_KEY, None)
    if run is None:
        run = config.stash[EDGE_RUN_KEY] = EdgeRun(requested=[], profiles=[])
    return run
