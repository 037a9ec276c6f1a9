"""Which layer observes and fails file I/O in this process: the system-call library or Python.

Filesystem faults (``disk_full``, ``io_error``, ``read_only``, ``slow_io``) act at the
system-call layer when the ``LD_PRELOAD`` library of `pytest_edge.syscalls` is loaded in this
process (pytest started with ``pytest-edge run -- pytest ...``, or a child the harness started
with it); otherwise they patch Python's ``os`` and ``open``. Never both: one layer at a time,
so no call fires twice. This module says which, and why the syscall layer is not in use.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSCALL = "syscall"
PYTHON = "python"
RUN_HINT = "start pytest with it: pytest-edge run -- pytest ARGS (see docs/faults.md)"


@dataclass(frozen=True)
class Layer:
    """The layer in use (`name`) and, for the Python layer, why the syscall layer is not."""

    name: str
    why_not_syscall: str = ""

    @property
    def syscall(self) -> bool:
        return self.name == SYSCALL

    def describe(self) -> str:
        if self.syscall:
            return "syscall layer (LD_PRELOAD)"
        return f"python layer ({self.why_not_syscall})"


def current_layer() -> Layer:
    """The layer filesystem faults armed in this process use now."""
    try:
        from pytest_edge import syscalls
    except ImportError as exc:  # a partial install: say so, never fail
        return Layer(PYTHON, f"pytest_edge.syscalls cannot be imported: {exc}")
    if syscalls.active():
        return Layer(SYSCALL)
    reason = syscalls.unavailable_reason()
    if reason is None:
        return Layer(PYTHON, f"the syscall library is built but not loaded in pytest; {RUN_HINT}")
    return Layer(PYTHON, f"the syscall library is unavailable: {reason}")


def header_line() -> str:
    """The pytest header line naming the layer."""
    return f"pytest-edge faults: {current_layer().describe()}"
