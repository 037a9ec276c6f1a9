"""The scenarios section of the edge report: the devices, a table per run, the verdict."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_edge.report.model import Block, Paragraph, Problem, Section, Table
from pytest_edge.scenarios.record import COLUMNS, ESTIMATE_NOTE, ScenarioRecord, rows, verdict
from pytest_edge.scenarios.runner import Device


def _device_line(device: Device) -> str:
    profile = device.profile
    if profile is None:
        return "host: the real machine (no --edge-profile and no profile in the scenario)"
    asked = f"{device.asked} -> " if device.asked and device.asked != profile.name else ""
    facts = [
        f"{profile.memory_mb} MB ({profile.usable_memory_mb} MB usable after the OS reserve)",
        f"{profile.cpu_cores} cores",
    ]
    if profile.cpu_model:
        facts.append(profile.cpu_model)
    if profile.cpu_speed_factor is not None:
        facts.append(f"cpu_speed_factor {profile.cpu_speed_factor:g}")
    return (
        f"{asked}{profile.name} (simulated: the device view and a memory rlimit of the usable "
        f"memory on each workload's child): " + ", ".join(facts)
    )


def scenarios_section(records: Sequence[ScenarioRecord], devices: Sequence[Device]) -> Section:
    line = verdict(records)
    blocks: list[Block] = [Paragraph(f"Verdict: {line}")]
    seen: set[str] = set()
    for device in devices:
        if device.name not in seen:
            seen.add(device.name)
            blocks.append(Paragraph("Device: " + _device_line(device)))
            if device.profile is not None and device.profile.sources:
                blocks.append(
                    Paragraph("Profile sources: " + ", ".join(device.profile.sources), "note")
                )
    blocks.append(Table(COLUMNS, tuple(rows(records)), caption="One row per scenario run"))
    if any(r.projected_throughput is not None for r in records):
        blocks.append(Paragraph(ESTIMATE_NOTE, "estimate"))
    for record in records:
        for reason in record.reasons:
            blocks.append(Paragraph(f"{record.name} on {record.profile}: {reason}", "failure"))
        for fault in record.fault_lines:
            blocks.append(Paragraph(f"{record.name}: fault fired: {fault}", "note"))
    failed = any(r.outcome == "failed" for r in records)
    problems = tuple(
        Problem(
            "failed scenario",
            f"{r.name} on {r.profile}",
            "; ".join(reason.splitlines()[0] for reason in r.reasons),
            "section-scenarios",
            test=r.name,
        )
        for r in records
        if r.outcome == "failed"
    )
    return Section(
        key="scenarios",
        title="Scenarios",
        blocks=tuple(blocks),
        status="failed" if failed else "ok",
        order=30,
        data={"verdict": line, "runs": [r.to_dict() for r in records]},
        problems=problems,
    )
