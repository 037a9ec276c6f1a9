"""Crash, restart and power-loss harness (``CrashHarness``), usable without pytest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.crash.errors import (
        CrashHarnessError,
        CrashHarnessWarning,
        CrashTimeoutError,
        InconclusiveError,
        KillPointNotReachedError,
        LostWritesError,
        WorkloadError,
    )
    from pytest_edge.crash.harness import (
        CrashHarness,
        CrashOptions,
        CrashSession,
        KillSpec,
        ValueCheck,
    )
    from pytest_edge.crash.report import (
        CrashReport,
        CycleResult,
        Failure,
        Loss,
    )

__all__ = [
    "CrashHarness",
    "CrashHarnessError",
    "CrashHarnessWarning",
    "CrashOptions",
    "CrashReport",
    "CrashSession",
    "CrashTimeoutError",
    "CycleResult",
    "Failure",
    "InconclusiveError",
    "KillPointNotReachedError",
    "KillSpec",
    "Loss",
    "LostWritesError",
    "ValueCheck",
    "WorkloadError",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "CrashHarness": "pytest_edge.crash.harness",
    "CrashOptions": "pytest_edge.crash.harness",
    "CrashHarnessError": "pytest_edge.crash.errors",
    "CrashHarnessWarning": "pytest_edge.crash.errors",
    "CrashReport": "pytest_edge.crash.report",
    "CrashSession": "pytest_edge.crash.harness",
    "CrashTimeoutError": "pytest_edge.crash.errors",
    "CycleResult": "pytest_edge.crash.report",
    "Failure": "pytest_edge.crash.report",
    "InconclusiveError": "pytest_edge.crash.errors",
    "KillPointNotReachedError": "pytest_edge.crash.errors",
    "KillSpec": "pytest_edge.crash.harness",
    "Loss": "pytest_edge.crash.report",
    "LostWritesError": "pytest_edge.crash.errors",
    "ValueCheck": "pytest_edge.crash.harness",
    "WorkloadError": "pytest_edge.crash.errors",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
