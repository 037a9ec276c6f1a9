"""The child process that runs a scenario's measured run.

A fresh interpreter (``forkserver``, never a fork of the threaded pytest process) calls the
function and sends back its value, or its exception, and its peak resident memory.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pytest_edge.scenarios.runner import ChildRun, Device


class ChildError(RuntimeError):
    """The function raised in the child; the message carries the child's traceback."""


class ChildDiedError(RuntimeError):
    """The child ended without an answer (killed, crashed, or over its time limit)."""


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child_main(conn: Connection, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        value = fn(**kwargs)
    except MemoryError as exc:
        conn.send(("memory", str(exc), traceback.format_exc(), _peak_rss_bytes()))
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}"
        conn.send(("error", text, traceback.format_exc(), _peak_rss_bytes()))
    else:
        conn.send(("ok", value, "", _peak_rss_bytes()))
    finally:
        conn.close()


def isolate_in_child(
    fn: Callable[..., Any], kwargs: dict[str, Any], device: Device, timeout: float
) -> ChildRun:
    """Run ``fn(**kwargs)`` in a fresh child; its value and peak RSS, or its error re-raised."""
    ctx = multiprocessing.get_context("forkserver")
    parent, child_end = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(child_end, fn, kwargs), daemon=True)
    process.start()
    child_end.close()
    message = None
    try:
        message = parent.recv() if parent.poll(timeout) else None
    except EOFError:
        message = None
    finally:
        if process.is_alive() and message is None:
            process.kill()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        parent.close()
    if message is None:
        how = f"exit code {process.exitcode}" if process.exitcode is not None else "no exit"
        raise ChildDiedError(f"the workload child ended without an answer ({how}, {timeout:g} s)")
    kind, value, child_tb, peak = message
    if kind == "memory":
        raise MemoryError(value)
    if kind == "error":
        error = ChildError(value)
        error.add_note(f"raised in the isolated child; child traceback:\n{child_tb}")
        raise error
    with contextlib.suppress(Exception):
        peak = int(peak)
    return ChildRun(value=value, peak_bytes=peak, notes=())
