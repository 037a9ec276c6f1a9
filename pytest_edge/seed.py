"""The run's seed: one number that makes every random choice of pytest-edge replayable.

Chosen once per run (``--edge-seed``, or at random) on the controller and sent to every
pytest-xdist worker; read with `run_seed`. This module is also the seed's pytest wiring (its
option, the header line, the ``edge_seed`` fixture): the faults, crash and scenario
capabilities read the seed here, below all of them.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from pytest_edge.settings import MarkerSpec, Setting, add_settings

SEED_KEY = pytest.StashKey[int]()
_WORKER_SEED = "edge_seed"

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
    """A fresh random seed, for runs that did not fix one (four bytes from the OS)."""
    return int.from_bytes(os.urandom(4), "big")


def run_seed(config: pytest.Config) -> int:
    """The run's seed (the one the controller chose, in an xdist worker too)."""
    seed = config.stash.get(SEED_KEY, None)
    if seed is None:
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None and _WORKER_SEED in workerinput:
            seed = int(workerinput[_WORKER_SEED])
        else:
            chosen = config.getoption("edge_seed", None)
            seed = new_seed() if chosen is None else int(chosen)
        config.stash[SEED_KEY] = seed
    return seed


SETTINGS: tuple[Setting, ...] = (Setting("--edge-seed", SEED_HELP, metavar="N", parse=parse_seed),)
MARKERS: tuple[MarkerSpec, ...] = ()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_settings(parser, SETTINGS)


def pytest_configure(config: pytest.Config) -> None:
    run_seed(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "edge-seed-xdist")


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = run_seed(config)
    return [f"edge: seed {seed} (replay with --edge-seed={seed})"]


class _XdistHooks:
    """Hooks that exist only with pytest-xdist; registered when it is loaded."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # The controller chooses the seed once; every worker replays the same one.
        node.workerinput[_WORKER_SEED] = run_seed(node.config)


@pytest.fixture(scope="session")
def edge_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed (``--edge-seed``, or the one chosen for this run)."""
    return run_seed(pytestconfig)
