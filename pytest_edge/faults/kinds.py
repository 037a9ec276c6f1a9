"""The fault kinds' names and the values their options choose from, and the marker's help.

Plain strings, so the plugin can register the ``edge_fault`` marker at every pytest start
without building the declarations (`pytest_edge.faults.declarations`, ~10 ms of dataclasses),
which hold everything else about each kind; a test checks that both list the same kinds.
"""

from __future__ import annotations

FAULT_KINDS = (
    "disk_full",
    "io_error",
    "read_only",
    "slow_io",
    "fail",
    "slow",
    "sqlite",
    "memory_pressure",
    "network",
)

IO_ERROR_ON = ("write", "fsync", "rename", "read", "open")
IO_ERRNOS = ("EIO", "EINTR")
SQLITE_ERRORS = ("full", "locked", "ioerr", "interrupt", "corrupt", "denied")
COUNTED_ERRORS = ("ioerr", "interrupt")
NETWORK_ERRORS = ("refused", "timeout", "reset", "dns")
UNLIMITED = "unlimited"

MARKER_HELP = (
    "edge_fault(kind, *args, **options): arm a fault of pytest-edge for this test, as "
    "edge_faults.<kind>(*args, **options) would, e.g. "
    "edge_fault('disk_full', path='{tmp_path}'); kinds: " + ", ".join(FAULT_KINDS)
)
