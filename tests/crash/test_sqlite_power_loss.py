"""SQLite judged at power loss as it documents its own durability (system-call layer).

Commit, then acknowledge; every cycle kills the workload before a seeded random system call
(inside SQLite's commits) and checks up to 64 crash states built from the trace. The settings
SQLite documents as durable keep every acknowledged row; the others are caught:

- WAL + FULL: the WAL is synced at every commit, and the directory after the WAL is created
  (os_unix.c ``UNIXFILE_DIRSYNC``).
- DELETE + EXTRA: as FULL, and the directory is synced after the journal is unlinked.
- DELETE + FULL: the unlink that commits is not durable until the directory is synced; a
  power cut can bring the journal back, and the next open rolls the last commit back.
- WAL + NORMAL: the WAL is synced only at checkpoints; a commit "might roll back following a
  power loss" (sqlite.org/pragma.html#pragma_synchronous).
- synchronous=OFF: nothing is synced.

The default run does 10 cycles per setting; ``--run-slow`` does the 50 of issue 12.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.crash import CrashHarness, CrashReport
from pytest_edge.crash.layer import choose
from tests.crash import sqlite_workloads as s

pytestmark = pytest.mark.skipif(
    choose("auto").name != "syscall", reason=choose("auto").why or "no system-call layer"
)

CYCLES = [
    pytest.param(10, id="10-cycles"),
    pytest.param(50, id="50-cycles", marks=pytest.mark.slow),
]


def _run(workload: object, state_dir: Path, cycles: int, stop: bool = True) -> CrashReport:
    report = CrashHarness(seed=12).run(
        workload,  # type: ignore[arg-type]
        s.recover,
        state_dir=state_dir,
        cycles=cycles,
        mode="power-loss",
        stop_on_failure=stop,
    )
    print(f"\n{report.summary()}; cycles with a failing crash state: {len(report.failures)}")
    return report


@pytest.mark.parametrize("cycles", CYCLES)
@pytest.mark.parametrize("workload", [s.wal_full, s.delete_extra], ids=["WAL+FULL", "DELETE+EXTRA"])
def test_durable_settings_keep_every_acknowledged_commit(
    fast_state_dir: Path, workload: object, cycles: int
) -> None:
    report = _run(workload, fast_state_dir, cycles)
    report.assert_ok()
    assert (report.verdict, report.lost_writes, report.cycles_run) == ("pass", 0, cycles)
    assert report.acked_writes >= 2 * cycles
    assert report.states_checked >= 20 * cycles
    assert report.observed_at == "syscall"
    assert report.warnings == []


def test_wal_index_is_dropped_from_crash_states_and_said_so(fast_state_dir: Path) -> None:
    report = _run(s.wal_full, fast_state_dir, 1)
    report.assert_ok()
    (note,) = report.notes
    assert note.startswith("kv.db-shm dropped from every crash state: SQLite wal-index")
    assert "sqlite.org/walformat.html" in note


@pytest.mark.parametrize("cycles", CYCLES)
@pytest.mark.parametrize(
    "workload",
    [s.delete_off, s.wal_normal, s.delete_full],
    ids=["OFF", "WAL+NORMAL", "DELETE+FULL"],
)
def test_settings_that_can_lose_a_commit_are_caught(
    fast_state_dir: Path, workload: object, cycles: int
) -> None:
    report = _run(workload, fast_state_dir, cycles, stop=cycles < 50)
    assert report.verdict == "fail"
    failure = report.failures[0]
    assert failure.losses or failure.recover_error
    assert failure.crash_state is not None


def test_delete_full_loses_the_commit_whose_journal_unlink_was_not_synced(
    fast_state_dir: Path,
) -> None:
    report = _run(s.delete_full, fast_state_dir, 10)
    failure = report.failures[0]
    # the trace up to the cut ends with the commit's unlink of the journal, no dirsync after
    steps = [step.split(" [")[0] for step in failure.trace]
    unlinks = [i for i, step in enumerate(steps) if "unlink kv.db-journal" in step]
    assert unlinks, failure.trace
    assert not any("dirsync" in step for step in steps[unlinks[-1] :]), failure.trace
    assert "metadata ops persisted: 0/" in (failure.crash_state or "")
    assert all(loss.kind in ("lost", "changed") for loss in failure.losses)
