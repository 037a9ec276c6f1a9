"""`pytest-edge ab` killed mid-run: its benchmark run ends with it, its worktrees go.

SIGTERM or Ctrl-C: ab unwinds (the run killed, worktrees removed) and exits 128 + signal.
SIGKILL: nothing in ab runs, the run dies by its parent-death signal, and the next ab run
removes the worktrees.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from pytest_edge.cli import main
from tests.bench.ab_repo import git, repo_of
from tests.processes import READY_TIMEOUT, descendants, seconds_until_gone, start, stop, wait_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal and /proc are Linux's"
)

BLOCKING_TEST = """
import os, select

def test_blocks(benchmark):  # a benchmark: ab runs only those
    ready = os.path.join(os.environ["LIFETIME_READY"], "ready")
    open(ready + ".tmp", "w").close()
    os.replace(ready + ".tmp", ready)
    select.select([], [], [])
"""
AB = "import sys; from pytest_edge.cli import main; sys.exit(main(sys.argv[1:]))"


def blocking_repo(tmp_path: Path) -> Path:
    """A repository with revisions A and B whose one test blocks for good once it started."""
    return repo_of(tmp_path, {"tests/test_block.py": BLOCKING_TEST}, {})


def worktrees(repo: Path) -> list[str]:
    return git(repo, "worktree", "list").splitlines()


def roots(pid: int) -> list[str]:
    """The temporary roots of the ab run with *pid*."""
    return glob.glob(os.path.join(tempfile.gettempdir(), f"pytest-edge-ab-{pid}-*"))


@contextmanager
def blocked_ab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sides: tuple[str, ...] = ("A", "B")
) -> Iterator[tuple[Path, subprocess.Popen[bytes], list[psutil.Process]]]:
    """`pytest-edge ab A B` with its first run blocked; yields the repo, ab, its descendants."""
    repo = blocking_repo(tmp_path)
    monkeypatch.setenv("LIFETIME_READY", str(tmp_path))
    proc = start([sys.executable, "-c", AB, "ab", *sides, "--runs", "2"], repo)
    processes: list[psutil.Process] = []
    try:
        wait_for((tmp_path / "ready").exists, READY_TIMEOUT, "the first benchmark run", repo)
        processes = descendants(proc.pid)
        assert len(processes) == 1, processes  # the pytest run (the tie exec'd into it)
        assert len(worktrees(repo)) == 3
        yield repo, proc, processes
    finally:
        stop(proc, processes)


@pytest.mark.parametrize("sides", [("A", "B"), ("A",)], ids=["two-revisions", "working-tree"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_ctrl_c_mid_run_ends_the_run_and_removes_the_worktrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, sides: tuple[str, ...]
) -> None:
    with blocked_ab(tmp_path, monkeypatch, sides) as (repo, proc, processes):
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 128 + sig
        assert seconds_until_gone(processes) < 2.0
        assert len(worktrees(repo)) == 1
        assert roots(proc.pid) == []
        assert f"stopped by {sig.name}; its worktrees are removed" in (repo / "run.out").read_text()
        assert git(repo, "status", "--porcelain") == "?? run.out"  # the working tree as it was


def test_sigkill_mid_run_ends_the_run_and_the_next_run_removes_the_worktrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with blocked_ab(tmp_path, monkeypatch) as (repo, proc, processes):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert seconds_until_gone(processes) < 2.0
        assert len(worktrees(repo)) == 3  # nothing in ab ran: left for the next run
        assert len(roots(proc.pid)) == 1
        # The next run (failing fast: no test matches) sweeps the dead run's worktrees first.
        monkeypatch.chdir(repo)
        assert main(["ab", "A", "B", "--runs", "2", "--", "-k", "no_such_test"]) == 2
        assert "no benchmark selected" in capsys.readouterr().err
        assert len(worktrees(repo)) == 1
        assert roots(proc.pid) == []
