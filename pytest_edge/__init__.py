"""pytest-edge: resilience testing for on-device AI software.

Importing this package is cheap: names are loaded on first use, so production code can call
the light helpers without pulling in pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_edge.bench.corpus import Corpus, make_corpus
    from pytest_edge.bench.throughput import EdgeBenchmark
    from pytest_edge.machine import (
        Accelerator,
        HostMachine,
        Machine,
        MemoryReading,
        current_machine,
        use_machine,
    )

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Accelerator": "pytest_edge.machine",
    "Corpus": "pytest_edge.bench.corpus",
    "EdgeBenchmark": "pytest_edge.bench.throughput",
    "make_corpus": "pytest_edge.bench.corpus",
    "HostMachine": "pytest_edge.machine",
    "Machine": "pytest_edge.machine",
    "MemoryReading": "pytest_edge.machine",
    "current_machine": "pytest_edge.machine",
    "use_machine": "pytest_edge.machine",
}

__all__ = [
    "Accelerator",
    "Corpus",
    "EdgeBenchmark",
    "HostMachine",
    "Machine",
    "MemoryReading",
    "current_machine",
    "make_corpus",
    "use_machine",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_edge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
