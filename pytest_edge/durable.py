"""Durability markers for production code: ``ack``, ``intent``, ``crashpoint``, ``DELETED``.

Call them from the code under test; outside the crash harness they do nothing and cost one
global lookup. This module imports nothing, so production code can use it freely: the harness
installs a sink in its child process, and only then do the calls record anything.
"""

from __future__ import annotations

from typing import Any, Final, Protocol


class _Deleted:
    """Marker value: ``ack(key, DELETED)`` acknowledges that *key* was deleted durably."""

    _instance: _Deleted | None = None

    def __new__(cls) -> _Deleted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "pytest_edge.DELETED"

    def __reduce__(self) -> str:
        return "DELETED"


DELETED: Final = _Deleted()


class DurabilitySink(Protocol):
    """Receiver of the markers; the crash harness installs one in its child process."""

    def ack(self, key: str, value: Any) -> None: ...

    def intent(self, key: str, value: Any) -> None: ...

    def crashpoint(self, name: str) -> None: ...


_sink: DurabilitySink | None = None


def ack(key: str, value: Any) -> None:
    """Declare that *value* for *key* is now durable (``DELETED`` for a durable deletion).

    Call it only after the write is as durable as the program promises (e.g. after fsync).
    A no-op outside the crash harness.
    """
    sink = _sink
    if sink is not None:
        sink.ack(key, value)


def intent(key: str, value: Any) -> None:
    """Declare a write of *value* for *key* that is about to start (it may survive a crash).

    After a crash, recovery may return either the last acknowledged value or an intended one.
    A no-op outside the crash harness.
    """
    sink = _sink
    if sink is not None:
        sink.intent(key, value)


def crashpoint(name: str) -> None:
    """Mark a place where the harness may kill the process (``kill="crashpoint:NAME"``).

    A no-op outside the crash harness.
    """
    sink = _sink
    if sink is not None:
        sink.crashpoint(name)


def install_sink(sink: DurabilitySink | None) -> None:
    """Install (or remove, with ``None``) the receiver of the markers; used by the harness."""
    global _sink
    _sink = sink
