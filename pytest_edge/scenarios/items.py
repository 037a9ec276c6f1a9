"""pytest nodes for scenario files: one `ScenarioFile` per TOML file, one item per device.

A file that does not validate becomes one item that errors at setup with a message naming the
file, the key and what is allowed, so the other scenarios are still collected and run (a
plain collection error would interrupt the whole session).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.device.speed import DeviceSpeedUnknownWarning, unknown_speed_reason
from pytest_edge.errors import EdgeError
from pytest_edge.report.escape import terminal_safe
from pytest_edge.scenarios.expect import check_expectations, host_speed_floor
from pytest_edge.scenarios.record import MAX_FAULT_LINES, PROPERTY, ScenarioRecord
from pytest_edge.scenarios.runner import MB, Device, DoesNotFitError, Isolate, ScenarioRunner
from pytest_edge.scenarios.schema import Scenario, ScenarioError, load_scenario
from pytest_edge.seed import run_seed

BACKSTOP_S = 15.0  # pytest-timeout fires this long after the scenario's own timeout


class ScenarioFailed(EdgeError):
    """The scenario ran but broke expectations (or did not fit); one reason per line."""

    def __init__(self, name: str, device: str, reasons: list[str]) -> None:
        super().__init__(name, device, reasons)
        self.name, self.device, self.reasons = name, device, reasons


class ScenarioFile(pytest.File):
    """A TOML file with a ``[scenario]`` table."""

    def collect(self) -> Iterable[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            yield InvalidScenarioItem.from_parent(self, name=self.path.stem, error=exc)
            return
        try:
            devices = self.config.hook.pytest_edge_scenario_devices(
                config=self.config, scenario=scenario
            )
        except ScenarioError as exc:
            yield InvalidScenarioItem.from_parent(self, name=self.path.stem, error=exc)
            return
        if not devices:  # no device capability loaded (-p no:pytest_edge.device.plugin)
            devices = [Device("host")]
        for device in devices:
            name = scenario.name if len(devices) == 1 else f"{scenario.name}[{device.name}]"
            name = terminal_safe(name)  # pytest prints test ids raw: an inert one
            yield ScenarioItem.from_parent(self, name=name, scenario=scenario, device=device)


class InvalidScenarioItem(pytest.Item):
    """Stands for a scenario file that does not validate; errors at setup with the reason."""

    def __init__(self, *, error: ScenarioError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def setup(self) -> None:
        # pytrace=False: the report shows the message, not the plugin's frames.
        pytest.fail(f"invalid scenario file: {self.error}", pytrace=False)

    def runtest(self) -> None:  # pragma: no cover - setup always fails
        pytest.fail(f"invalid scenario file: {self.error}", pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"invalid scenario file {self.path.name}"


class ScenarioItem(pytest.Item):
    """Runs one scenario on one device and checks its expectations."""

    def __init__(self, *, scenario: Scenario, device: Device, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.device = device
        # The runner's own timeout ends a hung workload and shows the workload's stacks;
        # pytest-timeout (its stacks are pytest's own) is only the backstop, a little later.
        self.add_marker(pytest.mark.timeout(scenario.timeout + BACKSTOP_S))
        self.add_marker(pytest.mark.edge_scenario)

    def _isolate(self) -> Isolate:
        isolate: Isolate | None = self.config.hook.pytest_edge_scenario_isolate(config=self.config)
        if isolate is None:  # the device capability is not loaded
            from pytest_edge.scenarios.devices import isolate_on_device

            return isolate_on_device
        return isolate

    def _record(self, record: ScenarioRecord) -> None:
        self.user_properties.append((PROPERTY, record.to_dict()))

    def _record_failure(self, reason: str, runner: ScenarioRunner) -> None:
        """Record a run that ended before any outcome, so the report still lists it: with
        the peak the child reached (when measured) and the faults that fired before."""
        sc = self.scenario
        peak_mb = None if runner.peak_bytes is None else runner.peak_bytes / MB
        if peak_mb is not None:
            self.config.hook.pytest_edge_peak_memory(
                item=self, profile=self.device.profile, peak_mb=peak_mb
            )
        self._record(
            ScenarioRecord(
                name=sc.name,
                path=str(sc.path),
                profile=self.device.name,
                asked=self.device.asked,
                description=sc.description,
                outcome="failed",
                reasons=(reason,),
                peak_memory_mb=peak_mb,
                budget_mb=self.device.budget_mb,
                faults_fired=len(runner.fired),
                fault_lines=runner.fired[:MAX_FAULT_LINES],
            )
        )

    def runtest(self) -> None:
        sc = self.scenario
        with tempfile.TemporaryDirectory(prefix="pytest-edge-scenario-") as workdir:
            runner = ScenarioRunner(
                sc,
                self.device,
                seed=run_seed(self.config),
                workdir=Path(workdir),
                isolate=self._isolate(),
            )
            try:
                outcome = runner.run()
            except DoesNotFitError as exc:
                self._record_failure(str(exc), runner)
                raise ScenarioFailed(sc.name, self.device.name, [str(exc)]) from None
            except BaseException as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else ""
                self._record_failure(f"{type(exc).__name__}: {first_line}", runner)
                raise
        if outcome.peak_memory_mb is not None:
            # The devices summary lists the workload child's peak, not the pytest process's.
            self.config.hook.pytest_edge_peak_memory(
                item=self, profile=self.device.profile, peak_mb=outcome.peak_memory_mb
            )
        reasons = check_expectations(sc.expect, outcome)
        unchecked = host_speed_floor(sc.expect, outcome, unknown_speed_reason(self.device.profile))
        if unchecked is not None:
            message = f"scenario {sc.name!r}: {unchecked}"
            warnings.warn(DeviceSpeedUnknownWarning(message), stacklevel=1)
        self._record(
            ScenarioRecord.from_outcome(
                outcome,
                path=str(sc.path),
                description=sc.description,
                reasons=reasons,
                asked=self.device.asked,
            )
        )
        if reasons:
            raise ScenarioFailed(sc.name, self.device.name, reasons)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # Scenario names, reasons and the workload's messages come from users: made inert.
        if isinstance(excinfo.value, ScenarioFailed):
            failed = excinfo.value
            lines = [f"scenario {failed.name!r} on {failed.device}:"]
            lines += [f"  - {reason}" for reason in failed.reasons]
            lines.append(f"  file: {self.scenario.path}")
            return terminal_safe("\n".join(lines), keep_newlines=True)
        exc = excinfo.value
        if isinstance(exc, Exception) and not isinstance(exc, pytest.fail.Exception):
            # The workload's own traceback (from the child) matters, not the plugin's frames.
            lines = [
                f"scenario {self.scenario.name!r} on {self.device.name}: "
                f"{type(exc).__name__}: {exc}",
                *getattr(exc, "__notes__", ()),
                f"  file: {self.scenario.path}",
            ]
            return terminal_safe("\n".join(lines), keep_newlines=True)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return (
            self.path,
            None,
            terminal_safe(f"scenario {self.scenario.name} on {self.device.name}"),
        )


def iter_records(reports: Iterable[Any]) -> Iterator[ScenarioRecord]:
    for report in reports:
        for key, value in getattr(report, "user_properties", ()):
            if key == PROPERTY:
                yield ScenarioRecord.from_dict(value)
