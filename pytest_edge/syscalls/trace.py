"""Recording file operations at the system-call layer (`tracing`) and kill points (`KillAt`).

The records are the crash harness's (``pytest_edge.crash._child.Tracer``) JSON lines, written by
the library with one ``write(2)`` each, plus ``"sys"`` (the libc function) and ``"n"`` (the
traced call's number in this process, from 1). See ``docs/syscalls.md`` for every record.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from pytest_edge.errors import EdgeInputError
from pytest_edge.syscalls.library import control

__all__ = ["KILL_CALLS", "KillAt", "traced_calls", "tracing"]

#: What a kill point can count: every traced call, a record type (``"fsync"`` also counts
#: directory fsyncs, ``"dirsync"`` only those), or the libc function itself (``"pwrite64"``).
KILL_CALLS = frozenset(
    {
        "any",
        # record types
        "open",
        "opendir",
        "write",
        "trunc",
        "fsync",
        "dirsync",
        "syncfs",
        "sfr",
        "rename",
        "link",
        "unlink",
        "mkdir",
        "rmdir",
        "import",
        "unobserved",
        # libc functions
        "open64",
        "openat",
        "openat64",
        "creat",
        "creat64",
        "__open_2",
        "__open64_2",
        "__openat_2",
        "__openat64_2",
        "pwrite",
        "pwrite64",
        "writev",
        "pwritev",
        "pwritev64",
        "pwritev2",
        "pwritev64v2",
        "copy_file_range",
        "sendfile",
        "sendfile64",
        "ftruncate",
        "ftruncate64",
        "truncate",
        "truncate64",
        "fallocate",
        "fallocate64",
        "posix_fallocate",
        "posix_fallocate64",
        "fdatasync",
        "sync_file_range",
        "sync",
        "renameat",
        "renameat2",
        "linkat",
        "unlinkat",
        "mkdirat",
        "mmap",
        "mmap64",
        "fopen",
        "fopen64",
        "freopen",
        "freopen64",
        "fdopen",
    }
)


class KillAt(NamedTuple):
    """SIGKILL the process group *before* the `n`-th traced call of kind `call` (from 1).

    `call` is one of `KILL_CALLS`: ``"any"``, a record type (``"write"``, ``"fsync"``...) or a
    libc function (``"pwrite64"``). The library writes a ``kill`` record first.
    """

    call: str
    n: int


def _check_kill(kill_at: KillAt) -> tuple[bytes, int]:
    call, n = kill_at
    if call not in KILL_CALLS:
        raise EdgeInputError(
            f"KillAt call: {call!r} is not a call the system-call layer counts; "
            f"allowed: {', '.join(sorted(KILL_CALLS))}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EdgeInputError(f"KillAt n: {n!r} is not allowed; expected an int >= 1")
    return call.encode(), n


@contextmanager
def tracing(root: str | Path, record_fd: int, *, kill_at: KillAt | None = None) -> Iterator[None]:
    """Record file operations under `root` (its realpath) as JSON lines to `record_fd`.

    `record_fd` should be opened with ``O_APPEND`` (one ``write(2)`` per record, so a record
    written just before a SIGKILL survives it). Only one tracing at a time per process.
    Raises `SyscallLayerUnavailable` when the library is not loaded in this process.
    """
    lib = control("tracing()")
    real = os.path.realpath(os.fspath(root))
    if not os.path.isdir(real):
        raise EdgeInputError(f"tracing root: {os.fspath(root)!r} is not a directory")
    if isinstance(record_fd, bool) or not isinstance(record_fd, int) or record_fd < 0:
        raise EdgeInputError(f"tracing record_fd: {record_fd!r} is not an open file descriptor")
    call, n = _check_kill(kill_at) if kill_at is not None else (b"", 0)
    rc = lib.edgeio_trace_start(os.fsencode(real), record_fd, call, n)
    if rc == errno.EBUSY:
        raise EdgeInputError("tracing(): this process is already tracing (one at a time)")
    if rc:
        raise OSError(rc, f"tracing({real!r}) could not start: {os.strerror(rc)}")
    try:
        yield
    finally:
        lib.edgeio_trace_stop()


def traced_calls() -> int:
    """How many calls the current (or last) tracing has numbered in this process."""
    return int(control("traced_calls()").edgeio_trace_calls())
