"""The fault kinds (the `FaultInjector` arming methods) and the marker's help text.

Kept free of imports so the plugin can register the marker without loading the fault code.
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

MARKER_HELP = (
    "edge_fault(kind, *args, **options): arm a fault of pytest-edge for this test, as "
    "edge_faults.<kind>(*args, **options) would, e.g. "
    "edge_fault('disk_full', path='{tmp_path}'); kinds: " + ", ".join(FAULT_KINDS)
)
