"""The ``pytest-edge`` command: look at the machine, the device catalog and benchmark results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pytest_edge.machine import MIB, current_machine

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-edge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    machine = commands.add_parser(
        "machine", help="show what this machine looks like to pytest-edge"
    )
    machine.set_defaults(run=_machine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
