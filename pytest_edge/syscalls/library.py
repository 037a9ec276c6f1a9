"""Finding, checking and loading the system-call library (``libedgeio.so``).

The library is built by the package's own build (``setup.py``) into this directory. Whether it
can be used is decided once per process and said plainly: not built (and why that happens), not
Linux, or cannot be loaded (the dynamic loader's own message).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pytest_edge.errors import EdgeError

__all__ = [
    "LIBRARY_NAME",
    "SyscallLayerUnavailable",
    "active",
    "control",
    "layer_name",
    "library_path",
    "preload_env",
    "require_active",
    "unavailable_reason",
]

LIBRARY_NAME = "libedgeio.so"
_HERE = Path(__file__).resolve().parent
#: The C interface version this binding speaks (``EDGEIO_VERSION`` in edgeio.c).
_VERSION = 1


class SyscallLayerUnavailable(EdgeError, RuntimeError):
    """The system-call layer cannot be used here; the message says why."""


def _candidate() -> Path:
    return _HERE / LIBRARY_NAME


@functools.cache
def _reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return (
            f"not Linux: the system-call layer is an LD_PRELOAD library for glibc on Linux "
            f"(this is {sys.platform}); the Python-level layer is used instead"
        )
    path = _candidate()
    if not path.is_file():
        source = _HERE / "edgeio.c"
        return (
            f"not built: {path} is missing. The package's build compiles it from {source.name} "
            "with the machine's C compiler and skips it (with a warning) when there is none or "
            "it fails; install a C compiler (gcc or clang) and reinstall pytest-edge "
            "(pip install --force-reinstall --no-deps pytest-edge, or make install in a checkout)"
        )
    try:
        # RTLD_LOCAL: loading it here interposes nothing (only a preloaded copy does).
        handle = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)
        version = int(handle.edgeio_version())
    except (OSError, AttributeError) as exc:
        return f"cannot be loaded: {exc}"
    if version != _VERSION:
        return (
            f"cannot be loaded: {path} speaks interface {version}, this pytest-edge speaks "
            f"{_VERSION} (a stale build: reinstall pytest-edge)"
        )
    return None


def unavailable_reason() -> str | None:
    """Why the library cannot be preloaded here, or None when it can."""
    return _reason()


def library_path() -> Path:
    """The built library; raises `SyscallLayerUnavailable` (with the reason) when unusable."""
    reason = _reason()
    if reason is not None:
        raise SyscallLayerUnavailable(f"pytest-edge's system-call layer is unavailable: {reason}")
    return _candidate()


def preload_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default ``os.environ``) with the library first in ``LD_PRELOAD``."""
    path = str(library_path())
    result = dict(os.environ if env is None else env)
    others = [p for p in result.get("LD_PRELOAD", "").replace(":", " ").split() if p != path]
    result["LD_PRELOAD"] = " ".join([path, *others])
    return result


@functools.cache
def _global_handle() -> ctypes.CDLL | None:
    """The preloaded library's control functions, if this process was started with it."""
    if not sys.platform.startswith("linux"):
        return None
    handle = ctypes.CDLL(None)
    try:
        interposing = handle.edgeio_interposing
    except AttributeError:
        return None
    interposing.restype = ctypes.c_int
    return handle if interposing() == 1 else None


def active() -> bool:
    """Whether the library is loaded in this process (it was preloaded) and interposing."""
    return _global_handle() is not None


def layer_name() -> str:
    """Which layer observes this process's file I/O: ``"syscall"`` or ``"python"``."""
    return "syscall" if active() else "python"


def require_active(what: str) -> None:
    """Raise `SyscallLayerUnavailable`, saying why, unless the library is active here."""
    if active():
        return
    reason = _reason()
    named = [
        p
        for p in os.environ.get("LD_PRELOAD", "").replace(":", " ").split()
        if os.path.basename(p) == LIBRARY_NAME
    ]
    if named:
        why = (
            f"LD_PRELOAD names {named[0]} but the dynamic loader did not load it "
            "(it prints why on the process's stderr; a setuid program, or a libc that is not "
            "glibc, ignores LD_PRELOAD)"
        )
    elif reason is not None:
        why = reason
    else:
        why = (
            "this process was not started with it: start it with "
            "pytest_edge.syscalls.preload_env() (LD_PRELOAD=...libedgeio.so)"
        )
    raise SyscallLayerUnavailable(
        f"{what} needs pytest-edge's system-call library loaded in this process "
        f"(pid {os.getpid()}): {why}"
    )


def control(what: str) -> ctypes.CDLL:
    """The active library's control functions with their C signatures; raises if inactive."""
    require_active(what)
    handle = _global_handle()
    assert handle is not None
    return _typed(handle)


@functools.cache
def _typed(handle: ctypes.CDLL) -> ctypes.CDLL:
    c = ctypes
    handle.edgeio_trace_start.argtypes = [c.c_char_p, c.c_int, c.c_char_p, c.c_long]
    handle.edgeio_trace_start.restype = c.c_int
    handle.edgeio_trace_stop.argtypes = []
    handle.edgeio_trace_stop.restype = c.c_int
    handle.edgeio_trace_calls.argtypes = []
    handle.edgeio_trace_calls.restype = c.c_long
    handle.edgeio_arm.argtypes = [
        c.c_int,  # kind
        c.c_char_p,  # path prefix
        c.c_int,  # on
        c.c_long,  # nth
        c.c_long,  # every
        c.c_long,  # times
        c.c_double,  # probability
        c.c_ulonglong,  # seed
        c.c_int,  # short_write
        c.c_int,  # errno
        c.c_longlong,  # free bytes
        c.c_double,  # seconds
        c.c_double,  # window start
        c.c_double,  # window end
    ]
    handle.edgeio_arm.restype = c.c_int
    handle.edgeio_disarm.argtypes = [c.c_int]
    handle.edgeio_disarm.restype = c.c_int
    handle.edgeio_fault_stat.argtypes = [c.c_int, c.c_int]
    handle.edgeio_fault_stat.restype = c.c_longlong
    return handle
