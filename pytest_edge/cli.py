"""The ``pytest-edge`` command: look at the machine, the device catalog and benchmark results."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_edge.errors import EdgeInputError
from pytest_edge.machine import current_machine
from pytest_edge.seed import parse_seed

if TYPE_CHECKING:
    from pytest_edge.bench.compare import Comparison

THRESHOLD_HELP = "regression threshold: '10%%' or '0.10' (default 10%%)"

Command = Callable[[argparse.Namespace], int]


def _machine(args: argparse.Namespace) -> int:
    machine = current_machine()
    memory = machine.memory()
    accel = machine.accelerator()
    freqs = machine.cpu_max_freq_mhz()
    print(f"machine:   {machine.name}{' (simulated)' if machine.simulated else ''}")
    print(
        f"memory:    {memory.total_mb:.0f} MB total, "
        f"{memory.available_mb:.0f} MB available (bounded by {memory.bounded_by})"
    )
    print(f"cpus:      {machine.cpu_count()} logical, {len(machine.usable_cpus())} usable")
    if freqs:
        print(
            f"max freq:  {', '.join(f'cpu{c}={mhz:.0f} MHz' for c, mhz in sorted(freqs.items()))}"
        )
    print(f"gpu:       {_tristate(accel.gpu)}, uma: {_tristate(accel.uma)} ({accel.evidence})")
    return 0


def _tristate(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _threshold_arg(text: str) -> float:
    from pytest_edge.bench.compare import threshold_type

    return threshold_type(text)


def _fail(command: str, message: str) -> int:
    print(f"pytest-edge {command}: error: {message}", file=sys.stderr)
    return 2


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_edge.bench.compare import compare_history, compare_runs
    from pytest_edge.bench.data import BadBenchmarkInput, history_files, load_history, load_run

    files: list[str] = args.files
    expected = 1 if args.history else 2
    if len(files) != expected:
        shape = "--history DIR CURRENT" if args.history else "BASELINE CURRENT"
        return _fail("compare", f"expected {shape}, got {len(files)} file(s): {' '.join(files)}")
    if args.runs < 1:
        return _fail("compare", f"--runs={args.runs}: must be 1 or more")
    try:
        fmt = _output_format(args)
        current = load_run(files[-1])
        inputs = [Path(f) for f in files]
        if args.history:
            current_path = Path(files[-1]).resolve()
            paths = [p for p in history_files(args.history) if p.resolve() != current_path]
            if not paths:
                raise BadBenchmarkInput(f"{args.history}: no earlier runs besides {files[-1]}")
            inputs += paths
            comparison = compare_history(
                load_history(paths, args.runs), current, args.threshold, statistic=args.statistic
            )
        else:
            comparison = compare_runs(
                load_run(files[0]), current, args.threshold, statistic=args.statistic
            )
        _check_output(args.output, inputs)
    except ValueError as error:  # BadBenchmarkInput, or an --output extension of no format
        return _fail("compare", str(error))
    code = _emit("compare", comparison, args, fmt)
    return code if code == 2 else comparison.exit_status(args.fail_on_inconclusive)


def _check_output(output: str | None, inputs: Sequence[object]) -> None:
    """--output must not be one of the files read: a report never replaces benchmark data."""
    from pathlib import Path

    from pytest_edge.bench.data import BadBenchmarkInput

    if output is None:
        return
    target = Path(output).resolve()
    for source in inputs:
        if Path(str(source)).resolve() == target:
            raise BadBenchmarkInput(
                f"--output {output} is one of the input files ({source}): it would be "
                "overwritten; write the report elsewhere"
            )


def _output_format(args: argparse.Namespace) -> str:
    """--format, else the format --output's extension names, else text (ValueError: none)."""
    from pytest_edge.report.write import format_for_path

    fmt: str = args.format or (format_for_path(args.output) if args.output else "text")
    return fmt


def _emit(command: str, comparison: Comparison, args: argparse.Namespace, fmt: str) -> int:
    """Write the comparison's report to --output or stdout (and the CI step summary)."""
    from pathlib import Path

    from pytest_edge.bench.report import benchmark_section
    from pytest_edge.report.model import EdgeReport
    from pytest_edge.report.write import append_step_summary, render

    report = EdgeReport(f"pytest-edge {command}").with_section(benchmark_section((), comparison))
    text = render(report, fmt)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            return _fail(command, f"--output {args.output}: cannot write it ({error})")
        print(f"pytest-edge {command}: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    append_step_summary(report)
    return comparison.exit_code


def _ab_sides(args: argparse.Namespace) -> tuple[str, str | None]:
    """(base revision, revision or None for the working tree) from REV... and --base."""
    revs: list[str] = args.revs
    if len(revs) > 2:
        raise ValueError(f"at most two revisions (BASE [REV]), got {len(revs)}: {' '.join(revs)}")
    if args.base is not None:
        if len(revs) > 1:
            raise ValueError(f"--base {args.base} and two revisions: give one or the other")
        return args.base, revs[0] if revs else None
    if not revs:
        return "HEAD", None
    return revs[0], revs[1] if len(revs) == 2 else None


def _ab_pytest_args(args: argparse.Namespace) -> list[str]:
    selection = [*(["-k", args.k] if args.k else []), *(["-m", args.m] if args.m else [])]
    return [*selection, *args.pytest_args]


def _ab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_edge.bench.ab import ABError, run_ab
    from pytest_edge.bench.data import BadBenchmarkInput
    from pytest_edge.lifetime import Terminated

    try:
        fmt = _output_format(args)  # before the runs, which take minutes
        base, rev = _ab_sides(args)
    except ValueError as error:
        return _fail("ab", str(error))
    if args.alpha is not None and not 0 < args.alpha < 1:
        return _fail("ab", f"--alpha={args.alpha}: must be between 0 and 1")
    if args.runs is not None and (args.max_rounds is not None or args.min_rounds is not None):
        return _fail("ab", "--runs (fixed rounds) and --min-rounds/--max-rounds: give one design")

    def say(line: str) -> None:
        print(f"pytest-edge ab: {line}", file=sys.stderr)

    try:
        comparison = run_ab(
            Path.cwd(),
            base,
            rev,
            _ab_pytest_args(args),
            runs=args.runs,
            threshold=args.threshold,
            alpha=args.alpha,
            progress=say,
            statistic=args.statistic,
            keep=Path(args.keep) if args.keep else None,
            max_rounds=args.max_rounds,
            min_rounds=args.min_rounds,
            metric=args.metric,
        )
    except (BadBenchmarkInput, ABError) as error:
        return _fail("ab", str(error))
    except (Terminated, KeyboardInterrupt) as stopped:
        signum = stopped.signum if isinstance(stopped, Terminated) else signal.SIGINT
        name = signal.Signals(signum).name
        say(f"stopped by {name}; its worktrees are removed")
        return 128 + signum
    for note in comparison.notes[:1]:
        say(note.split(". ")[0])
    return _emit("ab", comparison, args, fmt)


def _repeat(args: argparse.Namespace) -> int:
    """Run the benchmarks in N fresh processes; write one merged pytest-benchmark JSON run."""
    from pathlib import Path

    from pytest_edge.bench.data import BadBenchmarkInput, storage_path
    from pytest_edge.bench.repeat import RepeatError, check_plan, repeat, save_path, write
    from pytest_edge.lifetime import Terminated

    if (args.save is None) == (args.output is None):
        return _fail("repeat", "give one of --save NAME or --output FILE")
    try:
        check_plan(args.processes, args.budget)
        if args.save is not None:
            from pytest_benchmark.utils import get_machine_id

            machine_id: str = get_machine_id()  # type: ignore[no-untyped-call]
            target = save_path(storage_path(args.storage), args.save, machine_id)
        else:
            target = Path(args.output)
    except BadBenchmarkInput as error:
        return _fail("repeat", str(error))

    def say(line: str) -> None:
        print(f"pytest-edge repeat: {line}", file=sys.stderr)

    try:
        result = repeat(args.processes, args.pytest_args, args.budget, progress=say)
        write(result.document, target)
    except (BadBenchmarkInput, RepeatError) as error:
        return _fail("repeat", str(error))
    except OSError as error:
        return _fail("repeat", f"{target}: cannot write it ({error})")
    except (Terminated, KeyboardInterrupt) as stopped:
        signum = stopped.signum if isinstance(stopped, Terminated) else signal.SIGINT
        say(f"stopped by {signal.Signals(signum).name}; its processes are ended")
        return 128 + signum
    why = f" (the --budget of {result.budget:g} s was spent)" if result.stopped_by_budget else ""
    say(
        f"ran {result.ran} of {result.asked} processes in {result.elapsed:.1f} s{why}; "
        f"wrote {target}"
    )
    return 0


def _instructions(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pytest_edge.bench.instructions import InstructionCountError, count_instructions

    if ":" not in args.target:
        return _fail("instructions", f"{args.target!r} is not MODULE:FUNCTION")
    try:
        values = json.loads(args.args)
    except ValueError as error:
        return _fail("instructions", f"--args={args.args!r} is not JSON: {error}")
    if not isinstance(values, list):
        return _fail("instructions", f"--args={args.args!r} must be a JSON list")
    try:
        count = count_instructions(
            args.target, values, calls=args.calls, extra_path=[str(Path.cwd())]
        )
    except (EdgeInputError, InstructionCountError) as error:
        return _fail("instructions", str(error))
    print(f"{count.target}: {count.per_call:,.0f} instructions per call ({count.tool})")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from pytest_edge.profiles.catalog import ProfileCatalog, ProfileError
    from pytest_edge.report.model import Table
    from pytest_edge.report.text import render_table

    try:
        catalog = ProfileCatalog.load(args.file or ())
    except ProfileError as exc:
        print(f"pytest-edge profiles: {exc}", file=sys.stderr)
        return 2
    rows = tuple(
        (
            p.name,
            f"{p.memory_mb} MB",
            f"{p.os_reserved_mb} MB",
            str(p.cpu_cores),
            "unknown" if p.cpu_speed_factor is None else f"{p.cpu_speed_factor:g}",
            _tristate(p.uma),
            p.gpu or "-",
            ", ".join(p.aliases) or "-",
        )
        for p in catalog.profiles()
    )
    columns = ("name", "memory", "reserved", "cores", "speed", "uma", "gpu", "aliases")
    print("\n".join(render_table(Table(columns, rows))))
    aliases = catalog.aliases()
    for alias, reason in sorted(catalog.alias_reasons.items()):
        if alias in aliases:
            print(f"\n{alias} -> {aliases[alias]}: {reason}")
    reference = catalog.speed_reference
    if reference is not None:
        print(f"\nspeed = single-core speed relative to {reference.cpu} ({reference.source})")
    print("MB = MiB; reserved = memory the firmware keeps from the OS (see catalog.toml)")
    return 0


def _crash(args: argparse.Namespace) -> int:
    """Run crash cycles on WORKLOAD/RECOVER; exit 1 when an acknowledged write was lost."""
    import os

    from pytest_edge.crash import CrashHarness, CrashHarnessError

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # "module:function" from the current directory
    try:
        report = CrashHarness().run(
            args.workload,
            args.recover,
            state_dir=args.state_dir,
            cycles=args.cycles,
            seed=args.seed,
            mode=args.mode,
            kill=args.kill,
            timeout=args.timeout,
            max_states=args.max_states,
        )
    except (EdgeInputError, CrashHarnessError) as error:
        print(f"pytest-edge crash: error: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


def _run(args: argparse.Namespace) -> int:
    """Exec the command after -- with the system-call library preloaded (or say why not)."""
    from pytest_edge.faults.launch import run

    return run(args.pytest_args, require=args.require, quiet=args.quiet)


def _add_output_options(command: argparse.ArgumentParser) -> None:
    """--format and --output of a command that writes a report (see `_output_format`)."""
    command.add_argument("--format", choices=("text", "md", "json", "html"), default=None)
    command.add_argument("--output", default=None, metavar="PATH", help="write here, not stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-edge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    machine = commands.add_parser(
        "machine", help="show what this machine looks like to pytest-edge"
    )
    machine.set_defaults(run=_machine)

    compare = commands.add_parser(
        "compare",
        help="compare pytest-benchmark JSON runs: regressions exit with status 1",
        description="Compare CURRENT with BASELINE (two pytest-benchmark JSON files), or with "
        "the spread of the last runs saved in a directory (--history DIR CURRENT), allowing "
        "for the drift between runs. Exit status: 0 same, faster or inconclusive; 1 a "
        "regression (significant, beyond the threshold and beyond the drift); 2 bad input; "
        "3 inconclusive with --fail-on-inconclusive.",
    )
    compare.add_argument("files", nargs="+", metavar="FILE", help="BASELINE CURRENT, or CURRENT")
    compare.add_argument("--threshold", type=_threshold_arg, default=0.10, help=THRESHOLD_HELP)
    _add_output_options(compare)
    compare.add_argument("--history", default=None, metavar="DIR", help="saved runs (.benchmarks)")
    compare.add_argument(
        "--runs", type=int, default=5, metavar="N", help="history runs to use (default 5)"
    )
    compare.add_argument(
        "--statistic",
        choices=("min", "p10", "median"),
        default="min",
        help="each run's time compared (default min: other processes only add time, so the "
        "fastest round moves least between runs; p10; median)",
    )
    compare.add_argument(
        "--fail-on-inconclusive",
        action="store_true",
        help="exit with status 3 when a benchmark is inconclusive (drift hid a change of the "
        "threshold's size) and none regressed",
    )
    compare.set_defaults(run=_compare)

    ab = commands.add_parser(
        "ab",
        help="benchmark your working tree (or a revision) against a base revision, interleaved",
        description="Compare the working tree, uncommitted changes included, with BASE "
        "(default HEAD): `pytest-edge ab main` or `--base main`; with two revisions, REV "
        "against BASE. Both are checked out in temporary git worktrees and their benchmarks "
        "run alternately in fresh pytest processes (A B, B A, ...); the rounds stop as soon "
        "as every answer is clear (a sequential test, at most --max-rounds) and the report "
        "says how many it took. Only the selected benchmarks run: -k/-m, or pytest arguments "
        "after -- (e.g. -- tests/benchmarks). Exit status: 0 no regression (faster, same or "
        "inconclusive), 1 a regression, 2 bad input or a failed run.",
    )
    ab.add_argument("revs", nargs="*", metavar="REV", help="BASE [REV] (default: HEAD)")
    ab.add_argument("--base", default=None, metavar="REV", help="the revision to compare with")
    ab.add_argument("-k", default=None, metavar="EXPR", help="pytest -k: which benchmarks run")
    ab.add_argument("-m", default=None, metavar="MARKEXPR", help="pytest -m: which benchmarks")
    ab.add_argument(
        "--max-rounds",
        type=int,
        default=None,
        metavar="N",
        help="most rounds (pairs of runs) before the answer is called inconclusive (default 8)",
    )
    ab.add_argument(
        "--min-rounds",
        type=int,
        default=None,
        metavar="N",
        help="rounds before the first look (default 3, the least that can be)",
    )
    ab.add_argument(
        "--runs",
        type=int,
        default=None,
        metavar="N",
        help="a fixed number of rounds and one paired t test at the end (no early stop)",
    )
    ab.add_argument("--threshold", type=_threshold_arg, default=0.10, help=THRESHOLD_HELP)
    ab.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="error rate over all looks (default 0.02: a false regression <= 1%%); with "
        "--runs, the p below which a change counts (default 0.01)",
    )
    ab.add_argument(
        "--metric",
        choices=("time", "instructions"),
        default="time",
        help="verdict on wall time (default), or on instruction counts (valgrind callgrind; "
        "deterministic, for CPU-bound benchmarks) with the wall-time verdict beside it",
    )
    ab.add_argument(
        "--statistic",
        choices=("min", "p10", "median"),
        default="min",
        help="each run's time compared pair by pair (default min: contention from other "
        "processes only adds time, so it is the least disturbed; p10, median)",
    )
    ab.add_argument("--keep", default=None, metavar="DIR", help="keep each run's JSON here")
    _add_output_options(ab)
    ab.set_defaults(pytest_args=[])
    ab.set_defaults(run=_ab)

    rep = commands.add_parser(
        "repeat",
        help="run benchmarks in N fresh processes and save them as one run",
        description="Run the benchmarks that the pytest arguments after -- select in N fresh "
        "pytest processes one after another (as pyperf and asv do) and write ONE "
        "pytest-benchmark JSON run: each benchmark's stats cover every process's rounds and "
        "extra_info.edge.processes keeps each process's min, p10 and median, whose spread "
        "comparisons against this run use as the drift between processes. --save NAME puts "
        "it where --benchmark-save=NAME would (for --edge-compare and pytest-edge compare). "
        "Exit status: 0 written, 2 bad input or a failed pytest process.",
    )
    rep.add_argument(
        "--processes", type=int, required=True, metavar="N", help="fresh processes (2 or more)"
    )
    rep.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="start no further process once this would be passed (at least 2 always run)",
    )
    rep.add_argument("--save", default=None, metavar="NAME", help="save as NNNN_NAME.json")
    rep.add_argument("--output", default=None, metavar="FILE", help="write the JSON run here")
    rep.add_argument(
        "--storage",
        default=None,
        metavar="DIR",
        help="pytest-benchmark's --benchmark-storage, for --save (default .benchmarks)",
    )
    rep.set_defaults(pytest_args=[], run=_repeat)

    instructions = commands.add_parser(
        "instructions",
        help="count a function's instructions per call with valgrind's callgrind",
        description="Repeatable cost of CPU-bound code: instructions per call of "
        "MODULE:FUNCTION (importable from the current directory) under callgrind.",
    )
    instructions.add_argument("target", metavar="MODULE:FUNCTION")
    instructions.add_argument("--args", default="[]", help="JSON list of positional arguments")
    instructions.add_argument("--calls", type=int, default=10, help="calls counted (default 10)")
    instructions.set_defaults(run=_instructions)
    profiles = commands.add_parser("profiles", help="list the simulated device profiles")
    profiles.add_argument(
        "--file", action="append", metavar="PATH", help="also load profiles from this TOML file"
    )
    profiles.set_defaults(run=_profiles)
    crash = commands.add_parser(
        "crash",
        help="kill (or cut the power of) WORKLOAD over and over; check RECOVER keeps every ack",
    )
    crash.add_argument("workload", help="module:function, runs in a child, calls ack()")
    crash.add_argument("recover", help="module:function, returns the recovered key -> value")
    crash.add_argument("--state-dir", required=True, help="directory the workload keeps state in")
    crash.add_argument("--cycles", type=int, default=50, help="crash cycles (default 50)")
    crash.add_argument("--mode", choices=("kill", "power-loss"), default="kill")
    crash.add_argument("--kill", default="random", help="random, random-time:S, acks:N, ...")
    crash.add_argument("--seed", type=parse_seed, default=None, help="replay a run's seed")
    crash.add_argument("--timeout", type=float, default=30.0, help="seconds per cycle")
    crash.add_argument("--max-states", type=int, default=64, help="power-loss states per cycle")
    crash.set_defaults(run=_crash)
    run = commands.add_parser(
        "run",
        help="run a command (pytest ...) with the system-call library preloaded",
        description="pytest-edge run -- pytest ARGS: start the command after -- with "
        "pytest-edge's system-call library in LD_PRELOAD (xdist workers and other children "
        "inherit it), so edge_faults' filesystem faults act at the system-call layer. Where "
        "the library cannot be used, says why on stderr and runs the command without it.",
    )
    run.add_argument(
        "--require", action="store_true", help="exit 2 instead when the library cannot be used"
    )
    run.add_argument("--quiet", action="store_true", help="no line when the library is used")
    run.set_defaults(pytest_args=[], run=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" belongs to pytest (`pytest-edge ab A B -- tests -k x`);
    # argparse mishandles "--" inside subcommands, so it is split off here.
    passthrough: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, passthrough = words[:cut], words[cut + 1 :]
    args = build_parser().parse_args(words)
    if passthrough:
        if not hasattr(args, "pytest_args"):
            return _fail(args.command, f"unexpected arguments after --: {' '.join(passthrough)}")
        args.pytest_args = [*args.pytest_args, *passthrough]
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
