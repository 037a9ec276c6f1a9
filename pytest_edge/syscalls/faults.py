"""Filesystem faults at the system-call layer: `arm` one, read whether it fired, disarm it.

They hit every file call under the fault's path in this process (the library must be loaded
here): handles opened before arming, references bound at import and C code such as SQLite.
The counting rules (`nth`, `every`, `times`, `probability` + `seed`, `window`) are those of
`pytest_edge.faults.schedule`, applied in C; the seeded draws are the library's own generator
(a replay with the same seed and calls fires the same ones, but not the same calls as the
Python-level layer's draws).
"""

from __future__ import annotations

import errno as errno_module
import hashlib
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_edge.errors import EdgeInputError
from pytest_edge.syscalls.library import control

__all__ = ["FAULT_KINDS", "SyscallFault", "arm"]

_KIND_CODES = {"disk_full": 1, "io_error": 2, "read_only": 3, "slow_io": 4}
FAULT_KINDS = tuple(_KIND_CODES)
_ON_CODES = {"write": 1, "fsync": 2, "rename": 4, "open": 8, "read": 16}
_ERRNOS = {"EIO": errno_module.EIO, "EINTR": errno_module.EINTR}
_SCHEDULE = ("nth", "every", "times", "probability", "seed", "window")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "disk_full": ("free_bytes",),
    "io_error": ("on", *_SCHEDULE, "short_write", "errno"),
    "read_only": (),
    "slow_io": ("seconds", "on", *_SCHEDULE),
}
_LONG_MAX = 2**63 - 1


class SyscallFault:
    """One fault armed in the library; a context manager that disarms it on exit.

    `calls` counts the calls under its path that reached it, `fired` the ones it failed
    (or delayed, or shortened); both stop changing once it is disarmed.
    """

    def __init__(self, slot: int, kind: str, path: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.path = path
        self.options = options
        self._slot: int | None = slot
        self._final: tuple[int, int, int] = (0, 0, 0)

    def _stat(self, which: int) -> int:
        if self._slot is None:
            return self._final[which]
        return int(control("SyscallFault").edgeio_fault_stat(self._slot, which))

    @property
    def calls(self) -> int:
        """Calls under the path that reached this fault so far."""
        return self._stat(0)

    @property
    def fired(self) -> int:
        """How many times it fired."""
        return self._stat(1)

    @property
    def free_bytes(self) -> int:
        """disk_full: the space left under its path (taken by growth, given back by shrinking)."""
        return self._stat(2)

    @property
    def armed(self) -> bool:
        return self._slot is not None

    def disarm(self) -> None:
        """Stop the fault (idempotent); its counters keep their last values."""
        if self._slot is None:
            return
        self._final = (self._stat(0), self._stat(1), self._stat(2))
        control("SyscallFault.disarm()").edgeio_disarm(self._slot)
        self._slot = None

    def __enter__(self) -> SyscallFault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disarm()

    def __repr__(self) -> str:
        state = "armed" if self.armed else "disarmed"
        counts = f"calls={self.calls} fired={self.fired}"
        return f"<SyscallFault {self.kind} {self.path!r} {state} {counts}>"


def _bad(kind: str, name: str, value: Any, allowed: str) -> EdgeInputError:
    return EdgeInputError(f"{kind}({name}={value!r}): not allowed; expected {allowed}")


def _whole(kind: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _LONG_MAX:
        raise _bad(kind, name, value, f"an int >= {low}")
    return value


def _seconds(kind: str, name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise _bad(kind, name, value, "a number of seconds >= 0")
    return float(value)


def _seed(value: Any) -> int:
    """A 64-bit seed from an int or str (stable across processes, unlike hash())."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value & (2**64 - 1)
    digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def arm(kind: str, path: str | Path, **options: Any) -> SyscallFault:
    """Arm a fault of `kind` on every file under `path` (its realpath) in this process.

    kind ``"disk_full"`` (``free_bytes``), ``"io_error"`` (``on`` = write | fsync | rename |
    open | read, ``nth``, ``every``, ``times``, ``probability``, ``seed``, ``window``,
    ``short_write``, ``errno`` = ``"EIO"`` | ``"EINTR"``), ``"read_only"``, ``"slow_io"``
    (``seconds``, ``on``, schedule). Raises `SyscallLayerUnavailable` when the library is not
    loaded in this process, `EdgeInputError` on a bad kind or option.
    """
    if kind not in _KIND_CODES:
        raise EdgeInputError(
            f"arm(kind={kind!r}): unknown fault kind; allowed: {', '.join(FAULT_KINDS)}"
        )
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        allowed = ", ".join(_OPTIONS[kind]) or "none"
        raise EdgeInputError(
            f"{kind}(): unknown option(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    prefix = os.path.realpath(os.fspath(path))
    on = options.get("on", "fsync" if kind == "slow_io" else "write")
    if kind in ("io_error", "slow_io") and on not in _ON_CODES:
        raise _bad(kind, "on", on, " | ".join(repr(o) for o in _ON_CODES))
    nth = options.get("nth")
    every = options.get("every")
    times = options.get("times", 1)
    if nth is not None:
        nth = _whole(kind, "nth", nth, 1)
    if every is not None:
        every = _whole(kind, "every", every, 1)
    times = -1 if times in (None, "unlimited") else _whole(kind, "times", times, 1)
    probability = options.get("probability")
    if probability is not None and (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0.0 <= probability <= 1.0
    ):
        raise _bad(kind, "probability", probability, "a number from 0 to 1")
    window = options.get("window")
    w0 = w1 = 0.0
    if window is not None:
        if not isinstance(window, tuple | list) or len(window) != 2:
            raise _bad(kind, "window", window, "(start, end) seconds after arming")
        w0, w1 = _seconds(kind, "window", window[0]), _seconds(kind, "window", window[1])
        if w1 <= w0:
            raise _bad(kind, "window", window, "(start, end) with end > start")
    short_write = options.get("short_write", False)
    if not isinstance(short_write, bool):
        raise _bad(kind, "short_write", short_write, "True or False")
    if short_write and on != "write":
        raise _bad(kind, "short_write", short_write, "on='write' with short_write=True")
    err_name = options.get("errno", "EIO")
    if err_name not in _ERRNOS:
        raise _bad(kind, "errno", err_name, " | ".join(repr(e) for e in _ERRNOS))
    free_bytes = _whole(kind, "free_bytes", options.get("free_bytes", 0), 0)
    seconds = _seconds(kind, "seconds", options.get("seconds", 0.0))
    if kind == "slow_io" and "seconds" not in options:
        raise EdgeInputError("slow_io(): seconds is required (the delay per picked call)")
    lib = control(f"arm({kind!r})")
    slot = lib.edgeio_arm(
        _KIND_CODES[kind],
        os.fsencode(prefix),
        _ON_CODES.get(on, 0),
        nth or 0,
        every or 0,
        times,
        -1.0 if probability is None else float(probability),
        _seed(options.get("seed", 0)),
        int(short_write),
        _ERRNOS[err_name],
        free_bytes,
        seconds,
        w0,
        w1,
    )
    if slot < 0:
        raise OSError(-slot, f"arm({kind!r}, {prefix!r}): {os.strerror(-slot)}")
    return SyscallFault(slot, kind, prefix, dict(options))
