"""Runs one scenario on one device: a measured run in a limited child, then crash cycles.

1. The measured run calls the workload once in a child process limited to the device's
   memory budget, with the scenario's faults armed in that child; it yields the result,
   the wall time and the child's peak memory.
2. With a ``[crash]`` table, the crash harness then runs the workload in its own children
   (faults armed there too), kills them, runs ``recover`` and counts lost acknowledged writes.

Usable without pytest: ``ScenarioRunner(scenario, device, seed, workdir).run()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_edge.device.oom import OomKilledError
from pytest_edge.device.speed import device_speed_factor
from pytest_edge.errors import EdgeError
from pytest_edge.profiles.model import DeviceProfile
from pytest_edge.scenarios import child
from pytest_edge.scenarios.outcome import CrashSummary, ScenarioOutcome, WorkloadResult
from pytest_edge.scenarios.schema import Scenario

MB = 1024 * 1024


@dataclass(frozen=True)
class Device:
    """The device a scenario runs on: a concrete profile, or the host when none is chosen."""

    name: str
    profile: DeviceProfile | None = None
    host_speed_factor: float | None = None  # the host's speed on the catalog's scale, if known
    duty_cycle: float | None = None  # CPU share of an isolated child (--edge-cpu-throttle)
    asked: str | None = None  # the name or alias that chose this device

    @property
    def budget_mb(self) -> float | None:
        return None if self.profile is None else float(self.profile.usable_memory_mb)

    @property
    def speed_factor(self) -> float | None:
        """Device speed relative to this host (device factor / host factor); an estimate."""
        return device_speed_factor(self.profile, self.host_speed_factor)


@dataclass(frozen=True)
class ChildRun:
    """What an isolated child run gives back."""

    value: Any
    peak_bytes: int | None
    notes: tuple[str, ...] = ()


class ScenarioTimeoutError(EdgeError, TimeoutError):
    """The scenario ran out of its ``timeout`` (the measured run and the crash cycles)."""


class DoesNotFitError(EdgeError, RuntimeError):
    """The workload ran out of the device's memory budget (MemoryError under the limit)."""


class Isolate(Protocol):
    """Runs ``fn(**kwargs)`` in a child limited to `device`; raises what the child raised.

    `peak_sink`, when given, receives the child's peak memory growth in bytes, also when the
    child raised, died or timed out (if it was measured).
    """

    def __call__(
        self,
        fn: Callable[..., Any],
        kwargs: dict[str, Any],
        device: Device,
        timeout: float,
        peak_sink: Callable[[int], None] | None = None,
    ) -> ChildRun: ...


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


class ScenarioRunner:
    """One scenario on one device; `run` returns the measured `ScenarioOutcome`."""

    def __init__(
        self,
        scenario: Scenario,
        device: Device,
        *,
        seed: int,
        workdir: Path,
        isolate: Isolate,
    ) -> None:
        self.scenario = scenario
        self.device = device
        self.seed = seed
        self.workdir = Path(workdir)
        self.isolate = isolate
        # What the measured run left behind, also when it failed: its peak memory growth
        # (None: not measured) and the faults that fired before it ended.
        self.peak_bytes: int | None = None
        self.fired: tuple[str, ...] = ()

    def _peak(self, peak: int) -> None:
        self.peak_bytes = peak

    def run(self) -> ScenarioOutcome:
        sc = self.scenario
        started = time.monotonic()
        state_dir = self.workdir / "run"
        state_dir.mkdir(parents=True, exist_ok=True)
        fired_path = self.workdir / "fired-faults.log"
        notes: list[str] = []
        kwargs: dict[str, Any] = {
            "workload": sc.workload,
            "state_dir": str(state_dir),
            "params": dict(sc.params),
            "faults": [dict(f) for f in sc.faults],
            "seed": self.seed,
            "sys_path": list(sys.path),
            "setup": sc.setup,
            "fired_path": str(fired_path),
        }
        try:
            run = self.isolate(child.execute, kwargs, self.device, sc.timeout, peak_sink=self._peak)
        except OomKilledError as exc:  # the process tree passed the device's memory
            raise DoesNotFitError(f"{sc.name} does not fit on {self.device.name}: {exc}") from exc
        except MemoryError as exc:
            budget = self.device.budget_mb
            detail = str(exc).strip()  # a failed allocation's MemoryError has no message
            said = f" ({detail})" if detail else ""
            raise DoesNotFitError(
                f"{sc.name} does not fit on {self.device.name}: MemoryError in the workload "
                f"under the device's memory budget of {budget:.0f} MB{said}"
                if budget is not None
                else f"{sc.name}: MemoryError in the workload{said}"
            ) from exc
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
            self.fired = child.read_fired(fired_path)
            fired_path.unlink(missing_ok=True)
        notes.extend(run.notes)
        data: Mapping[str, Any] = run.value
        result = WorkloadResult(
            items=data["items"], errors=data["errors"], unit=data["unit"], details=data["details"]
        )
        crash = None
        if sc.crash is not None:
            crash = self._crash_cycles(sc.timeout - (time.monotonic() - started))
        return ScenarioOutcome(
            name=sc.name,
            profile=self.device.name,
            result=result,
            seconds=float(data["seconds"]),
            peak_memory_mb=None if run.peak_bytes is None else run.peak_bytes / MB,
            budget_mb=self.device.budget_mb,
            speed_factor=self.device.speed_factor,
            faults_fired=tuple(data["fired"]),
            crash=crash,
            notes=tuple(notes),
        )

    def _crash_cycles(self, remaining: float) -> CrashSummary:
        """The crash cycles, each bounded by what is left of the scenario's timeout."""
        from pytest_edge.crash import CrashHarness

        sc = self.scenario
        assert sc.crash is not None
        if remaining <= 0:
            raise ScenarioTimeoutError(
                f"{sc.name}: the measured run used the whole timeout of {sc.timeout:g} s; "
                "no time is left for the crash cycles (raise [scenario] timeout)"
            )
        state_dir = self.workdir / "crash-state"
        context = child.write_context(
            self.workdir / "crash-context.json",
            workload=sc.workload,
            recover=sc.recover,
            setup=sc.setup,
            params=sc.params,
            faults=sc.faults,
            seed=self.seed,
        )
        try:
            with _env(child.CONTEXT_ENV, str(context)):
                report = CrashHarness(seed=self.seed, workroot=str(self.workdir)).run(
                    child.crash_workload,
                    child.crash_recover,
                    state_dir=state_dir,
                    cycles=sc.crash.cycles,
                    seed=self.seed,
                    mode=sc.crash.mode,
                    kill=sc.crash.kill,
                    timeout=remaining,
                )
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
            context.unlink(missing_ok=True)
        return CrashSummary(
            mode=report.mode,
            cycles_run=report.cycles_run,
            acked_writes=report.acked_writes,
            lost_writes=report.lost_writes,
            seed=report.seed,
            text=str(report),
        )
