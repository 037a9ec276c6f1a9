"""Measure the regression detector's quality bars on this machine (issue 9); prints a report.

Run: ``.venv/bin/python -m tests.benchmarks.quality_bars [--only NAME] [--out FILE]``.
Every run is a fresh pytest process in a scratch project, timed by pytest-benchmark with its
default timer and pytest-edge's default rounds and p; nothing is simulated.

Bars:
- two-runs: a 25% slowdown of a CPU-bound function is flagged in 5 of 5 trials, and re-running
  unchanged code is flagged in 0 of 5 (``--edge-fail-on-regression=10%`` against the last run);
- history-fsync: an unchanged fsync-bound benchmark (4 KiB write + fsync + os.replace) against
  a 3-run history is flagged in at most 1 of 8 re-runs;
- history-cpu: a 30% slowdown of a CPU-bound benchmark against a 3-run history, 5 of 5;
- ab: ``pytest-edge ab`` flags a revision that also writes and fsyncs a backup copy on each
  save 5 of 5, and two identical revisions 0 of 5.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU = """
LOOPS = {loops}

def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def test_cpu(edge_benchmark):
    edge_benchmark.throughput(work, LOOPS, items=1, unit="calls")
"""
FSYNC = """
import os

def save(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

def test_fsync(edge_benchmark, tmp_path):
    edge_benchmark.throughput(save, str(tmp_path / "s.bin"), b"x" * 4096, items=1, unit="saves")
"""
STORE_A = FSYNC.split("def test_fsync")[0]
STORE_B = """
import os

def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

def save(path, data):
    _write(path, data)
    _write(path + ".bak", data)  # the backup copy
"""
STORE_TEST = """
from store import save

def test_save(edge_benchmark, tmp_path):
    edge_benchmark.throughput(save, str(tmp_path / "s.bin"), b"x" * 4096, items=1, unit="saves")
"""
BASE = ["-p", "no:xdist", "-p", "no:cacheprovider", "-q"]


def pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *BASE, *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def verdict_line(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("test_", "tests/")) and (
            "same" in line or "slower" in line or "faster" in line or "inconclusive" in line
        ):
            return " ".join(line.split())
    return "(no verdict line)"


def fresh(root: Path, name: str, source: str) -> Path:
    project = root / name
    project.mkdir()
    (project / "test_bench.py").write_text(source)
    return project


def two_runs(root: Path, log: list[str]) -> dict[str, object]:
    flagged_slow, flagged_same = 0, 0
    for trial in range(5):
        for kind, loops_after in (("slow25", 25000), ("unchanged", 20000)):
            project = fresh(root, f"two-{kind}-{trial}", CPU.format(loops=20000))
            pytest(project, "--benchmark-autosave")
            (project / "test_bench.py").write_text(CPU.format(loops=loops_after))
            done = pytest(project, "--edge-fail-on-regression=10%")
            flagged = done.returncode == 1
            if kind == "slow25":
                flagged_slow += flagged
            else:
                flagged_same += flagged
            log.append(
                f"two-runs {kind} trial {trial + 1}: exit {done.returncode}; "
                f"{verdict_line(done.stdout)}"
            )
    return {"25% slowdown flagged": f"{flagged_slow}/5", "unchanged flagged": f"{flagged_same}/5"}


def history(root: Path, log: list[str], name: str, source: str, after: str, reruns: int) -> str:
    project = fresh(root, name, source)
    for _ in range(3):
        pytest(project, "--benchmark-autosave")
    (project / "test_bench.py").write_text(after)
    flagged = 0
    for i in range(reruns):
        done = pytest(
            project,
            "--edge-compare=history",
            "--edge-history-runs=3",
            "--edge-fail-on-regression=10%",
        )
        flagged += done.returncode == 1
        log.append(f"{name} re-run {i + 1}: exit {done.returncode}; {verdict_line(done.stdout)}")
    return f"{flagged}/{reruns}"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def ab(root: Path, log: list[str], extra: list[str]) -> dict[str, object]:
    repo = root / "ab-repo"
    (repo / "tests").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bars@example.invalid")
    git(repo, "config", "user.name", "bars")
    (repo / "store.py").write_text(STORE_A)
    (repo / "tests" / "test_store.py").write_text(STORE_TEST)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "A")
    git(repo, "tag", "A")
    (repo / "store.py").write_text(STORE_A + "\n# same code, another revision\n")
    git(repo, "commit", "-qam", "A2")
    git(repo, "tag", "A2")
    (repo / "store.py").write_text(STORE_B)
    git(repo, "commit", "-qam", "B")
    git(repo, "tag", "B")
    results: dict[str, object] = {}
    for label, (rev_a, rev_b), want in (
        ("backup copy", ("A", "B"), 1),
        ("identical", ("A", "A2"), 0),
    ):
        flagged = 0
        for trial in range(5):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest_edge.cli",
                    "ab",
                    rev_a,
                    rev_b,
                    *extra,
                    "--",
                    "tests",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
                check=False,
            )
            flagged += done.returncode == 1
            log.append(
                f"ab {label} trial {trial + 1}: exit {done.returncode}; {verdict_line(done.stdout)}"
            )
            if done.returncode == 2:
                log.append(done.stderr[-2000:])
        results[f"{label} flagged"] = f"{flagged}/5"
        del want
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["two-runs", "history-fsync", "history-cpu", "ab"])
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--ab-args", default="", help="extra pytest-edge ab options, e.g. '--runs 8'"
    )
    args = parser.parse_args()
    log: list[str] = []
    summary: dict[str, object] = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="pytest-edge-bars-") as tmp:
        root = Path(tmp)
        if args.only in (None, "two-runs"):
            summary["two-runs"] = two_runs(root, log)
        if args.only in (None, "history-fsync"):
            summary["history-fsync unchanged flagged"] = history(
                root, log, "history-fsync", FSYNC, FSYNC, reruns=8
            )
        if args.only in (None, "history-cpu"):
            summary["history-cpu 30% slowdown flagged"] = history(
                root, log, "history-cpu", CPU.format(loops=20000), CPU.format(loops=26000), 5
            )
        if args.only in (None, "ab"):
            summary["ab"] = ab(root, log, args.ab_args.split())
        summary["ab options"] = args.ab_args or "(defaults)"
    summary["minutes"] = round((time.time() - started) / 60, 1)
    text = "\n".join(log) + "\n\n" + json.dumps(summary, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
