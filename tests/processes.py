"""Process helpers for the lifetime tests: start a run, record its descendants, see them gone.

Every helper that starts something has a matching clean-up the tests call in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

# How long a test waits for the run to reach the point it kills it at (pytest start-up included).
READY_TIMEOUT = 30.0
# What must hold: within this many seconds of the kill, no child of the run is alive.
GONE_WITHIN = 2.0


def clean_env() -> dict[str, str]:
    """The environment for a nested pytest or CLI run: no xdist worker variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def start(command: Sequence[str], cwd: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start *command* with output to files in *cwd* (a pipe nobody reads could block it)."""
    with open(cwd / "run.out", "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(command), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), **popen
        )


def output(cwd: Path) -> str:
    try:
        return (cwd / "run.out").read_text(errors="replace")
    except OSError:
        return ""


def wait_for(condition: Callable[[], bool], timeout: float, what: str, cwd: Path) -> None:
    """Poll *condition* (every 20 ms) until true; fail naming *what* with the run's output."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:g} s; output:\n{output(cwd)}")
        time.sleep(0.02)


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def seconds_until_gone(processes: Sequence[psutil.Process], timeout: float = GONE_WITHIN) -> float:
    """Seconds until every process in *processes* has ended; fails listing the survivors."""
    started = time.monotonic()
    while True:
        alive = [p for p in processes if not _gone(p)]
        elapsed = time.monotonic() - started
        if not alive:
            return elapsed
        if elapsed > timeout:
            names = []
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    names.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            raise AssertionError(f"alive {timeout:g} s after the kill: {names}")
        time.sleep(0.01)


def kill_all(processes: Sequence[psutil.Process]) -> None:
    """SIGKILL whatever of *processes* still runs (a failing test leaves nothing behind)."""
    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.kill()


def stop(proc: subprocess.Popen[bytes], processes: Sequence[psutil.Process] = ()) -> None:
    """SIGKILL the run and everything recorded of it, and reap the run."""
    kill_all(processes)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)
