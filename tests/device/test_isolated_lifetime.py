"""An isolated run dies with pytest: SIGTERM or SIGKILL to pytest leaves no descendant alive.

A pytest process runs a test whose isolated child blocks (and has started a subprocess that
blocks too); once every process is up, pytest is signalled and within 2 s none of its
descendants (the isolated child, its subprocess, the forkserver, the resource tracker) may be
alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.processes import seconds_until_gone

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the lifeline is tested on Linux")

BLOCKING_TEST = """
import subprocess
import sys
import threading
from pathlib import Path

import pytest

READY = Path({ready!r})


@pytest.mark.edge_isolated
@pytest.mark.edge_profile("rpi4")
def test_blocks():
    subprocess.Popen([sys.executable, "-c", "import select; select.select([], [], [])"])
    READY.write_text("up")
    threading.Event().wait()  # blocks until the process is killed
"""


def _wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode() if proc.stdout is not None else ""
            pytest.fail(f"the isolated test did not start (pytest exit {proc.poll()}):\n{out}")
        time.sleep(0.02)  # polling for a file another process writes


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_nothing_outlives_pytest(pytester: pytest.Pytester, signum: signal.Signals) -> None:
    ready = pytester.path / "ready"
    pytester.makepyfile(test_blocking=BLOCKING_TEST.format(ready=str(ready)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    descendants: list[psutil.Process] = []
    try:
        _wait_for(ready, proc, 30)
        descendants = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in descendants)
        assert "forkserver" in names
        assert "resource_tracker" in names
        assert "select" in names
        proc.send_signal(signum)
        proc.wait(timeout=5)
        # An orphan that exited but is not yet reaped (a zombie: its new parent is init, which
        # reaps when it gets to it) is gone, not alive: psutil.wait_procs counted it alive.
        seconds_until_gone(descendants)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for leftover in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        if proc.stdout is not None:
            proc.stdout.close()
