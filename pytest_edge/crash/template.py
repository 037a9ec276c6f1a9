"""The test process's handle on the template process: start it, have it fork children, kill.

The template process itself runs `pytest_edge.crash.template_main`; each child it forks runs
`pytest_edge.crash._child`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edge.crash.errors import CrashHarnessError, CrashHarnessWarning
from pytest_edge.crash.layer import Layer
from pytest_edge.crash.layer import choose as choose_layer
from pytest_edge.errors import EdgeInputError

_BOOT = "import sys; from pytest_edge.crash.template_main import main; main(sys.argv[1:])"


@dataclass(frozen=True)
class ChildExit:
    """How a child ended: an exit code, or the signal that killed it."""

    exit_code: int | None
    signal: int | None

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit code {self.exit_code}"


class TemplateServer:
    """A fresh single-threaded interpreter that imports the targets once and forks children.

    The test process may be threaded, so it never forks itself: it execs this server, and the
    children are forks of the server.
    """

    def __init__(
        self,
        targets: dict[str, str],
        workdir: Path,
        start_timeout: float = 60.0,
        layer: Layer | None = None,
    ):
        self.log_path = workdir / "children.log"
        #: the system-call library is preloaded into the template (and so into every child)
        #: when this is the system-call layer; children are inert until they turn tracing on
        self.layer = choose_layer("auto") if layer is None else layer
        env = self.layer.preload(dict(os.environ))
        # Keep the template single-threaded: native thread pools (BLAS, OpenMP) would otherwise
        # start at import and be lost in every fork. The children inherit these settings.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, "1")
        cmd_r, self._cmd_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-c",
                    _BOOT,
                    str(cmd_r),
                    str(rep_w),
                    str(os.getpid()),
                    str(workdir),
                ],
                pass_fds=(cmd_r, rep_w),
                # Its own process group: a kill of pytest's whole group (a CI runner cancelling)
                # leaves it alive to end the workload's group and remove the directories.
                process_group=0,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        os.close(cmd_r)
        os.close(rep_w)
        self._buffer = b""
        self._running: int | None = None
        try:
            self._send({"sys_path": list(sys.path), "targets": targets, "layer": self.layer.name})
            reply = self._read(start_timeout)
        except BaseException:
            self.close()
            raise
        if reply is not None and "layer_error" in reply:
            self.close()
            raise CrashHarnessError(
                "crash harness: the system-call library could not be loaded into the crash "
                f"template process (pid {self._proc.pid}, {sys.executable}): "
                f"{reply['layer_error']}\n{self.log_tail()}"
            )
        if reply is None or "error" in reply:
            self.close()
            detail = "no answer" if reply is None else reply["error"]
            raise EdgeInputError(
                f"crash harness: cannot load {targets}: {detail}\n{self.log_tail()}"
                + ("" if reply is None else reply.get("tb", ""))
            )
        if reply.get("threads"):
            warnings.warn(
                f"crash harness: importing {targets} started threads {reply['threads']}; "
                "children are forked from that process and get none of them. Start threads "
                "inside the workload instead.",
                CrashHarnessWarning,
                stacklevel=3,
            )

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._cmd_w, (json.dumps(message) + "\n").encode())

    def _read(self, timeout: float | None) -> dict[str, Any] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._rep_r], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self._rep_r, 65536)
            if not chunk:
                raise CrashHarnessError(
                    f"crash harness: the template process ended unexpectedly\n{self.log_tail()}"
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def spawn(self, role: str, args: dict[str, Any]) -> int:
        """Fork a child running *role*; returns its pid (also its process group)."""
        self._send({"run": role, "args": args})
        reply = self._read(30.0)
        if reply is None:
            raise CrashHarnessError("crash harness: the template process did not fork in 30 s")
        self._running = int(reply["pid"])
        return self._running

    def wait(self, pid: int, timeout: float | None) -> ChildExit | None:
        """Wait for the child to end; None on timeout (the child is still running)."""
        reply = self._read(timeout)
        if reply is None:
            return None
        if reply.get("pid") != pid:
            raise CrashHarnessError(f"crash harness: unexpected reply {reply}")
        self._running = None
        status = reply["status"]
        return ChildExit(status.get("exit"), status.get("signal"))

    def kill(self, pid: int) -> ChildExit:
        """SIGKILL the child's process group and collect its exit."""
        # ProcessLookupError: it ended on its own meanwhile; the server still reports it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        result = self.wait(pid, 30.0)
        if result is None:
            raise CrashHarnessError(f"crash harness: child {pid} survived SIGKILL for 30 s")
        return result

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = text.splitlines()[-lines:]
        return "child output (last lines):\n" + "\n".join(tail) if tail else ""

    def adopt(self, directory: Path) -> None:
        """Have the template remove *directory* too if pytest dies (it removes its own workdir)."""
        self._send({"adopt": str(directory)})

    def close(self) -> None:
        """End the server (``bye``, then its pipes closed) and reap it; kill a child still running.

        The end of the command pipe without ``bye`` tells the template pytest died.
        """
        if self._running is not None:
            # e.g. KeyboardInterrupt while waiting: never leave a workload running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._running, signal.SIGKILL)
            self._running = None
        # The template is waiting for that child's status; it reads `bye` right after.
        with contextlib.suppress(OSError):
            self._send({"bye": True})
        for fd in (self._cmd_w, self._rep_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> TemplateServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
