"""The stacks of a hung child: every thread of the workload, not the harness's.

A child that may time out arms `faulthandler` on `DUMP_SIGNAL` with a file its parent names
(`arm`). On the timeout the parent sends the signal and reads the file before killing the
child (`collect`): faulthandler writes from its C signal handler, so the dump comes also when
the workload is stuck in C code or holds the GIL in a loop. The dump is trimmed to what the
workload was doing: the frames below pytest-edge's child entry point (multiprocessing's
bootstrap) and the child's own lifeline thread are dropped.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

DUMP_SIGNAL = signal.SIGUSR1
_ENTRY = "in _child_main"  # pytest-edge's frame in the child: what is below it is bootstrap
_LIFELINE = "in _watch"  # the lifeline thread of the isolated child
MAX_LINES = 200
_armed: list[IO[str]] = []  # the open dump file, kept alive for the child's lifetime


def arm(path: str) -> None:
    """Child side: on `DUMP_SIGNAL`, write every thread's stack to `path`."""
    handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - must outlive this call
    _armed.append(handle)
    faulthandler.register(DUMP_SIGNAL, file=handle, all_threads=True, chain=False)


def collect(
    pid: int, path: str, wait: float = 2.0, alive: Callable[[], bool] = lambda: True
) -> str:
    """Parent side: ask the child `pid` for its stacks, give it `wait` seconds (less once
    `alive` says it ended), return them trimmed (empty when nothing came: the child ended
    before it armed the handler, or the workload replaced it)."""
    try:
        os.kill(pid, signal.SIGCONT)  # a duty-cycled child may be stopped
        os.kill(pid, DUMP_SIGNAL)
    except ProcessLookupError:
        return ""
    deadline = time.monotonic() + wait
    size, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline and alive():
        time.sleep(0.02)
        with contextlib.suppress(OSError):
            now = os.stat(path).st_size
            if now != size:
                size, stable_since = now, time.monotonic()
            elif size > 0 and time.monotonic() - stable_since >= 0.1:
                break
    with contextlib.suppress(OSError):
        return trim(Path(path).read_text(encoding="utf-8", errors="replace"))
    return ""


def trim(dump: str) -> str:
    """Every thread of the dump but the lifeline, each cut at pytest-edge's entry frame."""
    threads: list[list[str]] = []
    for line in dump.splitlines():
        if line.startswith(("Thread 0x", "Current thread 0x")):
            threads.append([line])
        elif threads and line.strip():
            threads[-1].append(line)
    kept: list[str] = []
    for thread in threads:
        if any(_LIFELINE in line and "isolated.py" in line for line in thread):
            continue
        frames = thread[1:]
        for i, line in enumerate(frames):
            if _ENTRY in line:
                frames = frames[:i]
                break
        kept += [thread[0], *frames, ""]
    if not kept:
        return ""
    if len(kept) > MAX_LINES:
        kept = [*kept[:MAX_LINES], f"... {len(kept) - MAX_LINES} more lines"]
    count = sum(1 for line in kept if line.startswith(("Thread 0x", "Current thread 0x")))
    head = (
        f"stacks of the child's {count} thread{'s' if count != 1 else ''} at the timeout "
        "(most recent call first):"
    )
    return "\n".join([head, *kept]).rstrip()
