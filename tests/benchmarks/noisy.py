"""The noisy shared runner, reproduced: a busy core, workloads, and fresh pytest processes.

Shared by the verdict proofs (`test_noisy_verdicts.py`: two-run and history modes;
`test_noisy_ab.py`: ``pytest-edge ab``). Nothing is simulated: another process really keeps
one core busy, and every run is a fresh pytest process timed by pytest-benchmark.

- `busy_core()`: a spinning child process for the duration of a ``with`` block; it is killed
  on exit (also when the block raises) and dies with this process if that is killed.
- `CPU` / `FSYNC`: a CPU-bound and an fsync-bound benchmark test module (``CPU`` is a
  template: ``CPU.format(loops=20000)``; ``loops=26000`` is a 30% slowdown).
- `Project`: a scratch project directory; `Project.pytest` runs pytest in it.
- `verdicts`: the comparison's results from an ``--edge-report=*.json`` file;
  `anchor_flagged`: whether pytest-benchmark's ``--benchmark-compare-fail`` flagged one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edge.lifetime import tied_command
from tests.benchmarks.quality_bars import CPU, FSYNC  # the same two benchmark modules

CPU_LOOPS = 20_000
SLOWER_30 = 26_000  # 1.3 x CPU_LOOPS: a 30% slowdown of the CPU-bound benchmark


def both(loops: int = CPU_LOOPS) -> str:
    """One module with both benchmarks, so that one fresh process times both (``test_cpu``
    with *loops*; ``test_fsync`` unchanged)."""
    return CPU.format(loops=loops) + FSYNC


def anchor_flagged(run: Run, name: str) -> bool:
    """pytest-benchmark's own ``--benchmark-compare-fail`` flagged the benchmark *name*."""
    return any(
        line.startswith("\t") and "has failed" in line and name in line.split(" - ")[0]
        for line in (run.stdout + run.stderr).splitlines()
    )


# Fresh process, no xdist, no cache; pytest-benchmark's defaults except a shorter budget.
BASE_ARGS = ("-p", "no:xdist", "-p", "no:cacheprovider", "-q", "--benchmark-max-time=0.25")
SPIN = "while True:\n    pass\n"


@contextmanager
def busy_core() -> Iterator[subprocess.Popen[bytes]]:
    """Keep one core busy (a spinning Python process) for the duration of the block."""
    spinner = subprocess.Popen(  # this interpreter, a fixed program, no shell
        tied_command([sys.executable, "-c", SPIN]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield spinner
    finally:
        spinner.kill()
        spinner.wait(timeout=10)


def child_env() -> dict[str, str]:
    """This environment without xdist's worker variables (pytest-benchmark reads them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Project:
    """A scratch pytest project with one benchmark module, ``test_bench.py``."""

    path: Path

    @classmethod
    def make(cls, root: Path, name: str, source: str) -> Project:
        path = root / name
        path.mkdir(parents=True)
        project = cls(path)
        project.write(source)
        return project

    def write(self, source: str) -> None:
        (self.path / "test_bench.py").write_text(source)

    def pytest(self, *args: str, timeout: float = 300) -> Run:
        """A fresh pytest process in the project; its exit status and output."""
        done = subprocess.run(  # this interpreter running pytest, no shell
            tied_command([sys.executable, "-m", "pytest", *BASE_ARGS, *args]),
            cwd=self.path,
            env=child_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def cli(self, *args: str, timeout: float = 120) -> Run:
        """``pytest-edge ARGS`` in the project."""
        done = subprocess.run(  # this interpreter, our CLI, no shell
            tied_command([sys.executable, "-m", "pytest_edge.cli", *args]),
            cwd=self.path,
            env=child_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr)


def verdicts(report: Path) -> list[Mapping[str, Any]]:
    """The comparison's per-benchmark results in an edge report written as JSON."""
    document = json.loads(report.read_text())
    for section in document["sections"]:
        if section["key"] == "benchmarks":
            comparison = section["data"]["comparison"]
            return list(comparison["results"]) if comparison else []
    return []
