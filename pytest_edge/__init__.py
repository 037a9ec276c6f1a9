"""pytest-edge: resilience testing for on-device AI software.

Importing this package is cheap: names are loaded on first use, so production code can call
the light helpers without pulling in pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.bench.corpus import Corpus, make_corpus
    from pytest_edge.bench.throughput import EdgeBenchmark
    from pytest_edge.crash import (
        CrashHarness,
        CrashHarnessError,
        CrashHarnessWarning,
        CrashReport,
        InconclusiveError,
        LostWritesError,
    )
    from pytest_edge.device import (
        DeviceSpeedUnknownWarning,
        DeviceView,
        EdgeDevice,
        IsolatedChildDied,
        IsolationError,
        OomKilledError,
        RemoteError,
        SimulatedMachine,
    )
    from pytest_edge.durable import DELETED, ack, crashpoint, intent
    from pytest_edge.errors import EdgeError, EdgeInputError, EdgeWarning
    from pytest_edge.faults import (
        ArmedFault,
        FaultArgumentError,
        FaultEvent,
        FaultInjector,
        FaultPlan,
        FaultSpec,
        UnfiredFaultWarning,
        register_exception,
    )
    from pytest_edge.machine import (
        Accelerator,
        HostMachine,
        Machine,
        MemoryReading,
        current_machine,
        use_machine,
    )
    from pytest_edge.profiles import (
        DeviceProfile,
        ProfileError,
        StorageSpec,
        UnknownProfileError,
        list_profiles,
        load_profile,
    )

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ArmedFault": "pytest_edge.faults",
    "FaultArgumentError": "pytest_edge.faults",
    "FaultEvent": "pytest_edge.faults",
    "FaultInjector": "pytest_edge.faults",
    "FaultPlan": "pytest_edge.faults",
    "FaultSpec": "pytest_edge.faults",
    "register_exception": "pytest_edge.faults",
    "UnfiredFaultWarning": "pytest_edge.faults",
    "DELETED": "pytest_edge.durable",
    "EdgeError": "pytest_edge.errors",
    "EdgeInputError": "pytest_edge.errors",
    "EdgeWarning": "pytest_edge.errors",
    "ack": "pytest_edge.durable",
    "intent": "pytest_edge.durable",
    "crashpoint": "pytest_edge.durable",
    "CrashHarness": "pytest_edge.crash",
    "CrashHarnessError": "pytest_edge.crash",
    "CrashHarnessWarning": "pytest_edge.crash",
    "CrashReport": "pytest_edge.crash",
    "LostWritesError": "pytest_edge.crash",
    "InconclusiveError": "pytest_edge.crash",
    "Accelerator": "pytest_edge.machine",
    "Corpus": "pytest_edge.bench.corpus",
    "EdgeBenchmark": "pytest_edge.bench.throughput",
    "make_corpus": "pytest_edge.bench.corpus",
    "HostMachine": "pytest_edge.machine",
    "Machine": "pytest_edge.machine",
    "MemoryReading": "pytest_edge.machine",
    "current_machine": "pytest_edge.machine",
    "use_machine": "pytest_edge.machine",
    "DeviceProfile": "pytest_edge.profiles",
    "ProfileError": "pytest_edge.profiles",
    "StorageSpec": "pytest_edge.profiles",
    "UnknownProfileError": "pytest_edge.profiles",
    "list_profiles": "pytest_edge.profiles",
    "load_profile": "pytest_edge.profiles",
    "DeviceSpeedUnknownWarning": "pytest_edge.device",
    "DeviceView": "pytest_edge.device",
    "EdgeDevice": "pytest_edge.device",
    "IsolatedChildDied": "pytest_edge.device",
    "IsolationError": "pytest_edge.device",
    "OomKilledError": "pytest_edge.device",
    "RemoteError": "pytest_edge.device",
    "SimulatedMachine": "pytest_edge.device",
}

__all__ = [
    "DELETED",
    "Accelerator",
    "ArmedFault",
    "Corpus",
    "CrashHarness",
    "CrashHarnessError",
    "CrashHarnessWarning",
    "CrashReport",
    "DeviceProfile",
    "DeviceSpeedUnknownWarning",
    "DeviceView",
    "EdgeBenchmark",
    "EdgeDevice",
    "EdgeError",
    "EdgeInputError",
    "EdgeWarning",
    "FaultArgumentError",
    "FaultEvent",
    "FaultInjector",
    "FaultPlan",
    "FaultSpec",
    "HostMachine",
    "InconclusiveError",
    "IsolatedChildDied",
    "IsolationError",
    "LostWritesError",
    "Machine",
    "MemoryReading",
    "OomKilledError",
    "ProfileError",
    "RemoteError",
    "SimulatedMachine",
    "StorageSpec",
    "UnfiredFaultWarning",
    "UnknownProfileError",
    "ack",
    "crashpoint",
    "current_machine",
    "intent",
    "list_profiles",
    "load_profile",
    "make_corpus",
    "register_exception",
    "use_machine",
]
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
