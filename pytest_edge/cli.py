"""The ``pytest-edge`` command: look at the machine, the device catalog and benchmark results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pytest_edge.machine import MIB, current_machine
from pytest_edge.seed import parse_seed

Command = Callable[[argparse.Namespace], int]


def _machine(args: argparse.Namespace) -> int:
    machine = current_machine()
    memory = machine.memory()
    accel = machine.accelerator()
    freqs = machine.cpu_max_freq_mhz()
    print(f"machine:   {machine.name}{' (simulated)' if machine.simulated else ''}")
    print(
        f"memory:    {memory.total_bytes / MIB:.0f} MB total, "
        f"{memory.available_bytes / MIB:.0f} MB available (bounded by {memory.bounded_by})"
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


def _profiles(args: argparse.Namespace) -> int:
    from pytest_edge.profiles.catalog import ProfileCatalog, ProfileError

    try:
        catalog = ProfileCatalog.load(args.file or ())
    except ProfileError as exc:
        print(f"pytest-edge profiles: {exc}", file=sys.stderr)
        return 2
    rows = [("name", "memory", "reserved", "cores", "speed", "uma", "gpu", "aliases")]
    for p in catalog.profiles():
        rows.append(
            (
                p.name,
                f"{p.memory_mb} MB",
                f"{p.os_reserved_mb} MB",
                str(p.cpu_cores),
                "-" if p.cpu_speed_factor is None else f"{p.cpu_speed_factor:g}",
                _tristate(p.uma),
                p.gpu or "-",
                ", ".join(p.aliases) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
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
    except (ValueError, CrashHarnessError) as error:
        print(f"pytest-edge crash: error: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-edge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    machine = commands.add_parser(
        "machine", help="show what this machine looks like to pytest-edge"
    )
    machine.set_defaults(run=_machine)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
