"""A/B runs: two git revisions benchmarked interleaved on the same machine, paired statistics.

Two single runs cannot tell run-to-run drift from a change. `run_ab` checks out both revisions
in temporary git worktrees and runs their benchmarks alternately (A B, B A, A B, ...), each run
in a fresh pytest process, so slow drift of the machine hits both sides alike; then it compares
each run's fastest round (by default) pair by pair (Student's t on log ratios). This is what a
CI job comparing a pull request with main should run.

A cancelled job leaves nothing: the runs die with this process (parent-death signal), SIGTERM
and Ctrl-C unwind through the worktrees' removal, and a SIGKILLed run's worktrees are removed
by the next run (`sweep_stale_worktrees`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_edge.bench.compare import (
    BenchmarkComparison,
    Comparison,
    Distribution,
    unit_and_items,
    verdict_of,
)
from pytest_edge.bench.data import BadBenchmarkInput, BenchmarkResult, BenchmarkRun, load_run
from pytest_edge.bench.stats import paired_log_ratio
from pytest_edge.errors import EdgeError
from pytest_edge.lifetime import (
    owned_tempdir,
    signals_unwind,
    sweep_stale,
    tied_command,
    uninterrupted,
)

# Fewer pairs than a rank test has samples, so a looser p; the threshold still applies.
AB_ALPHA = 0.01
AB_RUNS = 5


class ABError(EdgeError, RuntimeError):
    """git or a pytest run failed; the message says which and shows the output's tail."""


@dataclass(frozen=True)
class Revision:
    label: str  # "A" or "B"
    ref: str  # what the user typed
    sha: str

    def __str__(self) -> str:
        return f"{self.label} = {self.ref} ({self.sha[:10]})"


Progress = Callable[[str], None]


def _git(repo: Path, *args: str) -> str:
    # git from PATH, as the user's shell finds it; an argument list, never a shell string.
    done = subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ABError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def resolve(repo: Path, label: str, ref: str) -> Revision:
    try:
        sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except ABError:
        raise BadBenchmarkInput(f"{label}: {ref!r} is not a commit in {repo}") from None
    return Revision(label, ref, sha)


def _git_quiet(*args: str, cwd: Path | None = None) -> bool:
    """git run for clean-up: its failure is not the user's problem; True when it worked."""
    done = subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=cwd,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _unregister(root: Path) -> None:
    """Unregister the worktrees in a dead run's *root* from the repositories they belong to."""
    for checkout in root.iterdir():
        try:
            pointer = (checkout / ".git").read_text().strip()
        except OSError:
            continue
        if not pointer.startswith("gitdir:"):
            continue
        # <repository>/.git/worktrees/<name>: the worktree's admin directory
        common = Path(pointer.removeprefix("gitdir:").strip()).parent.parent
        if not _git_quiet("--git-dir", str(common), "worktree", "remove", "--force", str(checkout)):
            shutil.rmtree(checkout, ignore_errors=True)
            _git_quiet("--git-dir", str(common), "worktree", "prune")


def sweep_stale_worktrees() -> list[Path]:
    """Remove what ``ab`` runs that were killed (SIGKILL: no clean-up ran) left behind.

    Their temporary roots ``pytest-edge-ab-<pid>-*`` whose owner is gone, and the worktrees
    inside, unregistered from the repository each belongs to. Returns the roots removed.
    """
    return sweep_stale("ab", [None], _unregister, again=True)


@contextmanager
def worktrees(repo: Path, revisions: Sequence[Revision], root: Path) -> Iterator[dict[str, Path]]:
    """Detached worktrees of the revisions in *root*, removed afterwards whatever happens.

    Removal is `uninterrupted`: a SIGTERM or Ctrl-C arriving meanwhile is raised after it.
    """
    made: dict[str, Path] = {}
    try:
        for rev in revisions:
            made[rev.label] = root / rev.label  # before `add`: it may be cut short half-way
            _git(repo, "worktree", "add", "--detach", "--quiet", str(made[rev.label]), rev.sha)
        yield made
    finally:
        with uninterrupted():
            for path in made.values():
                _git_quiet("worktree", "remove", "--force", str(path), cwd=repo)
            shutil.rmtree(root, ignore_errors=True)
            _git_quiet("worktree", "prune", cwd=repo)


def _env_for(checkout: Path) -> dict[str, str]:
    """The checkout's code first on sys.path, ahead of any installed (editable) copy."""
    paths = [str(checkout)]
    if (checkout / "src").is_dir():
        paths.insert(0, str(checkout / "src"))
    old = os.environ.get("PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join([*paths, *([old] if old else [])])
    return env


def run_once(
    checkout: Path, subdir: Path, out: Path, pytest_args: Sequence[str], python: str
) -> BenchmarkRun:
    """One fresh pytest process in ``checkout``, writing pytest-benchmark JSON to ``out``."""
    command = [
        python,
        "-m",
        "pytest",
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--benchmark-json={out}",
        *pytest_args,
    ]
    done = subprocess.run(  # noqa: S603 - this interpreter running pytest, no shell
        tied_command(command),  # SIGKILLed if we die; on SIGTERM/Ctrl-C run() kills it
        cwd=checkout / subdir,
        env=_env_for(checkout),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ABError(
            f"pytest exited with {done.returncode} in {checkout.name} "
            f"({' '.join(command[2:])}):\n{tail}"
        )
    return load_run(out)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _pooled(label: str, results: Sequence[BenchmarkResult]) -> Distribution:
    values = [v for r in results for v in (r.samples or (r.median,))]
    ordered = sorted(values)
    n = len(ordered)
    return Distribution(
        label, ordered[0], ordered[n // 4], _median(ordered), ordered[(3 * n) // 4], ordered[-1], n
    )


STATISTICS = ("median", "p10", "min")
STATISTIC_WHY = {
    "min": "other processes only ever add time, so the fastest round is the least disturbed",
    "p10": "10th percentile: near the undisturbed cost, less sensitive to one lucky round",
    "median": "the typical round, including the machine's contention",
}


def location(result: BenchmarkResult, statistic: str) -> float:
    """One run's time for the paired test: its median, 10th percentile or minimum.

    Contention from other processes only ever adds time, so on a shared machine the low end
    of a run's distribution moves less than its median (e.g. fsync here is bimodal: 0.4 ms,
    or ~8 ms while another process's journal commit is pending).
    """
    if statistic == "median":
        return result.median
    if statistic == "min":
        return result.minimum
    if statistic == "p10":
        if not result.samples:
            return result.q1  # closest summary statistic without raw samples
        ordered = sorted(result.samples)
        return ordered[int(0.1 * (len(ordered) - 1))]
    raise BadBenchmarkInput(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")


def compare_pairs(
    a_runs: Sequence[BenchmarkRun],
    b_runs: Sequence[BenchmarkRun],
    a: Revision,
    b: Revision,
    threshold: float,
    alpha: float = AB_ALPHA,
    statistic: str = "min",
) -> Comparison:
    """Paired comparison of the benchmarks present in every run of both revisions.

    The table's baseline/current times are the median over runs of each run's ``statistic``.
    """
    names = [name for name in b_runs[0].by_name() if all(name in r.by_name() for r in b_runs)]
    common = [n for n in names if all(n in r.by_name() for r in a_runs)]
    if not common:
        raise BadBenchmarkInput(f"A/B: no benchmark ran in every run of both {a} and {b}")
    results: list[BenchmarkComparison] = []
    for name in common:
        a_results = [run.by_name()[name] for run in a_runs]
        b_results = [run.by_name()[name] for run in b_runs]
        a_values = [location(r, statistic) for r in a_results]
        b_values = [location(r, statistic) for r in b_results]
        test = paired_log_ratio(a_values, b_values, alpha)
        unit, items = unit_and_items(b_results[0])
        results.append(
            BenchmarkComparison(
                name,
                b_results[0].group,
                verdict_of(test.ratio.ratio, test.p_value < alpha, threshold),
                _median(a_values),
                _median(b_values),
                test.ratio,
                test.p_value,
                f"paired t on log ratios of each run's {statistic}, {test.pairs} interleaved "
                f"run pairs, p < {alpha:g}",
                max(test.detectable_change, threshold),
                note=f"per-pair B/A ratios of the run {statistic}s: "
                + ", ".join(f"{vb / va:.3f}" for va, vb in zip(a_values, b_values, strict=True)),
                distributions=(_pooled(f"A {a.ref}", a_results), _pooled(f"B {b.ref}", b_results)),
                unit=unit,
                items=items,
            )
        )
    return Comparison(
        "A/B",
        str(a),
        str(b),
        threshold,
        alpha,
        tuple(results),
        notes=(
            f"{len(a_runs)} pairs of fresh pytest processes, interleaved "
            "(A B, B A, ...) on this machine; ratios are B/A times (above 1: B slower). "
            f"Each run's time is its {statistic} ({STATISTIC_WHY[statistic]}); baseline and "
            "current are the median of those over the runs.",
        ),
    )


def run_ab(
    repo: Path,
    ref_a: str,
    ref_b: str,
    pytest_args: Sequence[str],
    runs: int = AB_RUNS,
    threshold: float = 0.10,
    alpha: float = AB_ALPHA,
    python: str = sys.executable,
    progress: Progress | None = None,
    statistic: str = "min",
    keep: Path | None = None,
) -> Comparison:
    """Benchmark two revisions interleaved in fresh processes and compare them pair by pair.

    ``keep``: a directory to copy each run's pytest-benchmark JSON into (A0.json, B0.json...).
    """
    sweep_stale_worktrees()  # first: even a run that fails on its input cleans up
    if statistic not in STATISTICS:
        raise BadBenchmarkInput(f"A/B: statistic {statistic!r} is not one of {STATISTICS}")
    if runs < 2:
        raise BadBenchmarkInput(f"A/B: --runs={runs}; a paired test needs at least 2")
    top = Path(_git(repo, "rev-parse", "--show-toplevel"))
    subdir = Path(os.path.relpath(repo.resolve(), top.resolve()))
    a, b = resolve(top, "A", ref_a), resolve(top, "B", ref_b)
    a_runs: list[BenchmarkRun] = []
    b_runs: list[BenchmarkRun] = []
    root = owned_tempdir("ab")
    with signals_unwind(), worktrees(top, [a, b], root) as paths:
        out = root / "out"
        out.mkdir()
        for i in range(runs):
            order = (a, b) if i % 2 == 0 else (b, a)
            for rev in order:
                if progress:
                    progress(f"pair {i + 1}/{runs}: {rev}")
                result = run_once(
                    paths[rev.label],
                    subdir,
                    out / f"{rev.label}{i}.json",
                    pytest_args,
                    python,
                )
                (a_runs if rev is a else b_runs).append(result)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for file in out.glob("*.json"):
                shutil.copy(file, keep / file.name)
    return compare_pairs(a_runs, b_runs, a, b, threshold, alpha, statistic)
