"""Shared test configuration: pytester, the --run-slow switch, hypothesis profiles."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# CI: more examples, derandomized so a CI failure replays; dev: quick feedback.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--run-slow")
    in_xdist_worker = hasattr(config, "workerinput")
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow (make bench runs them)")
    skip_timing = pytest.mark.skip(
        reason="timing: measures real slowdowns and needs the CPU to itself; "
        "run without xdist (make bench does)"
    )
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        elif "timing" in item.keywords and in_xdist_worker:
            item.add_marker(skip_timing)


@pytest.fixture
def fast_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory on tmpfs (/dev/shm) when there is one, else under tmp_path.

    The crash harness models durability itself (kill -9 keeps the page cache; power-loss
    states are built from the trace), so real fsyncs to a disk only slow the cycles down.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="edge-state-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
