"""Scenarios on simulated devices: which devices a scenario runs on, and its limited child.

The measured run goes through `pytest_edge.device.isolated.run_isolated`: a fresh child held
to the device's memory budget (an rlimit, so allocations past it raise MemoryError), pinned to
at most the device's cores, with the device view installed so the workload reads the
device's memory and CPU facts. Its peak memory growth is measured against the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_edge.device.isolated import run_isolated
from pytest_edge.device.session import EdgeRun, isolation_limits
from pytest_edge.scenarios.record import ScenarioRecord
from pytest_edge.scenarios.runner import ChildRun, Device
from pytest_edge.scenarios.schema import Scenario, ScenarioError


def devices_for(scenario: Scenario, run: EdgeRun) -> list[Device]:
    """``--edge-profile`` devices when given, else the scenario's own profile, else the host.

    An unknown ``[scenario] profile`` is a ScenarioError naming the file and the key.
    """
    if run.profiles:
        pairs: Sequence[tuple[str, Any]] = list(zip(run.requested, run.profiles, strict=True))
    elif scenario.profile is not None:
        from pytest_edge.profiles import UnknownProfileError

        try:
            pairs = [(scenario.profile, run.catalog.resolve(scenario.profile))]
        except UnknownProfileError as exc:
            raise ScenarioError(f"{scenario.path}: [scenario] profile: {exc}") from None
    else:
        return [Device("host")]
    return [
        Device(
            name=profile.name,
            profile=profile,
            host_speed_factor=run.host_speed_factor,
            duty_cycle=run.duty_cycle(profile),
            asked=asked,
        )
        for asked, profile in pairs
    ]


def devices_of_records(records: Sequence[ScenarioRecord], run: EdgeRun) -> list[Device]:
    """The devices the records ran on, looked up again (under xdist they ran in workers)."""
    devices: list[Device] = []
    seen: set[str] = set()
    for record in records:
        if record.profile in seen:
            continue
        seen.add(record.profile)
        if record.profile == "host":
            devices.append(Device("host"))
            continue
        profile = run.catalog.resolve(record.profile)
        devices.append(Device(profile.name, profile, run.host_speed_factor, asked=record.asked))
    return devices


def isolate_on_device(
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    device: Device,
    timeout: float,
    peak_sink: Callable[[int], None] | None = None,
) -> ChildRun:
    """`fn(**kwargs)` in a child held to `device`; its value, peak growth and notes."""
    limits = isolation_limits(device.profile, device.duty_cycle)
    outcome = run_isolated(fn, (), kwargs, limits, timeout, peak_sink=peak_sink)
    return ChildRun(outcome.value, outcome.peak_growth_bytes, tuple(outcome.notes))
