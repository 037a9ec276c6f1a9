"""``pytest-edge run -- pytest ARGS``: start a command with the system-call library preloaded.

In that process (and every process it starts that keeps the environment: xdist workers,
subprocesses) `edge_faults` arms filesystem faults in the library instead of patching
Python. Where the library cannot be used the command still runs, at the Python layer, after
one plain line on stderr saying why (``--require`` makes that an error instead).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence

#: Exit statuses when the command cannot be started, as a shell's.
NOT_FOUND = 127
CANNOT_EXEC = 126


def launch_env(
    require: bool, env: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str, bool]:
    """The environment to start the command with, the line saying which layer it gets, and
    whether that is the fallback (the Python layer).

    Raises `SyscallLayerUnavailable` when `require` and the library cannot be preloaded.
    """
    from pytest_edge.syscalls import preload_env, unavailable_reason

    base = dict(os.environ if env is None else env)
    reason = unavailable_reason()
    if reason is None:
        return preload_env(base), "pytest-edge run: syscall layer (LD_PRELOAD)", False
    if require:
        from pytest_edge.syscalls import SyscallLayerUnavailable

        raise SyscallLayerUnavailable(f"pytest-edge run --require: {reason}")
    return (
        base,
        (
            f"pytest-edge run: the system-call library cannot be used ({reason}); running the "
            "command without it: filesystem faults use the Python layer"
        ),
        True,
    )


def run(command: Sequence[str], *, require: bool = False, quiet: bool = False) -> int:
    """Replace this process with `command` (found on PATH) under `launch_env`; returns only on
    failure: 2 for no command or a required library that is missing, 127 for no such command,
    126 for one that cannot be started. `quiet`: say nothing when the library is preloaded."""
    from pytest_edge.syscalls import SyscallLayerUnavailable

    if not command:
        print(
            "pytest-edge run: error: no command: pytest-edge run -- pytest ARGS",
            file=sys.stderr,
        )
        return 2
    try:
        env, line, fallback = launch_env(require)
    except SyscallLayerUnavailable as error:
        print(f"{error}", file=sys.stderr)
        return 2
    program = shutil.which(command[0], path=env.get("PATH"))
    if program is None:
        print(f"pytest-edge run: error: {command[0]!r}: command not found", file=sys.stderr)
        return NOT_FOUND
    if not quiet or fallback:
        print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, list(command), env)  # noqa: S606 - the user's own command, no shell
    except OSError as error:
        print(f"pytest-edge run: error: cannot start {program}: {error}", file=sys.stderr)
        return CANNOT_EXEC
    raise AssertionError("unreachable: execve returns only by raising")  # pragma: no cover


@contextlib.contextmanager
def library_in_environ() -> Iterator[str | None]:
    """For the block, ``os.environ`` has the library first in ``LD_PRELOAD``, so processes
    started in it (a forkserver, a spawned child) load it; it is inert there until a fault is
    armed or tracing starts. Yields None (environment unchanged) when the library cannot be
    used, else its path."""
    from pytest_edge.syscalls import SyscallLayerUnavailable, library_path, preload_env

    try:
        preload = preload_env()["LD_PRELOAD"]
        path = str(library_path())
    except SyscallLayerUnavailable:
        yield None
        return
    before = os.environ.get("LD_PRELOAD")
    os.environ["LD_PRELOAD"] = preload
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop("LD_PRELOAD", None)
        else:
            os.environ["LD_PRELOAD"] = before
