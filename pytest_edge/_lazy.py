"""Lazy re-exports for a package's ``__init__``: a name's module is imported on first use.

Importing a package (``pytest_edge.device`` to reach ``pytest_edge.device.plugin``, say) then
costs nothing: pytest-edge's plugin is loaded in every pytest run of a project that installed
it, and most runs use none of the heavy parts (psutil, multiprocessing, the renderers).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for `package`, whose public names live in
    the modules `exports` maps them to (``{"EdgeDevice": "pytest_edge.device.fixture"}``)."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # Not cached here: were the defining module imported afresh (pytester restores
        # sys.modules after each in-process run), a cached class would be a stale copy.
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
