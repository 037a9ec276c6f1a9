"""pytest_edge.lifetime: tied children, signals that unwind, and the stale-entry sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from pytest_edge.lifetime import (
    Terminated,
    owned_tempdir,
    signals_unwind,
    stale_entries,
    sweep_stale,
    tied_command,
    uninterrupted,
)
from tests.processes import descendants, kill_all, seconds_until_gone, start, stop, wait_for

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
BLOCK = [sys.executable, "-c", "import select; select.select([], [], [])"]
# A parent that starts a tied child, says so, and blocks.
PARENT = f"""
import subprocess, sys
from pytest_edge.lifetime import tied_command
child = subprocess.Popen(tied_command({BLOCK!r}))
print(child.pid, flush=True)
sys.stdin.read()
"""


@linux
def test_a_tied_child_dies_with_its_parent(tmp_path: Path) -> None:
    parent = start([sys.executable, "-c", PARENT], tmp_path, stdin=subprocess.PIPE)
    processes: list[psutil.Process] = []
    try:
        wait_for(lambda: (tmp_path / "run.out").read_text().strip() != "", 10, "child", tmp_path)
        processes = descendants(parent.pid)
        (child,) = processes
        assert child.cmdline()[-1] == BLOCK[-1]  # the tie exec'd into the command
        parent.kill()
        parent.wait()
        assert seconds_until_gone(processes) < 2.0
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        stop(parent, processes)


@linux
def test_tied_when_the_parent_is_already_gone_it_gets_the_signal_at_once() -> None:
    code = "import os; from pytest_edge.lifetime import tie_to_parent; tie_to_parent(-1)"
    done = subprocess.run([sys.executable, "-c", code], check=False, timeout=30)
    assert done.returncode == -signal.SIGKILL


def test_tied_command_runs_the_command_found_on_path() -> None:
    # a bare name, found on PATH (run_ab's python= may be one)
    command = tied_command(["sh", "-c", "echo hi; exit 3"])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (3, "hi\n")


def _signal_self(*signals: int) -> list[str]:
    """Send *signals* to this process inside `signals_unwind` (the first inside clean-up)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    steps = []
    with signals_unwind():
        with uninterrupted():
            for signum in signals:
                os.kill(os.getpid(), signum)  # a handler runs before the next line
            steps.append("clean-up")
        steps.append("not reached")
    return steps


def test_sigterm_inside_signals_unwind_raises_terminated_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as raised:
        _signal_self(signal.SIGTERM)
    assert (raised.value.code, raised.value.signum) == (143, signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_during_uninterrupted_clean_up_is_raised_after_it() -> None:
    # the second signal is ignored; clean-up ends before KeyboardInterrupt is raised
    with pytest.raises(KeyboardInterrupt) as raised:
        _signal_self(signal.SIGINT, signal.SIGTERM)
    assert raised.traceback[-1].name == "uninterrupted"


def _finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_only_our_entries_whose_owner_is_gone(tmp_path: Path) -> None:
    dead = _finished_pid()
    live = subprocess.Popen(BLOCK)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: psutil.Process(zombie.pid).status() == "zombie", 10, "zombie", tmp_path)
        made = {}
        for name in (
            f"pytest-edge-t-{dead}-abc",  # owner gone: stale
            f"pytest-edge-t-{zombie.pid}-abc",  # owner ended, not yet reaped: stale
            f"pytest-edge-t-{live.pid}-old",  # pid now used by a process started later: stale
            f"pytest-edge-t-{live.pid}-new",  # owner alive: kept
            f"pytest-edge-t-{os.getpid()}-abc",  # ours: kept
            f"pytest-edge-other-{dead}-abc",  # another kind: kept
            f"pytest-edge-t-{dead}-ABC",  # not a name we make: kept
            f"someone-else-{dead}-abc",
        ):
            made[name] = tmp_path / name
            made[name].mkdir()
        hour_ago = time.time() - 3600
        os.utime(made[f"pytest-edge-t-{live.pid}-old"], (hour_ago, hour_ago))
        (tmp_path / f"pytest-edge-t-{dead}-file").write_text("a file, not a directory: kept")
        (tmp_path / f"pytest-edge-t-{dead}-link").symlink_to(made[f"someone-else-{dead}-abc"])
        stale = {f"pytest-edge-t-{dead}-abc", f"pytest-edge-t-{zombie.pid}-abc"}
        stale.add(f"pytest-edge-t-{live.pid}-old")
        assert {p.name for p in stale_entries("t", tmp_path)} == stale
        seen: list[Path] = []
        removed = sweep_stale("t", [tmp_path], seen.append)
        assert {p.name for p in removed} == {p.name for p in seen} == stale
        left = {p.name for p in tmp_path.iterdir()}
        assert left == set(made) - stale | {
            f"pytest-edge-t-{dead}-file",
            f"pytest-edge-t-{dead}-link",
        }
    finally:
        kill_all([psutil.Process(live.pid)])
        live.wait()
        zombie.wait()


def test_each_place_is_swept_once_per_process_unless_asked_again(tmp_path: Path) -> None:
    place = tmp_path / "place"
    place.mkdir()
    assert sweep_stale("t", [place]) == []
    (place / f"pytest-edge-t-{_finished_pid()}-abc").mkdir()
    assert sweep_stale("t", [place]) == []
    assert len(sweep_stale("t", [place], again=True)) == 1


def test_owned_tempdir_names_the_owner(tmp_path: Path) -> None:
    made = owned_tempdir("t", tmp_path)
    assert made.name.startswith(f"pytest-edge-t-{os.getpid()}-")
    assert stale_entries("t", tmp_path) == []
