"""Lifetimes tied to pytest: parent-death signals, signals that unwind, and the stale-entry sweep.

A cancelled CI job kills pytest with SIGTERM or SIGKILL; nothing in pytest runs afterwards. So
every process pytest-edge starts is tied to its parent (on Linux the kernel's parent-death
signal, `tie_to_parent`; the crash template also watches a pipe from pytest, the portable
fallback), and every temporary directory it makes carries the owner's pid in its name
(`owned_tempdir`), so whichever process survives removes it, or the next run's `sweep_stale`
does once that pid is gone. The sweep touches only entries named ``pytest-edge-<kind>-<pid>-*``,
owned by this user, whose owner process is no longer alive.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

PREFIX = "pytest-edge-"
PR_SET_PDEATHSIG = 1  # prctl options, <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36
# mtime and a process's start time come from different clocks' rounding: allow this much.
_CLOCK_SLACK = 1.0


def prctl(option: int, value: int) -> bool:
    """Set a per-process flag with Linux's ``prctl``; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def tie_to_parent(expected_parent: int, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send *sig* to this process when its parent dies (Linux; else False).

    The signal is tied to the parent *thread* that started this process. If the parent died
    before the call took effect (``os.getppid()`` is no longer *expected_parent*), *sig* is
    sent to this process at once, as the kernel would have.
    """
    if not prctl(PR_SET_PDEATHSIG, int(sig)):
        return False
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)
    return True


# `python -I -c TIE PARENT PROGRAM ARGS...`: ties itself to PARENT (PR_SET_PDEATHSIG = 1,
# SIGKILL = 9), then execs PROGRAM, found on PATH as subprocess would (the parent-death signal
# survives exec). Self-contained: the program may run another revision's code (`pytest-edge
# ab`), which need not have this module; -I keeps that code off the trampoline's sys.path.
_TIE = (
    "import ctypes, os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "    if os.getppid() != int(sys.argv[1]):\n"
    "        os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def tied_command(command: list[str]) -> list[str]:
    """*command* (a program path and its arguments) run so that it gets SIGKILL when we die."""
    return [sys.executable, "-I", "-c", _TIE, str(os.getpid()), *command]


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived: raised so ``finally`` blocks run (exit status 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _interruption(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


_UNWIND = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
# Set while clean-up must not be cut short: a signal then waits in _pending until it ends.
_deferring = 0
_pending: list[int] = []


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise `Terminated`, SIGINT `KeyboardInterrupt`.

    So ``finally`` blocks and context managers clean up before the process ends. Inside
    `uninterrupted` a signal waits until that block ends; after the first signal, later ones
    are ignored. Outside the main thread (where Python cannot install handlers) this does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        for each in _UNWIND:
            signal.signal(each, signal.SIG_IGN)
        if _deferring:
            _pending.append(signum)
            return
        raise _interruption(signum)

    previous = {each: signal.signal(each, handler) for each in _UNWIND}
    try:
        yield
    finally:
        for each, old in previous.items():
            signal.signal(each, old)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Clean-up that a signal (under `signals_unwind`) must not cut short; it is raised after."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending:
            signum = _pending[0]
            _pending.clear()
            raise _interruption(signum)


def owned_tempdir(kind: str, dir: str | Path | None = None) -> Path:
    """A new private directory ``pytest-edge-<kind>-<pid>-<random>`` (in *dir* or the temp dir)."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-", dir=dir))


def _owner_alive(pid: int, mtime: float) -> bool:
    """Whether process *pid* may own an entry last changed at *mtime*.

    A zombie is dead; a process started after the entry's last change has a reused pid (the
    owner made the entry after it started, and a change only moves mtime forward).
    """
    if pid == os.getpid():
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= mtime + _CLOCK_SLACK
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell: keep the entry


def stale_entries(kind: str, where: str | Path) -> list[Path]:
    """Directories in *where* named ``pytest-edge-<kind>-<pid>-*``, ours, whose owner is gone."""
    pattern = re.compile(rf"{re.escape(PREFIX + kind)}-(\d+)-[a-z0-9_]+")
    found: list[Path] = []
    try:
        entries = list(os.scandir(where))
    except OSError:
        return found
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if not _owner_alive(int(match.group(1)), info.st_mtime):
            found.append(Path(entry.path))
    return found


_SWEPT: set[tuple[str, str]] = set()


def sweep_stale(
    kind: str,
    places: Iterable[str | Path | None],
    before_remove: Callable[[Path], None] | None = None,
    *,
    again: bool = False,
) -> list[Path]:
    """Remove the stale entries of *kind* in *places* (None: the temp dir); returns them.

    Each place is swept once per process unless *again*. *before_remove* sees each entry
    first (``pytest-edge ab`` unregisters the git worktrees inside it).
    """
    removed: list[Path] = []
    for place in places:
        where = os.path.realpath(place if place is not None else tempfile.gettempdir())
        if (kind, where) in _SWEPT and not again:
            continue
        _SWEPT.add((kind, where))
        for entry in stale_entries(kind, where):
            if before_remove is not None:
                before_remove(entry)
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    return removed
