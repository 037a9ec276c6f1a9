"""kill -9 cycles: kill points, the acknowledgement record, recovery checks, clear errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.crash import (
    CrashHarness,
    CrashHarnessError,
    CrashTimeoutError,
    InconclusiveError,
    KillPointNotReachedError,
    KillSpec,
    LostWritesError,
    WorkloadError,
)
from pytest_edge.crash.harness import SYSCALL_KINDS
from pytest_edge.errors import EdgeInputError
from tests.crash import workloads as w

H = CrashHarness(seed=7)


def test_safe_writer_survives_random_kills(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.recover, state_dir=tmp_path, cycles=15, mode="kill")
    report.assert_ok()
    assert report.cycles_run == 15
    assert report.acked_writes > 15
    # state carries over: the file holds every key acknowledged over all cycles
    assert len(json.loads((tmp_path / "state.json").read_text())) >= report.acked_writes
    assert all(c.kill_point.startswith("random: before ") for c in report.cycles)


def test_in_place_writer_loses_writes_under_kill(tmp_path: Path) -> None:
    report = H.run(w.in_place_writer, w.recover, state_dir=tmp_path, cycles=50, mode="kill")
    assert not report.ok
    failure = report.failures[0]
    assert failure.recover_error is not None
    assert "JSONDecodeError" in failure.recover_error
    with pytest.raises(LostWritesError, match=r"cycle \d+ \(seed 7, mode kill\)"):
        report.assert_ok()


def test_recovery_bug_is_reported_key_by_key(tmp_path: Path) -> None:
    report = H.run(
        "tests.crash.workloads:safe_writer",
        "tests.crash.workloads:lossy_recover",
        state_dir=tmp_path,
        cycles=5,
        kill="acks:2",
    )
    assert not report.ok
    (loss,) = report.failures[0].losses
    assert (loss.key, loss.kind) == ("k1", "lost")
    assert report.failures[0].kill_point == "after ack #2 ('k1')"


def test_acks_n_kills_right_after_the_nth_ack(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.recover, state_dir=tmp_path, cycles=3, kill="acks:4")
    report.assert_ok()
    assert [c.acks for c in report.cycles] == [4, 4, 4]
    assert sorted(json.loads((tmp_path / "state.json").read_text())) == sorted(
        f"k{i}" for i in range(12)
    )


def test_crashpoint_name_and_nth(tmp_path: Path) -> None:
    report = H.run(
        w.counted_writer, w.recover, state_dir=tmp_path, cycles=2, kill="crashpoint:before-write:3"
    )
    report.assert_ok()
    # killed at the 3rd crashpoint: two writes acknowledged per cycle
    assert [c.acks for c in report.cycles] == [2, 2]
    assert report.cycles[0].kill_point == "crashpoint 'before-write' reached 3x"


def test_acknowledged_write_just_before_the_kill_counts(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.lossy_recover, state_dir=tmp_path, cycles=1, kill="acks:1")
    assert report.acked_writes == 1
    assert report.failures[0].losses[0].key == "k0"


def test_raising_recover_loses_every_key_and_shows_the_exception(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.failing_recover, state_dir=tmp_path, cycles=3, kill="acks:3")
    (failure,) = report.failures
    assert failure.recover_error == "ValueError: cannot parse state"
    assert [loss.key for loss in failure.losses] == ["k0", "k1", "k2"]
    with pytest.raises(LostWritesError, match="recover raised: ValueError: cannot parse state"):
        report.assert_ok()


def test_values_compare_after_a_json_round_trip(tmp_path: Path) -> None:
    H.run(
        w.tuple_writer, w.recover, state_dir=tmp_path, cycles=2, kill="crashpoint:done"
    ).assert_ok()


def test_acknowledged_deletion_must_stay_deleted(tmp_path: Path) -> None:
    H.run(
        w.delete_writer, w.recover, state_dir=tmp_path, cycles=1, kill="crashpoint:done"
    ).assert_ok()
    report = H.run(
        w.delete_writer,
        w.undelete_recover,
        state_dir=tmp_path / "b",
        cycles=1,
        kill="crashpoint:done",
    )
    (loss,) = report.failures[0].losses
    assert (loss.kind, loss.expected, loss.got) == ("resurrected", "DELETED", "1")


def test_check_callable_accepts_other_values(tmp_path: Path) -> None:
    report = H.run(
        w.safe_writer,
        w.lossy_recover,
        state_dir=tmp_path,
        cycles=2,
        kill="acks:2",
        check=w.accept_anything,
    )
    report.assert_ok()


def test_intent_allows_the_in_flight_value(tmp_path: Path) -> None:
    # counter_writer rewrites in place after declaring the intent: both values are allowed
    report = H.run(w.counter_writer, w.counter_recover, state_dir=tmp_path, cycles=30)
    report.assert_ok()


def test_same_seed_same_kill_points(tmp_path: Path) -> None:
    a = H.run(w.safe_writer, w.recover, state_dir=tmp_path / "a", cycles=5, seed=3)
    b = CrashHarness(seed=99).run(
        w.safe_writer, w.recover, state_dir=tmp_path / "b", cycles=5, seed=3
    )
    assert [c.kill_point for c in a.cycles] == [c.kill_point for c in b.cycles]
    assert a.seed == b.seed == 3
    c = H.run(w.safe_writer, w.recover, state_dir=tmp_path / "c", cycles=5, seed=4)
    assert [x.kill_point for x in c.cycles] != [x.kill_point for x in a.cycles]


def test_timeout_names_the_cycle(tmp_path: Path) -> None:
    with pytest.raises(CrashTimeoutError, match=r"cycle 1 \(seed 7\).*ran for 0.5 s.*acks:1"):
        H.run(w.sleeper, w.recover, state_dir=tmp_path, kill="acks:1", timeout=0.5)


def test_kill_point_never_reached(tmp_path: Path) -> None:
    with pytest.raises(KillPointNotReachedError, match=r"cycle 1 .*'acks:5'.*\(3 acks"):
        H.run(w.finite_writer, w.recover, state_dir=tmp_path, kill="acks:5")


def test_finite_workload_with_random_kills_restarts_cleanly(tmp_path: Path) -> None:
    report = H.run(w.finite_writer, w.recover, state_dir=tmp_path, cycles=4, random_events=1000)
    report.assert_ok()
    assert {c.ended for c in report.cycles} == {"workload returned"}


def test_workload_exception_is_an_error_naming_the_cycle(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"cycle 1 .*RuntimeError\('workload bug 42'\)"):
        H.run(w.raiser, w.recover, state_dir=tmp_path)


def _local_recover(state_dir: str) -> dict[str, int]:
    return {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "reboot"}, r"mode='reboot': use 'kill' or 'power-loss'"),
        ({"kill": "sometimes"}, r"kill='sometimes' is not a kill point; use 'random'"),
        ({"kill": "acks:0"}, r"kill='acks:0': N in 'acks:N' must be an integer >= 1"),
        ({"cycles": 0}, r"cycles=0: an integer >= 1"),
        ({"timeout": -1}, r"timeout=-1: seconds per cycle"),
        ({"seed": -5}, r"seed=-5: a non-negative integer"),
    ],
)
def test_bad_arguments_name_the_value(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(EdgeInputError, match=match):
        H.run(w.safe_writer, w.recover, state_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_nested_functions_cannot_cross_the_process_boundary(tmp_path: Path) -> None:
    def nested(state_dir: str) -> None: ...

    with pytest.raises(EdgeInputError, match=r"workload=.*must be a module-level function"):
        H.run(nested, w.recover, state_dir=tmp_path)
    with pytest.raises(EdgeInputError, match=r"recover='nocolon': expected 'module:function'"):
        H.run(w.safe_writer, "nocolon", state_dir=tmp_path)


def test_unimportable_target_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EdgeInputError, match=r"cannot load .*no_such_module_xyz"):
        H.run("no_such_module_xyz:f", w.recover, state_dir=tmp_path)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("random", KillSpec("random")),
        ("acks:3", KillSpec("acks", 3)),
        ("crashpoint:save", KillSpec("crashpoint", 1, "save")),
        ("crashpoint:save:4", KillSpec("crashpoint", 4, "save")),
        ("crashpoint:a:b", KillSpec("crashpoint", 1, "a:b")),
        ("syscall:7", KillSpec("syscall", 7, "any")),
        ("syscall:any:7", KillSpec("syscall", 7, "any")),
        ("syscall:fsync:2", KillSpec("syscall", 2, "fsync")),
        ("syscall:write:1", KillSpec("syscall", 1, "write")),
        ("syscall:pwrite64:3", KillSpec("syscall", 3, "pwrite64")),
    ],
)
def test_kill_spec_forms(spec: str, parsed: KillSpec) -> None:
    assert KillSpec.parse(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("syscall:0", r"kill='syscall:0': N in 'syscall:N' must be an integer >= 1"),
        ("syscall:", r"kill='syscall:': N in 'syscall:N' must be an integer >= 1"),
        ("syscall:write", r"kill='syscall:write': N in 'syscall:N' must be an integer >= 1"),
        ("syscall:write:x", r"kill='syscall:write:x': N in 'syscall:CALL:N' must be an integer"),
        ("syscall:write:-1", r"N in 'syscall:CALL:N' must be an integer >= 1"),
        ("syscall:chmod:1", r"kill='syscall:chmod:1': CALL in 'syscall:CALL:N' must be one of "),
        ("syscall:a:b:1", r"CALL in 'syscall:CALL:N' must be one of any, open, write"),
    ],
)
def test_bad_syscall_kill_specs_name_the_value_and_what_is_allowed(spec: str, match: str) -> None:
    with pytest.raises(EdgeInputError, match=match):
        KillSpec.parse(spec)


@given(call=st.sampled_from(SYSCALL_KINDS), n=st.integers(1, 10**9))
def test_syscall_kill_specs_round_trip(call: str, n: int) -> None:
    spec = KillSpec.parse(f"syscall:{call}:{n}")
    assert KillSpec.parse(str(spec)) == spec
    assert spec.plan(random.Random(0), 10) == {"kind": "syscall", "call": call, "nth": n}


def test_harness_errors_are_assertion_errors() -> None:
    assert issubclass(LostWritesError, CrashHarnessError)
    assert issubclass(CrashHarnessError, AssertionError)


def test_closing_a_session_mid_cycle_kills_the_running_workload(tmp_path: Path) -> None:
    import os

    from pytest_edge.crash.harness import CrashSession

    session = CrashSession(w.sleeper, w.recover, state_dir=tmp_path, seed=1)
    pid = session._server.spawn(
        "workload",
        {"state_dir": str(tmp_path), "record": str(tmp_path / "r"), "plan": {"kind": "none"}},
    )
    session.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_report_as_dict_is_json_ready(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.lossy_recover, state_dir=tmp_path, cycles=2, kill="acks:2")
    data = json.loads(json.dumps(report.as_dict()))
    assert data["ok"] is False
    assert data["failures"][0]["losses"][0]["key"] == "k1"
    assert data["cycles"][0]["kill_point"] == "after ack #2 ('k1')"


def test_timed_kill_before_the_child_started_is_a_crash_at_start_up(tmp_path: Path) -> None:
    report = H.run(
        w.safe_writer, w.recover, state_dir=tmp_path, cycles=3, kill="random-time:0.000001"
    )
    assert (report.cycles_run, report.acked_writes, report.failures) == (3, 0, [])


def test_a_run_that_acknowledged_nothing_is_inconclusive_not_a_pass(tmp_path: Path) -> None:
    # every kill before the first ack: nothing was checked, so the run cannot pass
    report = H.run(
        w.safe_writer, w.recover, state_dir=tmp_path, cycles=3, kill="random", random_events=1
    )
    assert (report.acked_writes, report.verdict, report.ok) == (0, "inconclusive", False)
    with pytest.raises(InconclusiveError, match=r"no write was acknowledged in 3 cycle\(s\)"):
        report.assert_ok()
    assert "raise random_events" in report.as_dict()["inconclusive"][0]


def test_hanging_recover_is_a_timeout_naming_the_cycle(tmp_path: Path) -> None:
    with pytest.raises(CrashTimeoutError, match=r"cycle 1 \(seed 7\): recover did not finish"):
        H.run(w.safe_writer, w.hanging_recover, state_dir=tmp_path, kill="acks:1", timeout=0.5)


def test_threads_started_at_import_are_warned_about(tmp_path: Path) -> None:
    from pytest_edge.crash import CrashHarnessWarning

    with pytest.warns(CrashHarnessWarning, match=r"started threads \['import-time-thread'\]"):
        H.run(
            "tests.crash.threaded_module:workload",
            "tests.crash.threaded_module:recover",
            state_dir=tmp_path,
            cycles=1,
        )


def test_ack_of_a_value_json_cannot_carry_is_a_workload_error(tmp_path: Path) -> None:
    with pytest.raises(
        WorkloadError,
        match=r"pytest_edge.ack\('tags', ...\): the value must "
        r"survive a JSON round trip",
    ):
        H.run(w.unserialisable_writer, w.recover, state_dir=tmp_path)
