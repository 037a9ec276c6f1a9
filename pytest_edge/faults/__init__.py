"""Fault injection: `FaultInjector` (the ``edge_faults`` fixture), `FaultPlan`, the event log.

`declarations` declares every fault kind and its options once (`kinds` holds their names);
one module per family does the work: `fs` (disk full, EIO, read-only, slow storage),
`sqlite`, `net`, `memory`, `generic` (any importable callable); `schedule` holds the counting
rules they share, `plan` the data form, `verdict` whether each armed fault fired, `layer` which
layer (system calls or Python) filesystem faults act at.
The hypothesis strategies live in ``pytest_edge.strategies``.

Names are loaded on first use (measured after ``import pytest``: the fault code costs ~50 ms,
sqlite3 and socket included, against under 1 ms for `kinds`), because importing any submodule
runs this file first and the plugin reads `kinds` at every pytest start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.faults.declarations import Schedule
    from pytest_edge.faults.errors import FaultArgumentError
    from pytest_edge.faults.events import FaultEvent
    from pytest_edge.faults.exceptions import register_exception
    from pytest_edge.faults.injector import ArmedFault, FaultInjector
    from pytest_edge.faults.kinds import FAULT_KINDS
    from pytest_edge.faults.plan import FaultPlan, FaultSpec
    from pytest_edge.faults.verdict import FaultVerdict, UnfiredFaultWarning

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "FAULT_KINDS": "pytest_edge.faults.kinds",
    "ArmedFault": "pytest_edge.faults.injector",
    "FaultArgumentError": "pytest_edge.faults.errors",
    "FaultEvent": "pytest_edge.faults.events",
    "FaultInjector": "pytest_edge.faults.injector",
    "FaultPlan": "pytest_edge.faults.plan",
    "FaultSpec": "pytest_edge.faults.plan",
    "FaultVerdict": "pytest_edge.faults.verdict",
    "UnfiredFaultWarning": "pytest_edge.faults.verdict",
    "Schedule": "pytest_edge.faults.declarations",
    "register_exception": "pytest_edge.faults.exceptions",
}

__all__ = [
    "FAULT_KINDS",
    "ArmedFault",
    "FaultArgumentError",
    "FaultEvent",
    "FaultInjector",
    "FaultPlan",
    "FaultSpec",
    "FaultVerdict",
    "Schedule",
    "UnfiredFaultWarning",
    "register_exception",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
