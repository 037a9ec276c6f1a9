"""A/B runs: a revision against the working tree (or another revision), interleaved, paired.

Two single runs cannot tell run-to-run drift from a change. `run_ab` checks out both sides in
temporary git worktrees (the working tree as a snapshot commit of everything uncommitted, made
with a temporary index, so your index and branch do not move) and runs their benchmarks
alternately (A B, B A, A B, ...), each run a fresh pytest process, so slow drift of the machine
hits both sides alike; each round gives one ratio of the two runs' fastest times (by default).

By default the rounds stop as soon as the answer is clear (`pytest_edge.bench.sequential`:
repeated confidence intervals, at most ``max_rounds``), with a short time budget per process:
the drift is between processes, so more short processes beat a few long ones (as pyperf
does). ``runs=N`` is the older fixed design: N rounds, one paired t test at the end.
With ``metric="instructions"`` (or a benchmark marked ``edge_instructions``) the verdict of a
benchmark is its callgrind instruction count, with the wall-time verdict beside it.

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
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_edge.bench.compare import (
    BenchmarkComparison,
    Comparison,
    Distribution,
    unit_and_items,
    verdict_of,
)
from pytest_edge.bench.data import BadBenchmarkInput, BenchmarkResult, BenchmarkRun, load_run
from pytest_edge.bench.sequential import (
    DEFAULT_ALPHA,
    MAX_ROUNDS,
    MIN_ROUNDS,
    Decision,
    SequentialPlan,
    decide,
)
from pytest_edge.bench.stats import RatioEstimate, paired_log_ratio
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
AB_RUNS = 5  # rounds of the fixed design (``runs=``)
# pytest-benchmark's time budget per benchmark in each process of a sequential run, unless the
# pytest arguments set one: short processes, more of them.
SHORT_MAX_TIME = "0.1"
WORKING_TREE = "working tree"
METRICS = ("time", "instructions")
INSTRUCTIONS_ENV = "PYTEST_EDGE_INSTRUCTIONS"  # read by --edge-instructions in the runs
INSTRUCTIONS_LABEL = "instructions (deterministic)"


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


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    # git from PATH, as the user's shell finds it; an argument list, never a shell string.
    done = subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=env,
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


def snapshot_working_tree(top: Path, scratch: Path) -> Revision:
    """Revision B: a commit of the working tree as it is now, including uncommitted changes.

    Staged, unstaged and untracked files (not ignored ones) are read into a fresh index in
    *scratch* and written as a commit on top of HEAD that no branch points to (git's garbage
    collection removes it in time); the user's index, branch and files are untouched. The
    fresh index has no stat data, so every file is read: a same-size edit made in the second
    of the last checkout is never mistaken for unchanged (a copy of the user's index was).
    """
    try:
        head = _git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except ABError:
        raise BadBenchmarkInput(f"{top}: no commit yet to compare the working tree with") from None
    env = {
        **os.environ,
        "GIT_INDEX_FILE": str(scratch / "index"),
        "GIT_AUTHOR_NAME": "pytest-edge ab",
        "GIT_AUTHOR_EMAIL": "pytest-edge-ab@localhost",
        "GIT_COMMITTER_NAME": "pytest-edge ab",
        "GIT_COMMITTER_EMAIL": "pytest-edge-ab@localhost",
    }
    _git(top, "read-tree", head, env=env)
    _git(top, "add", "--all", "--", ".", env=env)
    tree = _git(top, "write-tree", env=env)
    parent_tree = _git(top, "rev-parse", f"{head}^{{tree}}")
    sha = _git(top, "commit-tree", tree, "-p", head, "-m", "pytest-edge ab: working tree", env=env)
    changes = "HEAD + uncommitted changes" if tree != parent_tree else "= HEAD, no changes"
    return Revision("B", f"{WORKING_TREE} ({changes})", sha)


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
    env = plain_pytest_env()
    env["PYTHONPATH"] = os.pathsep.join([*paths, *([old] if old else [])])
    return env


def plain_pytest_env() -> dict[str, str]:
    """This environment without xdist's worker variables (pytest-benchmark reads them): a child
    is a plain pytest process."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}


def run_benchmark_pytest(
    python: str,
    out: Path,
    pytest_args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    runner: str,
    error: type[Exception],
    who: str = "",
    where: str = "",
) -> None:
    """One fresh pytest process running only the benchmarks of *pytest_args*, writing
    pytest-benchmark JSON to *out*.

    Nothing selected is `BadBenchmarkInput`; a failed pytest is *error*, named by *who* (before
    the message) and *where* (after it), with the end of its output.
    """
    command = [
        python,
        "-m",
        "pytest",
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        "-q",
        "--benchmark-only",
        f"--benchmark-json={out}",
        *pytest_args,
    ]
    done = subprocess.run(  # noqa: S603 - this interpreter running pytest, no shell
        tied_command(command),  # SIGKILLed if we die; on SIGTERM/Ctrl-C run() kills it
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 5 or (done.returncode == 0 and not out.is_file()):
        raise BadBenchmarkInput(
            f"no benchmark selected{where} by {' '.join(pytest_args) or 'no args'} "
            f"({runner} runs only benchmarks: tests using benchmark or edge_benchmark)"
        )
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise error(
            f"{who}pytest exited with {done.returncode}{where} ({' '.join(command[2:])}):\n{tail}"
        )


def run_once(
    checkout: Path,
    subdir: Path,
    out: Path,
    pytest_args: Sequence[str],
    python: str,
    extra_env: dict[str, str] | None = None,
) -> BenchmarkRun:
    """One fresh pytest process in ``checkout``, writing pytest-benchmark JSON to ``out``.

    Only benchmarks run (``--benchmark-only``): the other tests of the selection are skipped.
    """
    run_benchmark_pytest(
        python,
        out,
        pytest_args,
        cwd=checkout / subdir,
        env={**_env_for(checkout), **(extra_env or {})},
        runner="ab",
        error=ABError,
        where=f" in {checkout.name}",
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


def _common(a_runs: Sequence[BenchmarkRun], b_runs: Sequence[BenchmarkRun]) -> list[str]:
    """Benchmarks present in every run of both sides, in B's order."""
    names = [name for name in b_runs[0].by_name() if all(name in r.by_name() for r in b_runs)]
    return [n for n in names if all(n in r.by_name() for r in a_runs)]


def _sides(
    name: str, a_runs: Sequence[BenchmarkRun], b_runs: Sequence[BenchmarkRun]
) -> tuple[list[BenchmarkResult], list[BenchmarkResult]]:
    return [run.by_name()[name] for run in a_runs], [run.by_name()[name] for run in b_runs]


def _per_round(a_values: Sequence[float], b_values: Sequence[float], statistic: str) -> str:
    return f"per-round B/A ratios of the run {statistic}s: " + ", ".join(
        f"{vb / va:.3f}" for va, vb in zip(a_values, b_values, strict=True)
    )


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

    The fixed design (``runs=N``): one paired t test after all rounds. The table's
    baseline/current times are the median over runs of each run's ``statistic``.
    """
    common = _common(a_runs, b_runs)
    if not common:
        raise BadBenchmarkInput(f"A/B: no benchmark ran in every run of both {a} and {b}")
    results: list[BenchmarkComparison] = []
    for name in common:
        a_results, b_results = _sides(name, a_runs, b_runs)
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
                note=_per_round(a_values, b_values, statistic),
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


def decide_all(
    a_runs: Sequence[BenchmarkRun],
    b_runs: Sequence[BenchmarkRun],
    plan: SequentialPlan,
    statistic: str,
) -> dict[str, Decision]:
    """Each common benchmark's decision after the rounds so far."""
    decisions: dict[str, Decision] = {}
    for name in _common(a_runs, b_runs):
        a_results, b_results = _sides(name, a_runs, b_runs)
        decisions[name] = decide(
            [location(r, statistic) for r in a_results],
            [location(r, statistic) for r in b_results],
            plan,
        )
    return decisions


def compare_sequential(
    a_runs: Sequence[BenchmarkRun],
    b_runs: Sequence[BenchmarkRun],
    a: Revision,
    b: Revision,
    plan: SequentialPlan,
    statistic: str = "min",
) -> Comparison:
    """The verdicts of a sequential run: the last look's decision for each benchmark."""
    decisions = decide_all(a_runs, b_runs, plan, statistic)
    if not decisions:
        raise BadBenchmarkInput(f"A/B: no benchmark ran in every run of both {a} and {b}")
    rounds = len(a_runs)
    results: list[BenchmarkComparison] = []
    for name, decision in decisions.items():
        a_results, b_results = _sides(name, a_runs, b_runs)
        a_values = [location(r, statistic) for r in a_results]
        b_values = [location(r, statistic) for r in b_results]
        unit, items = unit_and_items(b_results[0])
        results.append(
            BenchmarkComparison(
                name,
                b_results[0].group,
                decision.verdict,
                _median(a_values),
                _median(b_values),
                decision.ratio,
                decision.p_value,
                f"sequential: {plan.describe()}; each run's {statistic}",
                decision.detectable_change,
                note=_per_round(a_values, b_values, statistic),
                distributions=(_pooled(f"A {a.ref}", a_results), _pooled(f"B {b.ref}", b_results)),
                unit=unit,
                items=items,
            )
        )
    clear = all(d.clear for d in decisions.values())
    ending = (
        f"stopped after {rounds} of at most {plan.max_rounds} rounds: every answer was clear"
        if clear
        else f"ran the maximum of {plan.max_rounds} rounds: "
        + ", ".join(n for n, d in decisions.items() if not d.clear)
        + " stayed inconclusive (the drift seen between rounds is larger than the change "
        "they could show; see the smallest detectable change)"
    )
    return Comparison(
        "A/B",
        str(a),
        str(b),
        plan.threshold,
        plan.level,
        tuple(results),
        notes=(
            f"{ending}. Rounds of fresh pytest processes, interleaved (A B, B A, ...) on this "
            "machine; ratios are B/A times (above 1: B slower) with each look's interval. "
            f"Each run's time is its {statistic} ({STATISTIC_WHY[statistic]}); baseline and "
            "current are the median of those over the rounds.",
        ),
    )


def instruction_counts(run: BenchmarkRun) -> dict[str, float | str]:
    """Each benchmark's instructions per call in a run, or why there is none."""
    counts: dict[str, float | str] = {}
    for name, result in run.by_name().items():
        count = result.edge.get("instructions_per_call")
        if isinstance(count, int | float) and count > 0:
            counts[name] = float(count)
        else:
            why = result.edge.get("instructions")
            counts[name] = str(why) if why else "no instruction count recorded"
    return counts


def wants_instructions(run: BenchmarkRun) -> set[str]:
    """Benchmarks whose run asked for the instruction verdict (marker or option)."""
    return {n for n, r in run.by_name().items() if r.edge.get("verdict_metric") == "instructions"}


def with_instruction_verdicts(
    comparison: Comparison,
    a_counts: dict[str, float | str],
    b_counts: dict[str, float | str],
    judged: set[str],
) -> Comparison:
    """The instruction count as the verdict of each benchmark in *judged*, wall time beside it.

    Where a side has no count (valgrind missing, code that cannot be counted) the verdict
    stays the wall-time one and the note says why, plainly.
    """
    results: list[BenchmarkComparison] = []
    notes = list(comparison.notes)
    for r in comparison.results:
        if r.fullname not in judged:
            results.append(r)
            continue
        a_count, b_count = a_counts.get(r.fullname), b_counts.get(r.fullname)
        time_text = f"wall time: {r.verdict}" + (
            f" {r.ratio.ratio:.3f}x [{r.ratio.low:.3f}, {r.ratio.high:.3f}]" if r.ratio else ""
        )
        if not isinstance(a_count, float) or not isinstance(b_count, float):
            why = a_count if not isinstance(a_count, float) else b_count
            results.append(
                replace(
                    r,
                    note=f"{INSTRUCTIONS_LABEL} not measured ({why}): the verdict is on wall "
                    f"time. {r.note}",
                )
            )
            notes.append(f"{r.fullname}: instruction counts asked for but not measured ({why})")
            continue
        ratio = b_count / a_count
        results.append(
            replace(
                r,
                verdict=verdict_of(ratio, True, comparison.threshold),
                ratio=RatioEstimate(ratio, ratio, ratio, 1.0, "instruction count ratio"),
                p_value=None,
                method=f"{INSTRUCTIONS_LABEL}: valgrind callgrind, instructions per call "
                f"A {a_count:,.0f}, B {b_count:,.0f}",
                detectable_change=comparison.threshold,
                note=f"{time_text} (beside the instruction verdict). {r.note}",
            )
        )
    if judged:
        notes.append(
            f"Verdicts labelled {INSTRUCTIONS_LABEL} compare callgrind instruction counts "
            "(the ratio column is then instructions B/A): repeatable to about 0.1% here, but "
            "blind to I/O and memory stalls. The wall-time verdict is in each note."
        )
    return replace(comparison, results=tuple(results), notes=tuple(notes))


def _process_args(pytest_args: Sequence[str], sequential: bool) -> list[str]:
    args = list(pytest_args)
    if sequential and not any(a.startswith("--benchmark-max-time") for a in args):
        args.append(f"--benchmark-max-time={SHORT_MAX_TIME}")
    return args


def run_ab(
    repo: Path,
    ref_a: str,
    ref_b: str | None,
    pytest_args: Sequence[str],
    runs: int | None = None,
    threshold: float = 0.10,
    alpha: float | None = None,
    python: str = sys.executable,
    progress: Progress | None = None,
    statistic: str = "min",
    keep: Path | None = None,
    max_rounds: int | None = None,
    min_rounds: int | None = None,
    metric: str = "time",
) -> Comparison:
    """Benchmark two sides interleaved in fresh processes and compare them round by round.

    ``ref_b=None``: the working tree, uncommitted changes included. ``runs``: a fixed number of
    rounds and one test at the end; otherwise rounds stop once every answer is clear
    (between ``min_rounds`` and ``max_rounds``). ``metric="instructions"``: the first round
    of each side also counts instructions, which become the verdict.
    ``keep``: a directory to copy each run's pytest-benchmark JSON into (A0.json, B0.json...).
    """
    sweep_stale_worktrees()  # first: even a run that fails on its input cleans up
    if statistic not in STATISTICS:
        raise BadBenchmarkInput(f"A/B: statistic {statistic!r} is not one of {STATISTICS}")
    if metric not in METRICS:
        raise BadBenchmarkInput(f"A/B: metric {metric!r} is not one of {', '.join(METRICS)}")
    if runs is not None and runs < 2:
        raise BadBenchmarkInput(f"A/B: --runs={runs}; a paired test needs at least 2")
    plan: SequentialPlan | None = None
    if runs is None:
        plan = SequentialPlan(
            threshold,
            DEFAULT_ALPHA if alpha is None else alpha,
            MIN_ROUNDS if min_rounds is None else min_rounds,
            MAX_ROUNDS if max_rounds is None else max_rounds,
        )
    top = Path(_git(repo, "rev-parse", "--show-toplevel"))
    subdir = Path(os.path.relpath(repo.resolve(), top.resolve()))
    a = resolve(top, "A", ref_a)
    a_runs: list[BenchmarkRun] = []
    b_runs: list[BenchmarkRun] = []
    root = owned_tempdir("ab")
    process_args = _process_args(pytest_args, sequential=plan is not None)
    limit = plan.max_rounds if plan is not None else runs or AB_RUNS
    with signals_unwind():
        try:
            b = resolve(top, "B", ref_b) if ref_b is not None else snapshot_working_tree(top, root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        with worktrees(top, [a, b], root) as paths:
            if progress:
                progress(f"A = {a}; B = {b}")
            out = root / "out"
            out.mkdir()
            for i in range(limit):
                order = (a, b) if i % 2 == 0 else (b, a)
                for rev in order:
                    if progress:
                        progress(f"round {i + 1}/{limit if plan is None else f'<={limit}'}: {rev}")
                    counting = metric == "instructions" and i == 0
                    result = run_once(
                        paths[rev.label],
                        subdir,
                        out / f"{rev.label}{i}.json",
                        process_args,
                        python,
                        {INSTRUCTIONS_ENV: "1"} if counting else None,
                    )
                    if not result.results:
                        raise BadBenchmarkInput(
                            f"no benchmark ran in {rev}: {' '.join(pytest_args) or '(no args)'} "
                            "selects no test using benchmark or edge_benchmark"
                        )
                    (a_runs if rev is a else b_runs).append(result)
                if plan is not None and i + 1 >= plan.min_rounds:
                    decisions = decide_all(a_runs, b_runs, plan, statistic)
                    if progress:
                        progress(
                            f"look after round {i + 1}: "
                            + "; ".join(
                                f"{n.rsplit('::', 1)[-1]} {d.ratio.ratio:.3f}x "
                                f"[{d.ratio.low:.3f}, {d.ratio.high:.3f}] "
                                + (str(d.verdict) if d.clear else "not clear yet")
                                for n, d in decisions.items()
                            )
                        )
                    if decisions and all(d.clear for d in decisions.values()):
                        break
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for file in out.glob("*.json"):
                    shutil.copy(file, keep / file.name)
    if plan is None:
        comparison = compare_pairs(
            a_runs, b_runs, a, b, threshold, AB_ALPHA if alpha is None else alpha, statistic
        )
    else:
        comparison = compare_sequential(a_runs, b_runs, a, b, plan, statistic)
    judged = wants_instructions(a_runs[0]) | wants_instructions(b_runs[0])
    if metric == "instructions":
        judged |= {r.fullname for r in comparison.results}
    if judged:
        comparison = with_instruction_verdicts(
            comparison, instruction_counts(a_runs[0]), instruction_counts(b_runs[0]), judged
        )
    return comparison
