"""One run's simulated devices: which profiles, what the host can enforce, peak-memory records.

Plain Python (no pytest): the plugin feeds it and prints what it says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from pytest_edge.device.isolated import memory_rlimit_name
from pytest_edge.machine import MIB, HostMachine
from pytest_edge.profiles.catalog import ProfileCatalog
from pytest_edge.profiles.model import DeviceProfile


def host_profile() -> DeviceProfile:
    """This machine as a profile: what `edge_device.profile` is without ``--edge-profile``."""
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
    return tuple(range(psutil.cpu_count() or 1))


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
            if memory_rlimit_name() is None:
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
        if self.profiles and memory_rlimit_name() is None:
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
        if not self.throttle or profile.cpu_speed_factor is None:
            return None
        host = self.host_speed_factor or 1.0
        duty = profile.cpu_speed_factor / host
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


def choose_profile_setting(
    cli: str | None, env: str | None, ini: str | None
) -> tuple[str | None, str]:
    """The profile list to use and where it came from: CLI, then environment, then ini."""
    if cli:
        return cli, "--edge-profile"
    if env:
        return env, "PYTEST_EDGE_PROFILE"
    if ini:
        return ini, "ini edge_profile"
    return None, ""
