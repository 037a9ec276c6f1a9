"""A git repository of two revisions for the A/B tests: B does the same work twice over."""

from __future__ import annotations

import subprocess
from pathlib import Path

WORK = """
def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
"""
BENCH = """
from work import work

def test_work(edge_benchmark):
    edge_benchmark.throughput(work, {loops}, items=1, unit="calls")
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(tmp_path: Path) -> Path:
    """A git repository whose revision B (tag B) does the same work as A (tag A) twice."""
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "ab@example.invalid")
    git(root, "config", "user.name", "ab")
    (root / "work.py").write_text(WORK)
    (root / "tests" / "test_work.py").write_text(BENCH.format(loops=20000))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "A")
    git(root, "tag", "A")
    (root / "tests" / "test_work.py").write_text(BENCH.format(loops=40000))
    git(root, "commit", "-qam", "B")
    git(root, "tag", "B")
    return root
