"""Which layer observes the crash children's file I/O in this run: "syscall" or "python"."""

from __future__ import annotations

import importlib


def crash_layer() -> str:
    """ "syscall" when the interposition library is built and can be preloaded, else "python"."""
    try:
        syscalls = importlib.import_module("pytest_edge.syscalls")
    except ImportError:  # the layer is not part of this checkout
        return "python"
    return "syscall" if syscalls.unavailable_reason() is None else "python"
