"""Inside the template process: a fresh interpreter that imports the user's code once, then forks.

Started with ``subprocess`` (exec, not fork, of the test process), it stays single-threaded,
so forking it is safe. Commands arrive as JSON lines on one pipe, replies leave on another:
``{"run": role, "args": {...}}`` → ``{"pid": N}`` then ``{"pid": N, "status": ...}``;
``{"adopt": DIR}`` adds a directory to remove if pytest dies; ``{"bye": true}`` ends it.
The test process starts and drives it through `pytest_edge.crash.template.TemplateServer`.

Its lifetime is tied to pytest's: the kernel's parent-death signal (Linux) and the end of the
command pipe without a ``bye`` (anywhere: the kernel closes it when pytest dies by any signal)
both mean pytest is gone; the template then kills the running child's process group, removes
the run's directories and exits. Each child it forks is tied to the template the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any, BinaryIO, NoReturn

from pytest_edge.callables import resolve_callable
from pytest_edge.lifetime import tie_to_parent

# The parent-death signal of the template: a handled one, because the kernel also sends it when
# only the *thread* that started the template ends (pytest itself alive): then ignored.
PARENT_DEATH = signal.SIGUSR1
_HANDLED = (PARENT_DEATH, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGINT)


def _resolve(target: str) -> Callable[..., Any]:
    """The role's callable: ``"module:function"`` or ``"path/to/script.py:function"``."""
    return resolve_callable(target, files=True)


def _layer_error() -> str | None:
    """Why the system-call library is not active in this process (it was to be preloaded)."""
    try:
        from pytest_edge import syscalls

        if syscalls.active():
            return None
        reason = syscalls.unavailable_reason()
    except Exception as exc:  # the binding itself failed: report it, do not hide it
        return f"{type(exc).__name__}: {exc}"
    preload = os.environ.get("LD_PRELOAD", "")
    return f"LD_PRELOAD={preload!r} did not load it into this interpreter" + (
        f" ({reason})" if reason else " (see the dynamic loader's message below)"
    )


def _reply(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write((json.dumps(message) + "\n").encode())
    out.flush()


def _status(raw: int) -> dict[str, Any]:
    if os.WIFSIGNALED(raw):
        return {"signal": os.WTERMSIG(raw)}
    return {"exit": os.WEXITSTATUS(raw)}


class _Guard:
    """What dies with pytest: the running child's process group and the run's directories."""

    def __init__(self, parent: int, dirs: list[str]) -> None:
        self.parent = parent
        self.dirs = dirs
        self.running: int | None = None
        self.wake_r, wake_w = os.pipe()
        for fd in (self.wake_r, wake_w):
            os.set_blocking(fd, False)
        # SIGCHLD writes a byte here (Python's wakeup fd): the wait below selects on it.
        signal.set_wakeup_fd(wake_w)
        self._wake_w = wake_w

    def install(self) -> None:
        signal.signal(PARENT_DEATH, self._on_parent_death)
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGHUP, self._on_terminate)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        # Ctrl-C reaches the whole foreground group: pytest decides, and closes us in order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _on_parent_death(self, signum: int, frame: FrameType | None) -> None:
        if os.getppid() != self.parent:
            self.parent_gone()

    def _on_terminate(self, signum: int, frame: FrameType | None) -> None:
        self._kill_running()
        if os.getppid() != self.parent:
            self._remove_dirs()
        os._exit(128 + signum)

    def _kill_running(self) -> None:
        """SIGKILL the running child's group and reap the child (its group ends with it)."""
        if self.running is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.running, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.running, 0)
            self.running = None

    def _remove_dirs(self) -> None:
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)

    def parent_gone(self) -> NoReturn:
        """pytest died: kill the running child's group, remove the run's directories, exit."""
        self._kill_running()
        self._remove_dirs()
        os._exit(0)

    def in_child(self, template: int) -> None:
        """In a freshly forked child: default signal handling, tied to the template."""
        signal.set_wakeup_fd(-1)
        for fd in (self.wake_r, self._wake_w):
            os.close(fd)
        for signum in _HANDLED:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        tie_to_parent(template)


class _Commands:
    """The command pipe, read line by line; its end without ``bye`` means pytest is gone."""

    def __init__(self, fd: int, guard: _Guard) -> None:
        self.fd = fd
        self.guard = guard
        self.buffer = b""

    def _fill(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.guard.parent_gone()
        self.buffer += chunk

    def next(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def wait_child(self, pid: int) -> int:
        """The child's raw wait status; watches the command pipe meanwhile."""
        while True:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                return raw
            ready, _, _ = select.select([self.fd, self.guard.wake_r], [], [])
            if self.guard.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.guard.wake_r, 4096)
            if self.fd in ready:
                self._fill()  # a command sent early is kept for later; EOF ends us


def main(argv: list[str]) -> None:
    cmd_fd, reply_fd, parent, workdir = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    guard = _Guard(parent, [workdir])
    guard.install()
    tie_to_parent(parent, PARENT_DEATH)
    commands = _Commands(cmd_fd, guard)
    replies = os.fdopen(reply_fd, "wb")
    init = commands.next()
    sys.path[:] = init["sys_path"]
    if init.get("layer") == "syscall":
        why = _layer_error()
        if why is not None:
            _reply(replies, {"layer_error": why})
            return
    targets: dict[str, Callable[..., Any]] = {}
    try:
        for role, target in init["targets"].items():
            targets[role] = _resolve(target)
    except BaseException as exc:
        _reply(replies, {"error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()})
        return
    guard.install()  # again: importing the user's code may have replaced a handler
    import threading

    threads = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    _reply(replies, {"ok": True, "threads": threads})
    try:
        _serve(commands, replies, guard, targets)
    except BrokenPipeError:  # pytest closed its end of the replies: it is gone
        guard.parent_gone()


def _serve(
    commands: _Commands, replies: BinaryIO, guard: _Guard, targets: dict[str, Callable[..., Any]]
) -> None:
    from pytest_edge.crash import _child

    template = os.getpid()
    while True:
        message = commands.next()
        if message.get("bye"):
            return
        if "adopt" in message:
            guard.dirs.append(str(message["adopt"]))
            continue
        role, args = message["run"], message["args"]
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                guard.in_child(template)
                os.setpgid(0, 0)
                os.close(commands.fd)
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
        guard.running = pid
        # Also set here: the parent may kill the group before the child's own setpgid ran.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        _reply(replies, {"pid": pid})
        raw = commands.wait_child(pid)
        guard.running = None
        _reply(replies, {"pid": pid, "status": _status(raw)})


if __name__ == "__main__":
    main(sys.argv[1:])
