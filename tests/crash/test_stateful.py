"""The hypothesis state machine: crashes as rules, no lost acknowledged write as invariant."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from pytest_edge.crash.stateful import CrashMachine

FAST = settings(
    max_examples=4,
    stateful_step_count=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


class SafeStore(CrashMachine):
    workload = "tests.crash.workloads:safe_writer"
    recover = "tests.crash.workloads:recover"
    crashpoints = ("after-save",)


class CarelessStore(CrashMachine):
    workload = "tests.crash.workloads:in_place_writer"
    recover = "tests.crash.workloads:recover"
    max_events = 12


def test_safe_store_keeps_every_acknowledged_write() -> None:
    run_state_machine_as_test(SafeStore, settings=FAST)


def test_careless_store_fails_with_a_short_crash_sequence() -> None:
    with pytest.raises(AssertionError, match=r"lost or changed") as info:
        run_state_machine_as_test(
            CarelessStore, settings=settings(FAST, max_examples=30, stateful_step_count=6)
        )
    assert "recover raised: JSONDecodeError" in str(info.value)


class RenameWithoutFsyncStore(CrashMachine):
    workload = "tests.crash.workloads:rename_without_fsync_writer"
    recover = "tests.crash.workloads:recover"
    mode = "power-loss"
    max_states = 32


def test_power_loss_machine_finds_the_missing_fsync() -> None:
    with pytest.raises(AssertionError, match=r"mode power-loss.*\n(.*\n)*.*crash state: power cut"):
        run_state_machine_as_test(RenameWithoutFsyncStore, settings=settings(FAST, max_examples=20))
