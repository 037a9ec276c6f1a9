"""Exceptions of the crash harness."""

from __future__ import annotations

from pytest_edge.errors import EdgeError, EdgeWarning


class CrashHarnessError(EdgeError, AssertionError):
    """The harness could not run a cycle as asked (timeout, kill point never reached, ...)."""


class CrashTimeoutError(CrashHarnessError):
    """A child ran past the per-cycle timeout; the message names the cycle and the role."""


class KillPointNotReachedError(CrashHarnessError):
    """The workload returned before its kill point fired."""


class WorkloadError(CrashHarnessError):
    """The workload raised an exception of its own (not a kill)."""


class LostWritesError(CrashHarnessError):
    """Recovery lost or changed acknowledged writes; the message is the full failure report."""


class InconclusiveError(CrashHarnessError):
    """Power loss could not be judged: a file was written where the trace cannot see it.

    Neither a pass nor a fail; the message names each file and why (e.g. a writable shared
    memory map).
    """


class CrashHarnessWarning(EdgeWarning):
    """Something the harness cannot model, e.g. a file changed by C code outside the trace."""
