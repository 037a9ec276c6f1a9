"""Filesystem faults armed in the system-call library (`pytest_edge.syscalls`) instead of
patching Python: they reach handles opened before arming, references bound at import
(``from os import write``), C code such as SQLite, and libraries holding their own ``open``.

The library counts the calls that reached a fault and the ones it fired; it does not name
them. Each fire becomes a `FaultEvent` (layer ``"syscall"``, call number 0, at the fault's
path) when the injector's events are read, and at the latest when the fault is disarmed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pytest_edge.faults.events import EventSink

#: The fault options the library takes from each kind's declaration (the rest is Python-only).
_OPTIONS = {
    "disk_full": ("free_bytes",),
    "io_error": ("on", "nth", "every", "times", "probability", "window", "short_write", "errno"),
    "read_only": (),
    "slow_io": ("seconds", "on", "nth", "every", "times", "probability", "window"),
}


def _effect(kind: str, options: dict[str, Any]) -> str:
    """What one fire of this fault did, in the words of the Python layer's events."""
    if kind == "disk_full":
        return "a write: raised ENOSPC (No space left on device)"
    if kind == "read_only":
        return "a write, create, rename or removal: raised EROFS (Read-only file system)"
    on = options.get("on", "fsync" if kind == "slow_io" else "write")
    if kind == "slow_io":
        return f"{on}: delayed {float(options['seconds']):g} s"
    if options.get("short_write"):
        return "write: wrote half its bytes (a short write)"
    if options.get("errno") == "EINTR":
        return f"{on}: interrupted (EINTR)"
    return f"{on}: raised EIO (Input/output error)"


class SyscallFsFault:
    """One filesystem fault armed in the library, logging its fires as events."""

    def __init__(
        self, kind: str, root: str, log: EventSink, seed: str, options: dict[str, Any]
    ) -> None:
        from pytest_edge.syscalls import arm

        self.kind = kind
        self.root = root
        self.log = log
        # every declared option, as armed; None is "not given" but for times (no limit)
        given = {
            k: v
            for k, v in options.items()
            if k in _OPTIONS[kind] and (v is not None or k == "times")
        }
        if kind in ("io_error", "slow_io"):
            given["seed"] = seed
        self._effect = _effect(kind, options)
        self._armed = arm(kind, root, **given)
        self._logged = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return self._armed.calls

    @property
    def fires(self) -> int:
        return self._armed.fired

    def poll(self) -> None:
        """Log the fires the library counted since the last poll."""
        with self._lock:
            fired = self._armed.fired
            for _ in range(fired - self._logged):
                self._logged += 1
                where = f"fire #{self._logged} under {self.root}{os.sep}"
                self.log.record(self.kind, self.root, 0, where, self._effect)

    def disarm(self) -> None:
        self._armed.disarm()
        self.poll()
