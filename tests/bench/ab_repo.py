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


def repo_of(tmp_path: Path, a: dict[str, str], b: dict[str, str]) -> Path:
    """A git repository of revision A (tag A: the files *a*), then B (tag B: *b* written over)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "ab@example.invalid")
    git(root, "config", "user.name", "ab")
    for tag, files in (("A", a), ("B", b)):
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        git(root, "add", "-A")
        git(root, "commit", "-q", "--allow-empty", "-m", tag)
        git(root, "tag", tag)
    return root


def make_repo(tmp_path: Path) -> Path:
    """A git repository whose revision B (tag B) does the same work as A (tag A) twice."""
    a = {"work.py": WORK, "tests/test_work.py": BENCH.format(loops=20000)}
    return repo_of(tmp_path, a, {"tests/test_work.py": BENCH.format(loops=40000)})
