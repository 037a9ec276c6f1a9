"""Proof on the reference database: a committed batch is all there, an uncommitted one absent.

SQLite writes in C, outside the power-loss trace, so these run kill -9 cycles (see README).
Kills come at random moments (``random-time``) so they land inside transactions, and at the
acknowledgements (``random``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.crash import CrashHarness
from tests.reference_impl import crash_workloads as cw

pytest.importorskip("reference_impl.database_optimization", reason="feat/db not merged yet")

H = CrashHarness()


@pytest.mark.parametrize(("kill", "seed"), [("random-time:0.4", 5), ("random", 6)])
def test_database_batches_are_all_or_nothing_under_kill(
    fast_state_dir: Path, kill: str, seed: int
) -> None:
    report = H.run(
        cw.db_workload,
        cw.db_recover,
        state_dir=fast_state_dir,
        cycles=12,
        seed=seed,
        kill=kill,
        random_events=12,
    )
    print(report.summary())
    report.assert_ok()
    assert report.acked_writes > 0


@pytest.mark.slow
def test_database_batches_200_kill_cycles(fast_state_dir: Path) -> None:
    report = H.run(
        cw.db_workload,
        cw.db_recover,
        state_dir=fast_state_dir,
        cycles=200,
        seed=7,
        kill="random-time:0.4",
    )
    print(report.summary())
    report.assert_ok()
