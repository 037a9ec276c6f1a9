"""pytest-edge's own hooks: how its capabilities talk to each other, and how a user extends it.

Added with ``pytest_addhooks`` by `pytest_edge.plugin`. A user's ``conftest.py`` (or another
plugin) may implement any of them, e.g. add a section to the edge report::

    def pytest_edge_report_sections(config):
        return [Section("mine", "My section", (Paragraph("hello"),))]

The ``firstresult`` hooks are answered by the device capability; a ``tryfirst`` implementation
in a conftest replaces its answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_edge.profiles.model import DeviceProfile
    from pytest_edge.report.model import Section
    from pytest_edge.scenarios.runner import Device, Isolate
    from pytest_edge.scenarios.schema import Scenario


@pytest.hookspec
def pytest_edge_report_sections(config: pytest.Config) -> list[Section] | None:
    """This capability's sections of the run's edge report (``--edge-report``).

    Called once, at the end of the session on the controller, only when a report is written;
    return None or an empty list for nothing.
    """


@pytest.hookspec(firstresult=True)
def pytest_edge_report_wanted(config: pytest.Config) -> bool | None:
    """True when the report should go to ``$GITHUB_STEP_SUMMARY`` without ``--edge-report``
    (a benchmark comparison does: CI shows it)."""


@pytest.hookspec(firstresult=True)
def pytest_edge_scenario_devices(config: pytest.Config, scenario: Scenario) -> list[Device] | None:
    """The devices `scenario` runs on (one test item each): the run's ``--edge-profile``
    devices, else the scenario's own profile, else the host.

    Raise `ScenarioError` for a profile that does not exist.
    """


@pytest.hookspec(firstresult=True)
def pytest_edge_scenario_isolate(config: pytest.Config) -> Isolate | None:
    """The function that runs a scenario's workload in a child held to its device."""


@pytest.hookspec
def pytest_edge_peak_memory(
    item: pytest.Item, profile: DeviceProfile | None, peak_mb: float
) -> None:
    """A child process run for `item` (on `profile`, None for the host) peaked at `peak_mb`
    MB of memory growth: the devices summary lists it as the item's peak."""
