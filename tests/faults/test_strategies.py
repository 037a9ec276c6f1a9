"""fault_plans with hypothesis: shrinking to the smallest failing plan, and a stateful test
where faults are rules and recovery is an invariant."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pytest_edge.faults import FaultArgumentError, FaultInjector, FaultPlan, FaultSpec
from pytest_edge.faults.patching import active_sites
from pytest_edge.strategies import fault_plans, fault_specs
from tests.faults import helpers


def fragile(plan: FaultPlan) -> bool:
    """True when the code under test (3 pings, retried once) fails under `plan`."""
    with FaultInjector(seed=1) as faults:
        faults.apply(plan)
        try:
            for _ in range(3):
                try:
                    helpers.ping()
                except TimeoutError:
                    helpers.ping()  # one retry
        except (TimeoutError, OSError, ConnectionError):
            return True
    return False


def test_plans_shrink_to_the_smallest_failing_plan() -> None:
    smallest = find(
        fault_plans(targets=["tests.faults.helpers.ping"], max_faults=3),
        fragile,
        settings=settings(database=None, max_examples=500),
    )
    # One fault, first exception (OSError is not retried), no counting options.
    assert smallest.to_dict() == {
        "faults": [
            {
                "kind": "fail",
                "target": "tests.faults.helpers.ping",
                "exc": {"type": "OSError", "args": [errno.EIO, "Input/output error"]},
            }
        ]
    }


@given(fault_plans(targets=["tests.faults.helpers.ping"], paths=["/nonexistent-edge"]))
def test_generated_plans_arm_and_disarm_cleanly(plan: FaultPlan) -> None:
    before = helpers.ping
    with FaultInjector() as faults:
        faults.apply(plan)
    assert helpers.ping is before
    assert active_sites() == []


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(FaultArgumentError, match="give targets=, paths= or db_paths="):
        fault_specs()
    with pytest.raises(FaultArgumentError, match="kinds includes 'fail': pass targets="):
        fault_specs(kinds=["fail"])


class AtomicStore:
    """A tiny crash-safe JSON store: the kind of code fault plans are meant to exercise."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "store.json"

    def save(self, data: dict[str, int]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        with io.FileIO(self.path) as f:  # FileIO: reads the disk past any armed read fault
            loaded: dict[str, int] = json.loads(f.readall())
            return loaded


class InPlaceStore(AtomicStore):
    """The classic bug: truncate and rewrite the only copy."""

    def save(self, data: dict[str, int]) -> None:
        with open(self.path, "w") as f:
            f.write(json.dumps(data))


class StoreUnderFaults(RuleBasedStateMachine):
    """Faults are rules; recovery (the last saved state loads intact) is an invariant."""

    store_class: type[AtomicStore] = AtomicStore

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="edge-stateful-"))
        self.store = self.store_class(self.directory)
        self.faults = FaultInjector(seed=0, layer="python")  # the same steps in both layers
        self.saved: dict[str, int] = {}
        self.model: dict[str, int] = {}

    @rule(spec=fault_specs(paths=["{dir}"], kinds=["io_error", "disk_full", "read_only"]))
    def arm_fault(self, spec: FaultSpec) -> None:
        options = dict(spec.arguments())
        options["path"] = str(self.directory)
        self.faults.arm_kind(spec.kind, options)

    @precondition(lambda self: bool(self.faults.armed))
    @rule()
    def recover(self) -> None:
        self.faults.disarm()

    @rule(key=st.sampled_from(["a", "b", "c"]), value=st.integers(0, 9))
    def save(self, key: str, value: int) -> None:
        self.model[key] = value
        try:
            self.store.save(self.model)
        except OSError:
            return  # the save failed: the previous state must still be there
        self.saved = dict(self.model)

    @invariant()
    def last_saved_state_loads(self) -> None:
        try:
            loaded = self.store.load()
        except ValueError as exc:  # damaged JSON
            raise AssertionError(f"state file damaged: {exc}") from exc
        assert loaded == self.saved

    def teardown(self) -> None:
        self.faults.disarm()
        shutil.rmtree(self.directory, ignore_errors=True)


StoreUnderFaults.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None
)
TestStoreUnderFaults = StoreUnderFaults.TestCase


class InPlaceStoreUnderFaults(StoreUnderFaults):
    store_class = InPlaceStore


def test_the_stateful_test_catches_a_store_that_is_not_crash_safe() -> None:
    no_shrinking = settings(
        max_examples=200,
        stateful_step_count=15,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: this test must not be flaky
        phases=[Phase.generate],  # finding the failure is the point; shrinking costs time
    )
    with pytest.raises(AssertionError, match=r"state file damaged|assert"):
        run_state_machine_as_test(InPlaceStoreUnderFaults, settings=no_shrinking)
