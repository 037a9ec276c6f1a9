"""The markers production code calls: cheap to import, no-ops outside the harness."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_edge
from pytest_edge import durable


def test_markers_are_noops_outside_the_harness() -> None:
    assert durable._sink is None
    assert pytest_edge.ack("k", {"a": 1}) is None
    assert pytest_edge.intent("k", 2) is None
    assert pytest_edge.crashpoint("anywhere") is None
    # outside the harness no validation happens either: production code pays nothing
    assert pytest_edge.ack("k", object()) is None


def test_deleted_is_a_singleton_with_a_readable_repr() -> None:
    assert pytest_edge.DELETED is durable.DELETED
    assert type(durable.DELETED)() is durable.DELETED
    assert repr(pytest_edge.DELETED) == "pytest_edge.DELETED"


def test_markers_reach_an_installed_sink() -> None:
    calls: list[tuple[str, object, object]] = []

    class Sink:
        def ack(self, key: str, value: object) -> None:
            calls.append(("ack", key, value))

        def intent(self, key: str, value: object) -> None:
            calls.append(("intent", key, value))

        def crashpoint(self, name: str) -> None:
            calls.append(("cp", name, None))

    durable.install_sink(Sink())
    try:
        pytest_edge.intent("a", 1)
        pytest_edge.ack("a", 1)
        pytest_edge.crashpoint("x")
    finally:
        durable.install_sink(None)
    assert calls == [("intent", "a", 1), ("ack", "a", 1), ("cp", "x", None)]


def test_importing_the_markers_pulls_in_neither_pytest_nor_the_harness() -> None:
    code = (
        "import sys, pytest_edge; pytest_edge.ack('k', 1); pytest_edge.crashpoint('c');"
        "heavy = [m for m in ('pytest', 'pytest_edge.crash', 'hypothesis', 'numpy', 'psutil')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["CrashHarness", "LostWritesError", "CrashReport"])
def test_harness_names_are_exported_lazily(name: str) -> None:
    assert name in pytest_edge.__all__
    assert getattr(pytest_edge, name).__module__.startswith("pytest_edge.crash")
