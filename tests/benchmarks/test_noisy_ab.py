"""The ``ab`` rows of the noisy-runner proof (issue 13): `pytest-edge ab` on a busy machine.

Another process keeps one core busy (`noisy.busy_core`) while ``ab`` compares the working tree
of a scratch git repository with its base commit, each side in fresh pytest processes:

- unchanged code, 8 tries: no regression flagged (CPU-bound and fsync-bound benchmarks);
- a 30% slowdown of the CPU-bound benchmark: flagged 5 times out of 5;
- a 10% slowdown: flagged 5/5 by the instruction counts (threshold 5%), wall time beside;
- the clear 30% case on the working tree, sequential, against the fixed 5-round run of two
  commits (what ``ab`` did before): the time of both, measured in one test.

Each test prints its figures (run with ``-s``); they are slow: ``--run-slow``.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from pytest_edge.bench.ab import run_ab
from pytest_edge.bench.compare import Comparison, Verdict
from tests.bench.ab_repo import git
from tests.benchmarks.noisy import CPU, CPU_LOOPS, FSYNC, SLOWER_30, busy_core

pytestmark = [pytest.mark.slow, pytest.mark.timing]

# The plugins these benchmarks do not use stay out of every fresh process (start-up time).
ARGS = ["-p", "no:faker", "-p", "no:hypothesispytest", "-p", "no:timeout"]
SLOWER_10 = 22_000  # 1.1 x CPU_LOOPS


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose commit A holds the CPU- and fsync-bound benchmarks."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "ab@example.invalid")
    git(root, "config", "user.name", "ab")
    (root / "test_cpu.py").write_text(CPU.format(loops=CPU_LOOPS))
    (root / "test_fsync.py").write_text(FSYNC)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "A")
    git(root, "tag", "A")
    return root


def cpu_loops(repo: Path, loops: int) -> None:
    """Change the working tree only: the CPU benchmark does *loops* iterations."""
    (repo / "test_cpu.py").write_text(CPU.format(loops=loops))


def verdicts(comparison: Comparison) -> dict[str, Verdict]:
    return {r.fullname.rsplit("::", 1)[-1]: r.verdict for r in comparison.results}


def rounds_of(comparison: Comparison) -> int:
    """The rounds the comparison took: each result's note lists one ratio per round."""
    return comparison.results[0].note.count(",") + 1


def test_unchanged_code_is_never_flagged(repo: Path) -> None:
    tally: dict[str, Counter[str]] = {"test_cpu": Counter(), "test_fsync": Counter()}
    used: list[int] = []
    with busy_core():
        for _ in range(8):
            comparison = run_ab(repo, "A", None, ARGS)
            for name, verdict in verdicts(comparison).items():
                tally[name][str(verdict)] += 1
            used.append(rounds_of(comparison))
            print(f"\ntry {len(used)}: {verdicts(comparison)}, {used[-1]} rounds", flush=True)
    print(f"\nab, unchanged code, 8 tries, busy core: {dict(tally)}; rounds per try {used}")
    for name, counts in tally.items():
        assert counts[str(Verdict.SLOWER)] == 0, (name, counts)
        assert sum(counts.values()) == 8


def test_a_30_percent_cpu_slowdown_is_flagged_every_time(repo: Path) -> None:
    cpu_loops(repo, SLOWER_30)
    found: list[str] = []
    used: list[int] = []
    with busy_core():
        for _ in range(5):
            comparison = run_ab(repo, "A", None, [*ARGS, "-k", "cpu"])
            found.append(str(verdicts(comparison)["test_cpu"]))
            used.append(rounds_of(comparison))
            print(f"\ntry {len(used)}: {found[-1]}, {used[-1]} rounds", flush=True)
    print(f"\nab, 30% slower CPU-bound, 5 tries, busy core: {found}; rounds per try {used}")
    assert found == [str(Verdict.SLOWER)] * 5


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_10_percent_slowdown_is_flagged_every_time_by_instruction_counts(repo: Path) -> None:
    cpu_loops(repo, SLOWER_10)
    found: list[str] = []
    beside: list[str] = []
    with busy_core():
        for _ in range(5):
            comparison = run_ab(
                repo,
                "A",
                None,
                [*ARGS, "-k", "cpu"],
                threshold=0.05,
                metric="instructions",
                min_rounds=3,
                max_rounds=3,
            )
            (result,) = comparison.results
            assert result.method.startswith("instructions (deterministic)")
            assert result.ratio is not None
            found.append(f"{result.verdict} {result.ratio.ratio:.3f}")
            beside.append(result.note.split(" (beside")[0])
    print(f"\nab --metric instructions, 10% slower, threshold 5%, busy core: {found}")
    print(f"wall time beside them (3 rounds each): {beside}")
    assert all(text.startswith(str(Verdict.SLOWER)) for text in found)


def test_the_working_tree_run_takes_less_than_half_the_fixed_round_run(repo: Path) -> None:
    cpu_loops(repo, SLOWER_30)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "B")
    git(repo, "tag", "B")
    git(repo, "checkout", "-q", "A")
    cpu_loops(repo, SLOWER_30)  # the same change, uncommitted
    selection = [*ARGS, "-k", "cpu"]
    with busy_core():
        start = time.monotonic()
        fixed = run_ab(repo, "A", "B", selection, runs=5)  # what `ab A B` did before
        fixed_s = time.monotonic() - start
        start = time.monotonic()
        sequential = run_ab(repo, "A", None, selection)
        sequential_s = time.monotonic() - start
    print(
        f"\nclear 30% case, busy core: fixed 5 rounds {fixed_s:.1f} s "
        f"({verdicts(fixed)['test_cpu']}); working tree, sequential {sequential_s:.1f} s "
        f"({verdicts(sequential)['test_cpu']}, {rounds_of(sequential)} rounds); "
        f"ratio {sequential_s / fixed_s:.2f}"
    )
    assert verdicts(sequential)["test_cpu"] is Verdict.SLOWER
    assert sequential_s < 0.5 * fixed_s
