"""Crash, restart and power-loss harness (``CrashHarness``), usable without pytest."""

from __future__ import annotations

from pytest_edge.crash.errors import (
    CrashHarnessError,
    CrashHarnessWarning,
    CrashTimeoutError,
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
from pytest_edge.crash.report import CrashReport, CycleResult, Failure, Loss

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
    "KillPointNotReachedError",
    "KillSpec",
    "Loss",
    "LostWritesError",
    "ValueCheck",
    "WorkloadError",
]
