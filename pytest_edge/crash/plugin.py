"""The crash harness wired to pytest: the ``edge_crash`` fixture (no options, no markers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_edge.seed import run_seed
from pytest_edge.settings import MarkerSpec, Setting

if TYPE_CHECKING:
    from pytest_edge.crash import CrashHarness

SETTINGS: tuple[Setting, ...] = ()
MARKERS: tuple[MarkerSpec, ...] = ()


@pytest.fixture
def edge_crash(pytestconfig: pytest.Config) -> CrashHarness:
    """A CrashHarness seeded with the run seed: ``edge_crash.run(workload, recover, ...)``.

    An explicit ``seed=`` argument to ``run`` wins; otherwise ``--edge-seed`` replays the run.
    """
    from pytest_edge.crash import CrashHarness

    return CrashHarness(seed=run_seed(pytestconfig))
