"""File-system faults for Python-level I/O: disk full, EIO, read-only file system, slow storage.

Covered calls: ``open``/``io.open`` (and so ``pathlib``, ``os.fdopen``, ``tempfile``'s file
objects), ``os.open``, ``os.write``, ``os.read``, ``os.fsync``, ``os.fdatasync``,
``os.replace``, ``os.rename`` and, for ``read_only``, ``os.remove``/``os.unlink``/``os.mkdir``/
``os.rmdir``/``os.link``/``os.symlink``/``os.truncate``/``os.chmod`` (``dir_fd`` forms too).
The faults patch these calls rather than changing permissions or quotas, so they work as root
too. ``disk_full`` counts every byte written as used space and gives space back when a file
under the path is truncated (``os.truncate``/``os.ftruncate``, ``open(..., "w")``,
``os.open`` with ``O_TRUNC``), removed (``os.remove``/``os.unlink``) or replaced
(``os.replace``/``os.rename`` over it); a rewrite in place counts again (the syscall layer,
`pytest_edge.syscalls`, counts only growth).
Not covered at this layer: C extensions doing their own I/O (sqlite3: use the sqlite family),
``mmap``, ``os.sendfile``/``copy_file_range`` (``shutil.copyfile``'s fast path), file objects
opened before the fault was armed and references bound at import (``from os import write``).
The syscall layer reaches all of these but ``mmap`` (`pytest_edge.faults.layer`).

A file object opened for writing under a faulted path is returned wrapped in a thin proxy that
checks each ``write``; errors are raised at the Python ``write()`` call (a real disk would
report a buffered write at flush or close, a little later).
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pytest_edge.faults.events import EventSink
from pytest_edge.faults.patching import Attachment, attach
from pytest_edge.faults.schedule import Counter

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_HAS_PROC_FD = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_readlink = os.readlink
_realpath = os.path.realpath


def _fd_path(fd: int) -> str | None:
    """The path an open descriptor refers to, or None where the platform cannot say."""
    if _HAS_PROC_FD:
        try:
            target = _readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        return target.removesuffix(" (deleted)")
    get_path = getattr(fcntl, "F_GETPATH", None) if fcntl is not None else None
    if get_path is not None:  # macOS
        try:
            raw = fcntl.fcntl(fd, get_path, bytes(1024))
        except OSError:
            return None
        return os.fsdecode(raw.split(b"\0", 1)[0])
    return None


def path_of(file: object) -> str | None:
    """Normalised absolute path for a path-like, a descriptor or a file object, else None."""
    if isinstance(file, bool):
        return None
    if isinstance(file, int):
        return _fd_path(file)
    if isinstance(file, str | bytes | os.PathLike):
        try:
            return _realpath(os.fsdecode(os.fspath(file)))
        except (TypeError, ValueError):
            return None
    fileno = getattr(file, "fileno", None)
    if callable(fileno):
        try:
            return _fd_path(int(fileno()))
        except (OSError, ValueError, TypeError):
            return None
    return None


def path_at(file: object, dir_fd: object) -> str | None:
    """`path_of` for the ``*at`` forms: a relative path is relative to the directory `dir_fd`."""
    if isinstance(dir_fd, int) and isinstance(file, str | bytes | os.PathLike):
        name = os.fsdecode(os.fspath(file))
        if not os.path.isabs(name):
            base = _fd_path(dir_fd)
            return None if base is None else _realpath(os.path.join(base, name))
    return path_of(file)


def _size(target: object) -> int:
    """Size in bytes of a path or descriptor; 0 when it cannot be read."""
    try:
        if isinstance(target, int) and not isinstance(target, bool):
            return os.fstat(target).st_size
        return os.stat(os.fspath(target)).st_size  # type: ignore[call-overload]
    except (OSError, TypeError, ValueError):
        return 0


def _freed_by_removal(path: str | None) -> int:
    """Bytes that removing (or truncating to 0) the file at `path` frees: its size when it is
    a regular file with no other hard link, else 0."""
    if path is None:
        return 0
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 else 0


def _is_write_mode(mode: object) -> bool:
    return isinstance(mode, str) and any(c in mode for c in "wax+")


def _nbytes(data: object, encoding: str | None) -> int:
    if isinstance(data, str):
        return len(data.encode(encoding or "utf-8", errors="replace"))
    try:
        return memoryview(data).nbytes  # type: ignore[arg-type]
    except TypeError:
        return 0


def _prefix(data: Any, nbytes: int) -> memoryview:
    """The first `nbytes` bytes of a bytes-like object, without copying."""
    return memoryview(data).cast("B")[:nbytes]


def _open_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[object, object]:
    file = args[0] if args else kwargs.get("file")
    mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
    return file, mode


class FsRule:
    """One armed file-system fault: its kind, the path it covers and its running state."""

    def __init__(
        self,
        kind: str,
        root: str,
        log: EventSink,
        *,
        on: str = "write",
        counter: Counter | None = None,
        free_bytes: int = 0,
        seconds: float = 0.0,
        short_write: bool = False,
        errno: str = "EIO",
    ) -> None:
        self.kind = kind  # "disk_full" | "io_error" | "read_only" | "slow_io"
        self.seconds = seconds
        self.root = _realpath(root)
        self.log = log
        self.on = on
        self.counter = counter
        self.free_bytes = free_bytes
        self.short_write = short_write
        self.interrupt = errno == "EINTR"
        self.used_bytes = 0
        self.matching_calls = 0
        self._lock = threading.Lock()
        self._attachments: list[Attachment] = []

    # -- matching ----------------------------------------------------------------------------

    def covers(self, path: str | None) -> bool:
        if path is None:
            return False
        root = self.root
        return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)

    @property
    def counted(self) -> bool:
        """io_error and slow_io: a schedule picks which matching calls are hit."""
        return self.kind in ("io_error", "slow_io")

    def wraps_writes(self) -> bool:
        return self.kind == "disk_full" or (self.counted and self.on == "write")

    def wraps_reads(self) -> bool:
        return self.counted and self.on == "read"

    def checks_opens(self) -> bool:
        return self.counted and self.on == "open"

    # -- raising ---------------------------------------------------------------------------

    def _raise(self, code: int, path: str, call: int, what: str) -> None:
        error = OSError(code, os.strerror(code), path)
        self.log.record(self.kind, self.root, call, path, f"{what}: raised {error!r}")
        error.add_note(f"injected by pytest-edge: {self.kind}({self.root!r}) at {what}")
        raise error

    def _count(self) -> int:
        with self._lock:
            self.matching_calls += 1
            return self.matching_calls

    def check_counted(self, path: str, what: str) -> None:
        """Count this matching call; if the schedule picks it, raise EIO (io_error) or wait
        `seconds` before the call goes on (slow_io)."""
        assert self.counter is not None
        call = self.counter.tick()
        if not call:
            return
        if self.kind == "slow_io":
            self.log.record(self.kind, self.root, call, path, f"{what}: delayed {self.seconds:g} s")
            time.sleep(self.seconds)
            return
        if self.interrupt:  # what Python does with EINTR from a system call (PEP 475)
            self.log.record(self.kind, self.root, call, path, f"{what}: EINTR, retried")
            return
        self._raise(errno.EIO, path, call, what)

    def short_count(self, path: str, nbytes: int, what: str) -> int | None:
        """``short_write``: count this write; if the schedule picks it, the number of bytes it
        may write (half of them), else None. Writes under 2 bytes cannot be short: not counted."""
        assert self.counter is not None
        if nbytes < 2:
            return None
        call = self.counter.tick()
        if not call:
            return None
        kept = nbytes // 2
        self.log.record(self.kind, self.root, call, path, f"{what}: wrote {kept} of {nbytes} bytes")
        return kept

    def check_write(self, path: str, nbytes: int, what: str) -> None:
        if self.kind == "read_only":
            self._raise(errno.EROFS, path, self._count(), what)
        elif self.kind == "disk_full":
            with self._lock:
                self.matching_calls += 1
                call = self.matching_calls
                fits = self.used_bytes + nbytes <= self.free_bytes or nbytes == 0
                if fits:
                    self.used_bytes += nbytes
            if not fits:
                self._raise(errno.ENOSPC, path, call, what)
        elif self.counted and self.on == "write":
            self.check_counted(path, what)

    def check_read(self, path: str, what: str) -> None:
        if self.counted and self.on == "read":
            self.check_counted(path, what)

    def release(self, nbytes: int) -> None:
        """disk_full: `nbytes` went back to the free space (a file truncated, unlinked or
        replaced). Space may come back that existed before arming, as on a real disk."""
        if nbytes > 0:
            with self._lock:
                self.used_bytes -= nbytes

    # -- hooks -------------------------------------------------------------------------------

    def _hook_open(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        file, mode = _open_args(args, kwargs)
        if self.checks_opens():
            path = path_of(file)
            if self.covers(path):
                assert path is not None
                self.check_counted(path, "open")
            return proceed(*args, **kwargs)
        writing = _is_write_mode(mode)
        if (writing and (self.kind == "read_only" or self.wraps_writes())) or (
            not writing and self.wraps_reads()
        ):
            path = path_of(file)
            if self.covers(path):
                assert path is not None
                if self.kind == "read_only":
                    self._raise(errno.EROFS, path, self._count(), f"open(mode={mode!r})")
                freed = _freed_by_removal(path) if "w" in str(mode) else 0
                opened = FaultFile(proceed(*args, **kwargs), path, self)
                self.release(freed)
                return opened
        return proceed(*args, **kwargs)

    def _hook_os_open(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
        if self.checks_opens():
            path = path_at(args[0] if args else kwargs.get("path"), kwargs.get("dir_fd"))
            if self.covers(path):
                assert path is not None
                self.check_counted(path, "os.open")
        elif isinstance(flags, int) and flags & _WRITE_FLAGS:
            path = path_at(args[0] if args else kwargs.get("path"), kwargs.get("dir_fd"))
            if self.covers(path):
                assert path is not None
                self._raise(errno.EROFS, path, self._count(), "os.open")
        return proceed(*args, **kwargs)

    def _hook_os_write(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        fd = args[0] if args else kwargs.get("fd")
        path = path_of(fd)
        if self.covers(path):
            assert path is not None
            data = args[1] if len(args) > 1 else kwargs.get("data", b"")
            if self.short_write:
                kept = self.short_count(path, _nbytes(data, None), "os.write")
                if kept is not None:
                    return proceed(fd, _prefix(data, kept))
            else:
                self.check_write(path, _nbytes(data, None), "os.write")
        return proceed(*args, **kwargs)

    def _hook_os_read(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        path = path_of(args[0] if args else kwargs.get("fd"))
        if self.covers(path):
            assert path is not None
            self.check_read(path, "os.read")
        return proceed(*args, **kwargs)

    def _make_fsync_hook(self, name: str) -> Callable[..., Any]:
        def hook(proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            path = path_of(args[0] if args else kwargs.get("fd"))
            if self.covers(path):
                assert path is not None
                self.check_counted(path, name)
            return proceed(*args, **kwargs)

        return hook

    def _make_rename_hook(self, name: str) -> Callable[..., Any]:
        def hook(proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            src = path_at(args[0] if args else kwargs.get("src"), kwargs.get("src_dir_fd"))
            dst = path_at(args[1] if len(args) > 1 else kwargs.get("dst"), kwargs.get("dst_dir_fd"))
            hit = src if self.covers(src) else dst if self.covers(dst) else None
            if hit is not None:
                if self.kind == "read_only":
                    self._raise(errno.EROFS, hit, self._count(), name)
                else:
                    self.check_counted(hit, name)
            return proceed(*args, **kwargs)

        return hook

    def _make_change_hook(self, name: str, position: int = 0) -> Callable[..., Any]:
        """EROFS when the path argument at `position` (``dir_fd``-relative if given) is covered."""
        keyword = "dst" if position else "path"

        def hook(proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            given = args[position] if len(args) > position else kwargs.get(keyword)
            path = path_at(given, kwargs.get("dir_fd"))
            if self.covers(path):
                assert path is not None
                self._raise(errno.EROFS, path, self._count(), name)
            return proceed(*args, **kwargs)

        return hook

    def _make_release_hook(self, name: str) -> Callable[..., Any]:
        """disk_full: the space a removal, truncation or replacement frees comes back."""

        def hook(proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            freed = self._freed_by(name, args, kwargs)
            result = proceed(*args, **kwargs)
            self.release(freed)  # only once the call succeeded
            return result

        return hook

    def _freed_by(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        if name in ("os.replace", "os.rename"):
            given = args[1] if len(args) > 1 else kwargs.get("dst")
            path = path_at(given, kwargs.get("dst_dir_fd"))
            return _freed_by_removal(path) if self.covers(path) else 0
        if name in ("os.truncate", "os.ftruncate"):
            target = args[0] if args else kwargs.get("path", kwargs.get("fd"))
            length = args[1] if len(args) > 1 else kwargs.get("length", 0)
            path = path_of(target)
            if not self.covers(path) or not isinstance(length, int):
                return 0
            return max(0, _size(target) - length)
        if name == "os.open":
            flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
            if not isinstance(flags, int) or not flags & os.O_TRUNC:
                return 0
        given = args[0] if args else kwargs.get("path")
        path = path_at(given, kwargs.get("dir_fd"))
        return _freed_by_removal(path) if self.covers(path) else 0

    def arm(self) -> None:
        sites: list[tuple[object, str, Callable[..., Any]]] = []
        if self.kind == "read_only" or self.wraps_writes() or self.wraps_reads():
            sites += [(builtins, "open", self._hook_open), (io, "open", self._hook_open)]
        if self.checks_opens():
            sites += [(builtins, "open", self._hook_open), (io, "open", self._hook_open)]
            sites.append((os, "open", self._hook_os_open))
        if self.kind == "read_only":
            sites.append((os, "open", self._hook_os_open))
            for name in ("remove", "unlink", "mkdir", "rmdir", "truncate", "chmod"):
                sites.append((os, name, self._make_change_hook(f"os.{name}")))
            sites.append((os, "symlink", self._make_change_hook("os.symlink", position=1)))
            if hasattr(os, "link"):
                sites.append((os, "link", self._make_rename_hook("os.link")))
        if self.kind == "read_only" or self.wraps_writes():
            sites.append((os, "write", self._hook_os_write))
        if self.kind == "disk_full":
            for name in ("remove", "unlink", "truncate", "ftruncate", "replace", "rename", "open"):
                if hasattr(os, name):
                    sites.append((os, name, self._make_release_hook(f"os.{name}")))
        if self.wraps_reads():
            sites.append((os, "read", self._hook_os_read))
        if self.counted and self.on == "fsync":
            for name in ("fsync", "fdatasync"):
                if hasattr(os, name):
                    sites.append((os, name, self._make_fsync_hook(f"os.{name}")))
        if self.kind == "read_only" or (self.counted and self.on == "rename"):
            for name in ("replace", "rename"):
                sites.append((os, name, self._make_rename_hook(f"os.{name}")))
        for parent, name, hook in sites:
            self._attachments.append(attach(parent, name, hook))

    @property
    def attachments(self) -> list[Attachment]:
        return self._attachments


class FaultFile:
    """A file object opened under a faulted path: checks writes/reads, delegates the rest."""

    def __init__(self, raw: Any, path: str, rule: FsRule) -> None:
        self._raw = raw
        self._path = path
        self._rule = rule

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_FaultFile") or name in ("_raw", "_path", "_rule"):
            raise AttributeError(name)  # not set yet (copy, unpickling): no endless recursion
        return getattr(self._raw, name)

    def __repr__(self) -> str:
        return f"<FaultFile {self._raw!r}>"

    def __enter__(self) -> FaultFile:
        self._raw.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> Any:
        return self._raw.__exit__(*exc_info)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        self._rule.check_read(self._path, "readline")
        return next(self._raw)

    def write(self, data: Any) -> Any:
        if self._rule.short_write:
            # Only an unbuffered binary file shows a short count; buffered ones retry it.
            if isinstance(self._raw, io.RawIOBase):
                kept = self._rule.short_count(self._path, _nbytes(data, None), "write")
                if kept is not None:
                    return self._raw.write(_prefix(data, kept))
            return self._raw.write(data)
        nbytes = _nbytes(data, getattr(self._raw, "encoding", None))
        self._rule.check_write(self._path, nbytes, "write")
        return self._raw.write(data)

    def truncate(self, *args: Any) -> Any:
        if self._rule.kind != "disk_full":
            return self._raw.truncate(*args)
        self._raw.flush()
        before = _size(self._raw.fileno())
        size = self._raw.truncate(*args)
        self._rule.release(before - size)
        return size

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)

    def read(self, *args: Any) -> Any:
        self._rule.check_read(self._path, "read")
        return self._raw.read(*args)

    def read1(self, *args: Any) -> Any:
        self._rule.check_read(self._path, "read")
        return self._raw.read1(*args)

    def readinto(self, buffer: Any) -> Any:
        self._rule.check_read(self._path, "read")
        return self._raw.readinto(buffer)

    def readline(self, *args: Any) -> Any:
        self._rule.check_read(self._path, "readline")
        return self._raw.readline(*args)

    def readlines(self, *args: Any) -> Any:
        self._rule.check_read(self._path, "readlines")
        return self._raw.readlines(*args)
