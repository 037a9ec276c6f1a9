"""What runs inside a crash-harness child: the ack recorder, the file-operation tracer, roles.

A child is forked from the template server (a fresh, single-threaded interpreter), runs one
role and ends with ``os._exit``. Everything patched here dies with the child process.

Records are JSON lines appended with one ``write(2)`` each to a file outside the child's
address space, so a record written just before a SIGKILL survives it.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import stat
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from pytest_edge import durable

# The real functions, saved before any patching (the tracer and recorder use these).
_os_open = os.open
_os_close = os.close
_os_write = os.write
_os_pwrite = os.pwrite
_os_ftruncate = os.ftruncate
_os_truncate = os.truncate
_os_fsync = os.fsync
_os_fdatasync = os.fdatasync
_os_rename = os.rename
_os_replace = os.replace
_os_link = os.link
_os_unlink = os.unlink
_os_remove = os.remove
_os_mkdir = os.mkdir
_os_rmdir = os.rmdir
_io_open = io.open


def canonical(value: Any) -> str:
    """The value as canonical JSON text after a JSON round trip (how values are compared)."""
    return json.dumps(
        json.loads(json.dumps(value)), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _die() -> None:
    # SIGKILL to the whole process group: the workload and anything it started.
    os.killpg(os.getpgrp(), signal.SIGKILL)


class Recorder:
    """The durability sink of a workload child: records acks/intents, fires kill points."""

    def __init__(self, record_path: str, plan: Mapping[str, Any]) -> None:
        self._fd = _os_open(record_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.RLock()
        self._kind = str(plan.get("kind", "none"))
        self._events_target = int(plan.get("events", 0))
        self._acks_target = int(plan.get("acks", 0))
        self._cp_name = str(plan.get("name", ""))
        self._cp_target = int(plan.get("nth", 1))
        self.events = 0
        self.acks = 0
        self._cp_seen = 0

    @property
    def fd(self) -> int:
        """The record file (append-only; the system-call layer writes its records there too)."""
        return self._fd

    def write(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            _os_write(self._fd, line)

    def event(self, what: str) -> None:
        """Count one event; for ``kill="random"`` die *before* the chosen event happens."""
        with self._lock:
            self.events += 1
            if self._kind == "events" and self.events == self._events_target:
                self.write({"t": "kill", "why": f"random: before event {self.events} ({what})"})
                _die()

    def ack(self, key: str, value: Any) -> None:
        text = self._encode("ack", key, value)
        with self._lock:
            self.event(f"ack {key!r}")
            self.write({"t": "ack", "key": key, "v": text})
            self.acks += 1
            if self._kind == "acks" and self.acks == self._acks_target:
                self.write({"t": "kill", "why": f"after ack #{self.acks} ({key!r})"})
                _die()

    def intent(self, key: str, value: Any) -> None:
        text = self._encode("intent", key, value)
        with self._lock:
            self.event(f"intent {key!r}")
            self.write({"t": "intent", "key": key, "v": text})

    def crashpoint(self, name: str) -> None:
        with self._lock:
            self.event(f"crashpoint {name!r}")
            self.write({"t": "cp", "name": name})
            if self._kind == "crashpoint" and name == self._cp_name:
                self._cp_seen += 1
                if self._cp_seen == self._cp_target:
                    why = f"crashpoint {name!r} reached {self._cp_seen}x"
                    self.write({"t": "kill", "why": why})
                    _die()

    @staticmethod
    def _encode(call: str, key: str, value: Any) -> str | None:
        if not isinstance(key, str):
            raise TypeError(f"pytest_edge.{call}: key must be a str, got {key!r}")
        if value is durable.DELETED:
            return None
        try:
            return canonical(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"pytest_edge.{call}({key!r}, ...): the value must survive a JSON round trip: {exc}"
            ) from None


_WRITE_MODES = frozenset("wxa+")


class Tracer:
    """Patches Python-level file operations under *root*: counts them, optionally records them."""

    def __init__(self, root: str, recorder: Recorder, record_ops: bool) -> None:
        self.root = os.path.realpath(root)
        self.rec = recorder
        self.record_ops = record_ops
        self.fd_paths: dict[int, str] = {}

    def rel(self, path: Any, dir_fd: int | None = None) -> str | None:
        """*path* relative to the root, or None when it lies outside."""
        try:
            text = os.fsdecode(os.fspath(path))
        except TypeError:
            return None
        if dir_fd is not None and not os.path.isabs(text):
            base = self.fd_paths.get(dir_fd)
            if base is None:
                return None
            text = os.path.join(self.root, base, text)
        absolute = os.path.abspath(text)
        parent = os.path.realpath(os.path.dirname(absolute))
        full = os.path.join(parent, os.path.basename(absolute))
        if full == self.root or os.path.basename(absolute) in ("", "."):
            full = os.path.realpath(absolute)
        if full == self.root:
            return "."
        if full.startswith(self.root + os.sep):
            return os.path.normpath(full[len(self.root) + 1 :])
        return None

    def record(self, record: dict[str, Any]) -> None:
        if self.record_ops:
            self.rec.write(record)

    def record_open(self, fd: int, rel: str, flags: int) -> None:
        self.fd_paths[fd] = rel
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            self.record({"t": "opendir", "path": rel})
        else:
            self.record({"t": "open", "path": rel, "flags": flags, "ino": st.st_ino})

    def offset(self, fd: int) -> int:
        if self._append(fd):
            return os.fstat(fd).st_size
        return os.lseek(fd, 0, os.SEEK_CUR)

    @staticmethod
    def _append(fd: int) -> bool:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)

    def record_write(self, fd: int, offset: int, data: bytes) -> None:
        if data:
            self.record(
                {
                    "t": "write",
                    "path": self.fd_paths.get(fd, "?"),
                    "ino": os.fstat(fd).st_ino,
                    "off": offset,
                    "data": base64.b64encode(data).decode("ascii"),
                }
            )

    # -- patched functions ------------------------------------------------------------------

    def install(self) -> None:
        tracer = self

        def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
            rel = tracer.rel(path, dir_fd)
            if rel is not None:
                tracer.rec.event(f"open {rel}")
            fd = _os_open(path, flags, mode, dir_fd=dir_fd)
            if rel is not None:
                tracer.record_open(fd, rel, flags)
            return fd

        def os_close(fd: int) -> None:
            tracer.fd_paths.pop(fd, None)
            _os_close(fd)

        def os_write(fd: int, data: Any) -> int:
            if fd not in tracer.fd_paths:
                return _os_write(fd, data)
            tracer.rec.event(f"write {tracer.fd_paths[fd]}")
            off = tracer.offset(fd)
            n = _os_write(fd, data)
            tracer.record_write(fd, off, bytes(memoryview(data)[:n]))
            return n

        def os_pwrite(fd: int, data: Any, offset: int) -> int:
            if fd not in tracer.fd_paths:
                return _os_pwrite(fd, data, offset)
            tracer.rec.event(f"pwrite {tracer.fd_paths[fd]}")
            n = _os_pwrite(fd, data, offset)
            tracer.record_write(fd, offset, bytes(memoryview(data)[:n]))
            return n

        def os_ftruncate(fd: int, length: int) -> None:
            if fd not in tracer.fd_paths:
                _os_ftruncate(fd, length)
                return
            tracer.rec.event(f"truncate {tracer.fd_paths[fd]}")
            _os_ftruncate(fd, length)
            tracer.record({"t": "trunc", "ino": os.fstat(fd).st_ino, "size": length})

        def os_truncate(path: Any, length: int) -> None:
            if isinstance(path, int):
                os_ftruncate(path, length)
                return
            rel = tracer.rel(path)
            if rel is not None:
                tracer.rec.event(f"truncate {rel}")
            _os_truncate(path, length)
            if rel is not None:
                tracer.record({"t": "trunc", "ino": os.stat(path).st_ino, "size": length})

        def sync(real: Callable[[Any], None], name: str) -> Callable[[Any], None]:
            def patched(fd: Any) -> None:
                num = fd if isinstance(fd, int) else fd.fileno()
                rel = tracer.fd_paths.get(num)
                if rel is not None:
                    tracer.rec.event(f"{name} {rel}")
                real(fd)
                if rel is not None:
                    st = os.fstat(num)
                    if stat.S_ISDIR(st.st_mode):
                        tracer.record({"t": "dirsync", "path": rel})
                    else:
                        tracer.record({"t": "fsync", "path": rel, "ino": st.st_ino})

            return patched

        def move(real: Callable[..., None], name: str) -> Callable[..., None]:
            def patched(
                src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
            ) -> None:
                rs, rd = tracer.rel(src, src_dir_fd), tracer.rel(dst, dst_dir_fd)
                if rs is not None or rd is not None:
                    tracer.rec.event(f"{name} {rs} -> {rd}")
                if rs is None and rd is not None and os.path.isfile(src):
                    with _io_open(src, "rb") as f:
                        data = f.read()
                else:
                    data = None
                real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
                if rs is not None and rd is not None:
                    tracer.record({"t": "rename", "src": rs, "dst": rd})
                elif rs is not None:
                    tracer.record({"t": "unlink", "path": rs})
                elif rd is not None and data is not None:
                    ino = os.stat(dst, dir_fd=dst_dir_fd).st_ino
                    tracer.record(
                        {
                            "t": "import",
                            "path": rd,
                            "ino": ino,
                            "data": base64.b64encode(data).decode("ascii"),
                        }
                    )

            return patched

        def remove(real: Callable[..., None], name: str) -> Callable[..., None]:
            def patched(path: Any, *, dir_fd: int | None = None) -> None:
                rel = tracer.rel(path, dir_fd)
                if rel is not None:
                    tracer.rec.event(f"{name} {rel}")
                real(path, dir_fd=dir_fd)
                if rel is not None:
                    tracer.record({"t": "rmdir" if name == "rmdir" else "unlink", "path": rel})

            return patched

        def os_link(
            src: Any,
            dst: Any,
            *,
            src_dir_fd: int | None = None,
            dst_dir_fd: int | None = None,
            follow_symlinks: bool = True,
        ) -> None:
            rs, rd = tracer.rel(src, src_dir_fd), tracer.rel(dst, dst_dir_fd)
            if rd is not None:
                tracer.rec.event(f"link {rs} -> {rd}")
            _os_link(
                src,
                dst,
                src_dir_fd=src_dir_fd,
                dst_dir_fd=dst_dir_fd,
                follow_symlinks=follow_symlinks,
            )
            if rs is not None and rd is not None:
                tracer.record({"t": "link", "src": rs, "dst": rd})

        def os_mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
            rel = tracer.rel(path, dir_fd)
            if rel is not None:
                tracer.rec.event(f"mkdir {rel}")
            _os_mkdir(path, mode, dir_fd=dir_fd)
            if rel is not None:
                tracer.record({"t": "mkdir", "path": rel})

        patched: dict[str, Callable[..., Any]] = {
            "open": os_open,
            "close": os_close,
            "write": os_write,
            "pwrite": os_pwrite,
            "ftruncate": os_ftruncate,
            "truncate": os_truncate,
            "fsync": sync(_os_fsync, "fsync"),
            "fdatasync": sync(_os_fdatasync, "fdatasync"),
            "rename": move(_os_rename, "rename"),
            "replace": move(_os_replace, "replace"),
            "unlink": remove(_os_unlink, "unlink"),
            "remove": remove(_os_remove, "unlink"),
            "rmdir": remove(_os_rmdir, "rmdir"),
            "mkdir": os_mkdir,
            "link": os_link,
        }
        for name, function in patched.items():
            setattr(os, name, function)
        builtins.open = self.open
        io.open = self.open
        # copyfile's sendfile fast path writes in C, outside the trace.
        shutil._USE_CP_SENDFILE = False  # type: ignore[attr-defined]

    def open(
        self,
        file: Any,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        closefd: bool = True,
        opener: Callable[[str, int], int] | None = None,
    ) -> Any:
        """``open`` that routes writable files under the root through a traced raw file."""
        if not _WRITE_MODES.intersection(mode):
            return _io_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        rel: str | None
        if opener is not None:
            # The opener decides which file this is (tempfile opens `dir` with an opener
            # that creates the temp file through os.open); the raw file learns it from its fd.
            rel = ""
        elif isinstance(file, int):
            rel = self.fd_paths.get(file)
        else:
            rel = self.rel(file)
        if rel is None:
            return _io_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        rawmode = "".join(c for c in mode if c in "rwxa+")
        if rel and not isinstance(file, int):
            self.rec.event(f"open {rel}")
        raw = _TracedFileIO(file, rawmode, closefd, opener, tracer=self, rel=rel)
        result: Any = raw
        try:
            binary = "b" in mode
            line_buffering = False
            if buffering == 1 or (buffering < 0 and raw.isatty()):
                buffering = -1
                line_buffering = True
            if buffering < 0:
                buffering = io.DEFAULT_BUFFER_SIZE
            if buffering == 0:
                if binary:
                    return raw
                # The built-in open's own error, word for word: this stands in for open().
                raise ValueError("can't have unbuffered text I/O")
            if "+" in mode:
                result = io.BufferedRandom(raw, buffering)
            else:
                result = io.BufferedWriter(raw, buffering)
            if binary:
                return result
            text = io.TextIOWrapper(result, encoding, errors, newline, line_buffering)
            result = text
            text.mode = mode  # type: ignore[misc]
            return text
        except BaseException:
            result.close()
            raise


_RAW_FLAGS = {
    "r": 0,
    "w": os.O_CREAT | os.O_TRUNC,
    "x": os.O_CREAT | os.O_EXCL,
    "a": os.O_CREAT | os.O_APPEND,
}


class _TracedFileIO(io.FileIO):
    """A raw file whose writes and truncations are recorded before reaching the OS."""

    def __init__(
        self,
        file: Any,
        mode: str,
        closefd: bool,
        opener: Callable[[str, int], int] | None,
        *,
        tracer: Tracer,
        rel: str,
    ) -> None:
        super().__init__(file, mode, closefd, opener)
        self._tracer = tracer
        flags = _RAW_FLAGS[mode[0]] | (os.O_RDWR if "+" in mode else os.O_WRONLY)
        self._rel: str | None = rel
        if not rel:  # opened through an opener: traced only if the opener used os.open here
            self._rel = tracer.fd_paths.get(self.fileno())
        elif isinstance(file, int):
            tracer.fd_paths[self.fileno()] = rel
        else:
            tracer.record_open(self.fileno(), rel, flags)

    def write(self, b: Any) -> int:
        if self._rel is None:
            return super().write(b) or 0
        fd = self.fileno()
        self._tracer.rec.event(f"write {self._rel}")
        off = self._tracer.offset(fd)
        n = super().write(b)
        if n:
            self._tracer.record_write(fd, off, bytes(memoryview(b).cast("B")[:n]))
        return n if n is not None else 0

    def truncate(self, size: int | None = None) -> int:
        if self._rel is None:
            return super().truncate(size)
        fd = self.fileno()
        self._tracer.rec.event(f"truncate {self._rel}")
        result = super().truncate(size)
        self._tracer.record({"t": "trunc", "ino": os.fstat(fd).st_ino, "size": result})
        return result

    def close(self) -> None:
        if not self.closed:
            self._tracer.fd_paths.pop(self.fileno(), None)
        super().close()


# -- roles -----------------------------------------------------------------------------------


def _observe(args: Mapping[str, Any], rec: Recorder) -> contextlib.AbstractContextManager[Any]:
    """Turn on whichever layer observes the child's file I/O (tracing and kill points).

    With the system-call layer the library records every libc file call under the state
    directory to the record file and fires syscall kill points; the Python-level tracer is
    then not installed (no double records). ``random``/``events:N`` kill before the Nth
    traced call or the Nth ack/intent/crashpoint, whichever comes first.
    """
    plan = args["plan"]
    kind = plan.get("kind")
    if args.get("layer") == "syscall":
        from pytest_edge import syscalls

        kill_at = None
        if kind == "syscall":
            kill_at = syscalls.KillAt(str(plan["call"]), int(plan["nth"]))
        elif kind == "events":
            kill_at = syscalls.KillAt("any", int(plan["events"]))
        if args.get("trace") or kill_at is not None:
            tracing: contextlib.AbstractContextManager[Any] = syscalls.tracing(
                str(args["state_dir"]), rec.fd, kill_at=kill_at
            )
            return tracing
    elif args.get("trace") or kind == "events":
        Tracer(str(args["state_dir"]), rec, record_ops=bool(args.get("trace"))).install()
    return contextlib.nullcontext()


def run_workload(workload: Callable[[str], Any], args: Mapping[str, Any]) -> int:
    """Run the workload until it returns or a kill point fires; returns the exit code."""
    rec = Recorder(str(args["record"]), args["plan"])
    rec.write({"t": "start", "pid": os.getpid()})
    durable.install_sink(rec)
    try:
        with _observe(args, rec):
            workload(str(args["state_dir"]))
    except BaseException as exc:  # the report shows any failure of the workload
        rec.write({"t": "error", "error": repr(exc), "tb": traceback.format_exc()})
        return 1
    rec.write({"t": "end"})
    return 0


def run_recover(recover: Callable[[str], Any], args: Mapping[str, Any]) -> int:
    """Call recover on each state directory; one JSON line per state in the output file."""
    out = _os_open(str(args["out"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for i, state_dir in enumerate(args["dirs"]):
        line: dict[str, Any] = {"i": i}
        try:
            result = recover(str(state_dir))
            if not isinstance(result, Mapping):
                raise TypeError(
                    f"recover must return a mapping key -> value, got {type(result).__name__}"
                )
            line["state"] = {str(k): canonical(v) for k, v in result.items()}
        except BaseException as exc:  # a failed recovery is a result, not a harness error
            line["error"] = f"{type(exc).__name__}: {exc}"
            line["tb"] = traceback.format_exc()
        _os_write(out, (json.dumps(line, separators=(",", ":")) + "\n").encode())
    _os_close(out)
    return 0
