"""pytest hooks of pytest-edge: options, ini keys, markers, thin fixtures, summaries.

Nothing here holds logic that could not be used without pytest: the work is done by the
classes in the feature packages; this module wires them to pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_edge.seed import SEED_HELP, new_seed, parse_seed

if TYPE_CHECKING:
    from pytest_edge.crash import CrashHarness

SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "edge", "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
    )
    group.addoption("--edge-seed", type=parse_seed, default=None, metavar="N", help=SEED_HELP)


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and "edge_seed" in workerinput:
        seed = int(workerinput["edge_seed"])
    else:
        chosen = config.getoption("edge_seed")
        seed = new_seed() if chosen is None else int(chosen)
    config.stash[SEED_KEY] = seed
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "edge-xdist-hooks")


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = config.stash[SEED_KEY]
    return [f"edge: seed {seed} (replay with --edge-seed={seed})"]


class _XdistHooks:
    """Hooks that exist only with pytest-xdist; registered when it is loaded."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # The controller chooses the seed once; every worker replays the same one.
        node.workerinput["edge_seed"] = node.config.stash[SEED_KEY]


@pytest.fixture(scope="session")
def edge_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed (``--edge-seed``, or the one chosen for this run)."""
    return pytestconfig.stash[SEED_KEY]


# --- crash ---


@pytest.fixture
def edge_crash(pytestconfig: pytest.Config) -> CrashHarness:
    """A CrashHarness seeded with the run seed: ``edge_crash.run(workload, recover, ...)``.

    An explicit ``seed=`` argument to ``run`` wins; otherwise ``--edge-seed`` replays the run.
    """
    from pytest_edge.crash import CrashHarness

    return CrashHarness(seed=pytestconfig.stash[SEED_KEY])
