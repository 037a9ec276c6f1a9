"""The crash harness's processes and directories do not outlive pytest, however it ends.

Each test runs pytest in a subprocess on a test whose crash workload starts a helper process,
writes, then blocks for good (it never reaches its kill point), kills that pytest while the
cycle runs, and checks that within 2 s no process of the run is alive and that no work
directory of it is left once the next run has swept.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from pytest_edge.crash.harness import _default_workroot
from tests.processes import (
    READY_TIMEOUT,
    clean_env,
    descendants,
    kill_all,
    seconds_until_gone,
    start,
    stop,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal and /proc are Linux's"
)

BLOCKER = '''
import os, select, subprocess, sys

def blocks(state_dir):
    """Start a helper (in this child's process group), write, say so, then block for good."""
    subprocess.Popen([sys.executable, "-c", "import select; select.select([], [], [])"])
    with open(os.path.join(state_dir, "data"), "w") as f:
        f.write("x" * 4096)
    ready = os.path.join(os.environ["LIFETIME_READY"], "ready")
    open(ready + ".tmp", "w").close()
    os.replace(ready + ".tmp", ready)
    select.select([], [], [])

def recover(state_dir):
    return {}

def returns(state_dir):
    pass
'''
TEST = """
from blocker import blocks, recover
from pytest_edge.crash import CrashHarness

def test_cycle(tmp_path):
    CrashHarness(seed=1).run(
        blocks, recover, state_dir=tmp_path, cycles=1, kill="acks:1", timeout=600
    )
"""
# The session is made in a thread that ends first: the kernel sends the template its
# parent-death signal when that *thread* ends (pytest alive), which it must ignore.
TEST_FROM_A_THREAD = """
import threading
from blocker import blocks, recover
from pytest_edge.crash.harness import CrashSession

def test_cycle(tmp_path):
    made = []
    maker = threading.Thread(
        target=lambda: made.append(CrashSession(blocks, recover, state_dir=tmp_path, seed=1,
                                                timeout=600))
    )
    maker.start()
    maker.join()
    with made[0] as session:
        session.cycle("acks:1")
"""
NEXT_RUN = """
from blocker import recover, returns
from pytest_edge.crash import CrashHarness

def test_quick(tmp_path):
    assert not CrashHarness(seed=1).run(returns, recover, state_dir=tmp_path, cycles=1).failures
"""
WORKROOT = _default_workroot() or "/tmp"


def workdirs(pid: int) -> list[str]:
    """The crash work directories of the run whose pytest had *pid*."""
    return glob.glob(os.path.join(WORKROOT, f"pytest-edge-crash-{pid}-*"))


@contextmanager
def blocked_cycle(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *pytest_args: str,
    group: bool = False,
    test: str = TEST,
) -> Iterator[tuple[subprocess.Popen[bytes], list[psutil.Process]]]:
    """pytest running a crash cycle that blocks; yields it and its descendants (then ends all)."""
    (tmp_path / "blocker.py").write_text(BLOCKER)
    (tmp_path / "test_blocked.py").write_text(test)
    monkeypatch.setenv("LIFETIME_READY", str(tmp_path))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *pytest_args]
    proc = start([*command, "test_blocked.py"], tmp_path, start_new_session=group)
    processes: list[psutil.Process] = []
    try:
        wait_for((tmp_path / "ready").exists, READY_TIMEOUT, "the workload", tmp_path)
        processes = descendants(proc.pid)
        # the template, the workload child and the helper it started
        assert len(processes) == 3, processes
        assert workdirs(proc.pid)
        yield proc, processes
    finally:
        stop(proc, processes)


# How pytest is killed: (signal, the inner test, to pytest's whole process group?)
KILLS = {
    "SIGTERM": (signal.SIGTERM, TEST, False),
    "SIGKILL": (signal.SIGKILL, TEST, False),
    # the template ignored the parent-death signal sent when the session's thread ended
    "SIGKILL-session-made-in-an-ended-thread": (signal.SIGKILL, TEST_FROM_A_THREAD, False),
    # How some CI runners cancel. The template has a process group of its own, so it outlives
    # pytest long enough to end the workload's group and remove the directory.
    "SIGKILL-to-pytests-process-group": (signal.SIGKILL, TEST, True),
}


@pytest.mark.parametrize("how", list(KILLS))
def test_killing_pytest_mid_cycle_ends_every_child_and_removes_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    sig, test, group = KILLS[how]
    with blocked_cycle(tmp_path, monkeypatch, test=test, group=group) as (proc, processes):
        assert all(p.is_running() for p in processes)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait()
        assert seconds_until_gone(processes) < 2.0
        # the template outlived pytest long enough to remove the work directory itself
        assert workdirs(proc.pid) == []


def test_a_thread_method_timeout_mid_cycle_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("-p", "timeout", "--timeout=3", "--timeout-method=thread")
    with blocked_cycle(tmp_path, monkeypatch, *args) as (proc, processes):
        proc.wait(timeout=30)  # pytest-timeout's thread ends pytest with os._exit(1)
        assert seconds_until_gone(processes) < 2.0
        assert workdirs(proc.pid) == []
        assert "Timeout" in (tmp_path / "run.out").read_text()


def test_a_directory_left_when_pytest_and_template_die_together_goes_at_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGKILL to pytest and the template at once (the OOM killer, a container stopped):
    # nothing survives to remove the directory, so the next run sweeps it.
    with blocked_cycle(tmp_path, monkeypatch) as (proc, processes):
        template, workload, _helper = processes
        # Stopped first, so neither sees the other die: pytest would remove the directory.
        proc.send_signal(signal.SIGSTOP)
        template.suspend()
        template.kill()
        proc.kill()
        proc.wait()
        # The workload is tied to the template by the parent-death signal. The helper it
        # started is not ours to reach once both are gone: blocked_cycle ends it.
        assert seconds_until_gone([template, workload]) < 2.0
        assert len(workdirs(proc.pid)) == 1
        (tmp_path / "test_next.py").write_text(NEXT_RUN)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_next.py"]
        next_run = subprocess.run(
            command, cwd=tmp_path, capture_output=True, check=False, env=clean_env()
        )
        assert next_run.returncode == 0, next_run.stdout.decode()
        assert workdirs(proc.pid) == []


def test_the_end_of_the_command_pipe_alone_ends_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The portable fallback, seen here without the parent-death signal: pytest stays alive and
    # only closes the pipe, as the kernel does when pytest dies.
    from pytest_edge.crash.harness import CrashSession

    (tmp_path / "blocker.py").write_text(BLOCKER)
    monkeypatch.setenv("LIFETIME_READY", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    processes: list[psutil.Process] = []
    with CrashSession("blocker:blocks", "blocker:recover", state_dir=tmp_path, seed=1) as session:
        server = session._server
        try:
            plan = {"kind": "none"}
            args = {"state_dir": str(tmp_path), "record": str(tmp_path / "r"), "plan": plan}
            server.spawn("workload", args)
            wait_for((tmp_path / "ready").exists, READY_TIMEOUT, "the workload", tmp_path)
            template = psutil.Process(server._proc.pid)
            processes = [template, *template.children(recursive=True)]
            assert len(processes) == 3
            os.close(server._cmd_w)
            # what close() will close and write to instead, so no reused descriptor is hit
            server._cmd_w = os.open(os.devnull, os.O_WRONLY)
            assert seconds_until_gone(processes) < 2.0
            assert not session._workdir.exists()
        finally:
            kill_all(processes)
