"""The run's seed: one number that makes every random choice of pytest-edge replayable."""

from __future__ import annotations

import argparse
import secrets

SEED_HELP = (
    "seed for every random choice pytest-edge makes (fault probabilities, crash points, "
    "generated data); chosen at random and printed in the header when not given, so a "
    "failing run replays with --edge-seed=N"
)


def parse_seed(value: str) -> int:
    """Parse a seed option: a non-negative integer below 2**32."""
    try:
        seed = int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--edge-seed: {value!r} is not an integer; use a number from 0 to {2**32 - 1}"
        ) from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(
            f"--edge-seed: {seed} is out of range; use a number from 0 to {2**32 - 1}"
        )
    return seed


def new_seed() -> int:
    """A fresh random seed, for runs that did not fix one."""
    return secrets.randbelow(2**32)
