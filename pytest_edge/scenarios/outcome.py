"""What a workload returns and what one scenario run produced.

The workload contract (documented in the README)::

    def workload(state_dir: pathlib.Path, **params) -> WorkloadResult | Mapping[str, ...]

`state_dir` is an empty directory the workload owns (its files, database, state). `params`
are the scenario's ``[params]`` table. It returns how many units of work it completed
(``items``), how many attempts failed (``errors``) and the unit's name (``unit``, e.g.
"docs"). From these follow throughput (items per second of the workload's wall time) and the
error rate (errors / (items + errors)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_edge.errors import EdgeError
from pytest_edge.schema import is_whole


class WorkloadResultError(EdgeError, TypeError):
    """A workload returned something that is not a result; the message names the workload."""


@dataclass(frozen=True)
class WorkloadResult:
    """The return value of a workload: completed items, failed attempts, the unit's name."""

    items: int
    errors: int = 0
    unit: str = "items"
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("items", "errors"):
            value = getattr(self, name)
            if not is_whole(value) or value < 0:
                raise WorkloadResultError(f"{name}={value!r}: a non-negative integer")
        if not isinstance(self.unit, str) or not self.unit:
            raise WorkloadResultError(f"unit={self.unit!r}: a non-empty string such as 'docs'")

    @property
    def error_rate(self) -> float:
        attempts = self.items + self.errors
        return self.errors / attempts if attempts else 0.0


_RESULT_KEYS = ("items", "errors", "unit", "details")


def coerce_result(value: object, where: str) -> WorkloadResult:
    """Accept a `WorkloadResult` or a mapping with its keys; anything else names `where`."""
    if isinstance(value, WorkloadResult):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(_RESULT_KEYS))
        if unknown or "items" not in value:
            problem = f"unknown key {unknown[0]!r}" if unknown else "no 'items'"
            allowed = ", ".join(_RESULT_KEYS)
            raise WorkloadResultError(
                f"{where} returned a mapping with {problem}; allowed keys: {allowed}"
            )
        try:
            return WorkloadResult(**dict(value))
        except WorkloadResultError as exc:
            raise WorkloadResultError(f"{where} returned {exc}") from None
    raise WorkloadResultError(
        f"{where} returned {type(value).__name__}; a workload returns "
        "WorkloadResult(items=..., errors=..., unit=...) or a mapping with those keys"
    )


@dataclass(frozen=True)
class CrashSummary:
    """The crash cycles of one scenario, as the report shows them."""

    mode: str
    cycles_run: int
    acked_writes: int
    lost_writes: int
    seed: int
    text: str  # the harness's full report (losses, trace, how to replay)


@dataclass(frozen=True)
class ScenarioOutcome:
    """Everything measured while running one scenario on one device."""

    name: str
    profile: str  # the concrete profile name (never an alias), or "host"
    result: WorkloadResult | None
    seconds: float
    peak_memory_mb: float | None
    budget_mb: float | None
    speed_factor: float | None = None
    faults_fired: tuple[str, ...] = ()
    crash: CrashSummary | None = None
    notes: tuple[str, ...] = ()

    @property
    def throughput(self) -> float | None:
        """Items per second on this machine (None when the workload did not finish)."""
        if self.result is None or self.seconds <= 0:
            return None
        return self.result.items / self.seconds

    @property
    def projected_throughput(self) -> float | None:
        """Throughput scaled by the device's single-core speed factor: an estimate."""
        if self.throughput is None or self.speed_factor is None:
            return None
        return self.throughput * self.speed_factor

    @property
    def error_rate(self) -> float | None:
        return None if self.result is None else self.result.error_rate
