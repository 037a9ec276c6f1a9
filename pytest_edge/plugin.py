"""pytest-edge's pytest entry point (``pytest11``: ``edge``): it only wires the capabilities.

Each capability ("room") is a plugin module of its own, pytest-core style: stash keys, then
its options (`Setting`s) and markers (`MarkerSpec`s), hooks, fixtures. They are registered
here through ``pytest_plugins`` (pytest honours it in a plugin loaded by entry point), before
options are parsed, and talk to each other only through the hooks of `pytest_edge.hookspecs`.
``-p no:edge`` disables all of them; ``-p no:pytest_edge.bench.plugin`` one of them.
"""

from __future__ import annotations

import pytest

ROOMS: tuple[str, ...] = (
    "pytest_edge.seed",
    "pytest_edge.device.plugin",
    "pytest_edge.faults.plugin",
    "pytest_edge.crash.plugin",
    "pytest_edge.bench.plugin",
    "pytest_edge.scenarios.plugin",
    "pytest_edge.report.plugin",
)

pytest_plugins = list(ROOMS)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_edge import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
