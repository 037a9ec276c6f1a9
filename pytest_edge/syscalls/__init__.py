"""The system-call layer: an ``LD_PRELOAD`` library that records and faults libc file calls.

It sees what the Python-level layer cannot: SQLite's own writes and syncs, C extensions,
references to ``os`` functions bound at import and handles opened before tracing or arming.
Load it into a process with `preload_env`; in that process `tracing` records file operations
under a directory and `arm` injects filesystem faults. See ``docs/syscalls.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.syscalls.faults import FAULT_KINDS, SyscallFault, arm
    from pytest_edge.syscalls.library import (
        LIBRARY_NAME,
        SyscallLayerUnavailable,
        active,
        layer_name,
        library_path,
        preload_env,
        require_active,
        unavailable_reason,
    )
    from pytest_edge.syscalls.trace import KILL_CALLS, KillAt, traced_calls, tracing

__all__ = [
    "FAULT_KINDS",
    "KILL_CALLS",
    "LIBRARY_NAME",
    "KillAt",
    "SyscallFault",
    "SyscallLayerUnavailable",
    "active",
    "arm",
    "layer_name",
    "library_path",
    "preload_env",
    "require_active",
    "traced_calls",
    "tracing",
    "unavailable_reason",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "FAULT_KINDS": "pytest_edge.syscalls.faults",
    "SyscallFault": "pytest_edge.syscalls.faults",
    "arm": "pytest_edge.syscalls.faults",
    "LIBRARY_NAME": "pytest_edge.syscalls.library",
    "SyscallLayerUnavailable": "pytest_edge.syscalls.library",
    "active": "pytest_edge.syscalls.library",
    "layer_name": "pytest_edge.syscalls.library",
    "library_path": "pytest_edge.syscalls.library",
    "preload_env": "pytest_edge.syscalls.library",
    "require_active": "pytest_edge.syscalls.library",
    "unavailable_reason": "pytest_edge.syscalls.library",
    "KILL_CALLS": "pytest_edge.syscalls.trace",
    "KillAt": "pytest_edge.syscalls.trace",
    "traced_calls": "pytest_edge.syscalls.trace",
    "tracing": "pytest_edge.syscalls.trace",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
