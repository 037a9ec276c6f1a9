"""Verdicts the harness gave that the code under test could not justify (bugs found here).

Each test states what a user can trust. They were strict xfails naming the bug until the crash
harness (pytest_edge/crash/) fixed it; now they keep it fixed.
"""

from __future__ import annotations

from pathlib import Path

from pytest_edge.crash import CrashHarness


def test_a_run_that_acknowledged_nothing_is_not_a_pass(fast_state_dir: Path) -> None:
    """With every traced call a kill event, kill='random' can kill a store that makes many
    calls before its first ack before that ack in every cycle: nothing was checked, and the
    verdict said 'pass' (the reference database's kill test got 0 acks this way)."""
    report = CrashHarness().run(
        "tests.thirdparty.workloads:run_slow_start",
        "tests.thirdparty.workloads:recover_slow_start",
        state_dir=fast_state_dir,
        cycles=3,
        seed=1,
        kill="random",
        random_events=50,  # every kill lands among the first 50 calls: before the first ack
    )
    assert report.acked_writes == 0, report.summary()  # the situation this test is about
    assert report.verdict == "inconclusive", report.summary()
