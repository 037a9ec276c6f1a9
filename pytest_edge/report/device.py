"""The report's device section: the real host, and the simulated devices of the run.

The host comes from `current_machine()` at the end of the session (profiles apply per test,
so that is the real host); the simulated devices, what the host could not enforce and the
tests with the highest peak memory come from the device plugin's `EdgeRun` when it ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_edge.machine import Machine
from pytest_edge.report.model import Block, Paragraph, Section, Table

if TYPE_CHECKING:
    from pytest_edge.device.session import EdgeRun


def _profile_rows(run: EdgeRun) -> tuple[tuple[str, ...], ...]:
    rows = []
    for asked, profile in zip(run.requested, run.profiles, strict=True):
        rows.append(
            (
                profile.name if asked == profile.name else f"{profile.name} (asked: {asked})",
                f"{profile.memory_mb} MB",
                str(profile.cpu_cores),
                "-" if profile.cpu_speed_factor is None else f"{profile.cpu_speed_factor:g}",
                " ".join(profile.sources) or "-",
            )
        )
    return tuple(rows)


def device_section(machine: Machine, run: EdgeRun | None = None) -> Section:
    """Host facts, plus the run's simulated profiles and peak-memory records if any."""
    memory = machine.memory()
    rows = [
        ("machine", machine.name + (" (simulated)" if machine.simulated else " (real host)")),
        (
            "memory",
            f"{memory.total_mb:.0f} MB total, {memory.available_mb:.0f} MB available",
        ),
        ("cpus", f"{machine.cpu_count()} logical, {len(machine.usable_cpus())} usable"),
    ]
    profile = machine.profile
    if profile is not None:
        rows.append(("profile", profile.name))
    blocks: list[Block] = [Table(("fact", "value"), tuple(rows))]
    data: dict[str, Any] = {"host": dict(rows), "profiles": [], "peak_memory": []}
    if run is not None and run.active:
        blocks.append(Paragraph("Simulated devices of this run (values from their sources):"))
        blocks.append(
            Table(("profile", "memory", "cores", "cpu_speed_factor", "sources"), _profile_rows(run))
        )
        blocks += [Paragraph(note, "note") for note in run.enforcement_notes()]
        records = run.top_records()
        if records:
            blocks.append(
                Table(
                    ("test", "profile", "peak growth", "budget", "measured by"),
                    tuple(
                        (
                            r.nodeid,
                            r.profile,
                            f"{r.peak_mb:.1f} MB",
                            f"{r.budget_mb:.0f} MB",
                            r.method,
                        )
                        for r in records
                    ),
                    caption="highest peak memory growth per test",
                )
            )
        data["profiles"] = [p.name for p in run.profiles]
        data["peak_memory"] = [
            {"test": r.nodeid, "profile": r.profile, "peak_mb": r.peak_mb, "budget_mb": r.budget_mb}
            for r in records
        ]
    return Section("device", "Device", tuple(blocks), order=0, data=data)
