"""Which layer observes and fails file I/O in this process: the system-call library or Python.

Filesystem faults (``disk_full``, ``io_error``, ``read_only``, ``slow_io``) act at the
system-call layer when the ``LD_PRELOAD`` library of `pytest_edge.syscalls` is loaded in this
process (pytest started with ``pytest-edge run -- pytest ...``, or a child the harness started
with it); otherwise they patch Python's ``os`` and ``open``. Never both: one layer at a time,
so no call fires twice. This module says which, and why the syscall layer is not in use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

SYSCALL = "syscall"
PYTHON = "python"
#: the library's file name (`pytest_edge.syscalls.LIBRARY_NAME`; named here to keep ctypes
#: out of every pytest start)
LIBRARY_NAME = "libedgeio.so"
#: `FaultInjector(layer=...)`: choose by what is loaded, or force one
LAYERS = ("auto", PYTHON, SYSCALL)
RUN_HINT = "start it with: pytest-edge run -- pytest ARGS (see docs/faults.md)"


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


def _named_in_preload() -> bool:
    """Whether ``LD_PRELOAD`` names the library: only then can it be loaded in this process."""
    words = os.environ.get("LD_PRELOAD", "").replace(":", " ").split()
    return any(os.path.basename(w) == LIBRARY_NAME for w in words)


def current_layer() -> Layer:
    """The layer filesystem faults armed in this process use now.

    Cheap when pytest was not started with the library (every pytest start asks, for the
    header): ctypes and the library are loaded only when ``LD_PRELOAD`` names it.
    """
    if _named_in_preload():
        from pytest_edge.syscalls import SyscallLayerUnavailable, active, require_active

        if active():
            return Layer(SYSCALL)
        try:
            require_active("the syscall layer")
        except SyscallLayerUnavailable as exc:
            return Layer(PYTHON, str(exc))
    if not sys.platform.startswith("linux"):
        return Layer(PYTHON, f"the syscall library is Linux-only; this is {sys.platform}")
    from pytest_edge import syscalls

    built = Path(syscalls.__file__).resolve().parent / LIBRARY_NAME
    if not built.is_file():
        return Layer(
            PYTHON,
            f"the syscall library is not built ({built} is missing: no C compiler when "
            "pytest-edge was installed?); pytest-edge run -- pytest ARGS says why",
        )
    return Layer(PYTHON, f"pytest was not started with the syscall library; {RUN_HINT}")


def chosen_layer(asked: str = "auto") -> Layer:
    """The layer for `asked` (one of `LAYERS`): ``"python"`` forces Python, else the current
    one (a caller asking for ``"syscall"`` checks that it got it)."""
    if asked == PYTHON:
        return Layer(PYTHON, "asked for: --edge-fault-layer=python or layer='python'")
    return current_layer()


def header_line(asked: str = "auto") -> str:
    """The pytest header line naming the layer."""
    return f"pytest-edge faults: {chosen_layer(asked).describe()}"
