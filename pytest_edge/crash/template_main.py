"""Inside the template process: a fresh interpreter that imports the user's code once, then forks.

Started with ``subprocess`` (exec, not fork, of the test process), it stays single-threaded,
so forking it is safe. Commands arrive as JSON lines on one pipe, replies leave on another:
``{"run": role, "args": {...}}`` → ``{"pid": N}`` then ``{"pid": N, "status": ...}``.
The test process starts and drives it through `pytest_edge.crash.template.TemplateServer`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

from pytest_edge.callables import resolve_callable


def _resolve(target: str) -> Callable[..., Any]:
    """The role's callable: ``"module:function"`` or ``"path/to/script.py:function"``."""
    return resolve_callable(target, files=True)


def _reply(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write((json.dumps(message) + "\n").encode())
    out.flush()


def _status(raw: int) -> dict[str, Any]:
    if os.WIFSIGNALED(raw):
        return {"signal": os.WTERMSIG(raw)}
    return {"exit": os.WEXITSTATUS(raw)}


def main(argv: list[str]) -> None:
    cmd_fd, reply_fd = int(argv[0]), int(argv[1])
    commands = os.fdopen(cmd_fd, "rb")
    replies = os.fdopen(reply_fd, "wb")
    init = json.loads(commands.readline())
    sys.path[:] = init["sys_path"]
    from pytest_edge.crash import _child

    targets: dict[str, Callable[..., Any]] = {}
    try:
        for role, target in init["targets"].items():
            targets[role] = _resolve(target)
    except BaseException as exc:
        _reply(replies, {"error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()})
        return
    import threading

    threads = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    _reply(replies, {"ok": True, "threads": threads})
    for line in commands:
        message = json.loads(line)
        role, args = message["run"], message["args"]
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.setpgid(0, 0)
                commands.close()
                replies.close()
                if role == "workload":
                    code = _child.run_workload(targets["workload"], args)
                else:
                    code = _child.run_recover(targets["recover"], args)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        # Also set here: the parent may kill the group before the child's own setpgid ran.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        _reply(replies, {"pid": pid})
        _, raw = os.waitpid(pid, 0)
        _reply(replies, {"pid": pid, "status": _status(raw)})


if __name__ == "__main__":
    main(sys.argv[1:])
