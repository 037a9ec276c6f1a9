"""Whether the crash harness can observe its children's file I/O at the system-call layer."""

from __future__ import annotations

import importlib


def syscall_layer_missing() -> str | None:
    """None when the interposition library is built and can be preloaded, else why not."""
    try:
        syscalls = importlib.import_module("pytest_edge.syscalls")
    except ImportError as exc:  # a checkout without the layer
        return f"pytest_edge.syscalls cannot be imported: {exc}"
    reason: str | None = syscalls.unavailable_reason()
    return reason
