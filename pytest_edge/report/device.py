"""The report's device section: which machine the run measured, real or simulated."""

from __future__ import annotations

from pytest_edge.machine import MIB, Machine
from pytest_edge.report.model import Paragraph, Section, Table


def device_section(machine: Machine) -> Section:
    """What `current_machine()` said during the run, with the profile's sources if simulated."""
    memory = machine.memory()
    rows = [
        ("machine", machine.name + (" (simulated)" if machine.simulated else " (real host)")),
        (
            "memory",
            f"{memory.total_bytes / MIB:.0f} MB total, "
            f"{memory.available_bytes / MIB:.0f} MB available",
        ),
        ("cpus", f"{machine.cpu_count()} logical, {len(machine.usable_cpus())} usable"),
    ]
    blocks: list[Paragraph | Table] = []
    profile = machine.profile
    if profile is not None:
        rows.append(("profile", profile.name))
        if profile.cpu_speed_factor is not None:
            rows.append(("cpu_speed_factor", f"{profile.cpu_speed_factor:g}"))
        if profile.sources:
            blocks.append(Paragraph("Profile sources: " + ", ".join(profile.sources), "note"))
    data = {k: v for k, v in rows}
    return Section(
        "device",
        "Device",
        (Table(("fact", "value"), tuple(rows)), *blocks),
        order=0,
        data=data,
    )
