"""Fault injection: `FaultInjector` (the ``edge_faults`` fixture), `FaultPlan`, the event log.

One module per family: `fs` (disk full, EIO, read-only), `sqlite`, `net`, `memory`, `generic`
(any importable callable); `schedule` holds the counting rules they share, `plan` the data
form, `strategies` the hypothesis strategies (also importable as ``pytest_edge.strategies``).
"""

from __future__ import annotations

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.events import FaultEvent
from pytest_edge.faults.injector import FAULT_KINDS, ArmedFault, FaultInjector
from pytest_edge.faults.plan import FaultPlan, FaultSpec, register_exception
from pytest_edge.faults.schedule import Schedule

__all__ = [
    "FAULT_KINDS",
    "ArmedFault",
    "FaultArgumentError",
    "FaultEvent",
    "FaultInjector",
    "FaultPlan",
    "FaultSpec",
    "Schedule",
    "register_exception",
]
