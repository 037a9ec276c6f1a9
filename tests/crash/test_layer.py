"""The crash children on the system-call layer: preloaded, traced, killed at system calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edge.crash import (
    CrashHarness,
    CrashHarnessError,
    CrashHarnessWarning,
    CrashReport,
    CycleResult,
    InconclusiveError,
    KillPointNotReachedError,
    LostWritesError,
)
from pytest_edge.crash import layer as layer_module
from pytest_edge.crash.fsmodel import SpecialFileError
from pytest_edge.crash.layer import Layer, LayerUnavailableError, choose
from pytest_edge.errors import EdgeInputError
from tests.crash import workloads as w

H = CrashHarness(seed=5)


def _reason() -> str | None:
    return layer_module._unavailable_reason()


needs_layer = pytest.mark.skipif(
    _reason() is not None, reason=f"system-call layer unavailable: {_reason()}"
)


# -- choosing the layer ---------------------------------------------------------------------


def test_bad_layer_names_the_value() -> None:
    with pytest.raises(EdgeInputError, match=r"layer='kernel': use one of 'auto', 'syscall'"):
        choose("kernel")


def test_unavailable_layer_falls_back_to_python_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layer_module, "_unavailable_reason", lambda: "not built (no compiler)")
    chosen = choose("auto")
    assert chosen == Layer("python", "system-call layer unavailable: not built (no compiler)")
    assert chosen.describe() == (
        "observed at: python (system-call layer unavailable: not built (no compiler))"
    )
    with pytest.raises(LayerUnavailableError, match=r"layer='syscall': .*not built"):
        choose("syscall")


def test_python_fallback_is_named_in_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(layer_module, "_unavailable_reason", lambda: "not Linux")
    report = H.run(
        w.safe_writer, w.recover, state_dir=tmp_path, cycles=1, mode="power-loss", kill="acks:2"
    )
    report.assert_ok()
    assert report.observed_at == "python"
    assert report.summary().endswith(
        "verdict pass; observed at: python (system-call layer unavailable: not Linux)"
    )
    assert report.as_dict()["observed_why"] == "system-call layer unavailable: not Linux"


def test_syscall_kill_points_need_the_syscall_layer(tmp_path: Path) -> None:
    with pytest.raises(LayerUnavailableError, match=r"kill='syscall:fsync:1': .*layer='python'"):
        H.run(w.safe_writer, w.recover, state_dir=tmp_path, kill="syscall:fsync:1", layer="python")


# -- verdicts ---------------------------------------------------------------------------------


def test_inconclusive_is_neither_pass_nor_fail() -> None:
    report = CrashReport(mode="power-loss", seed=1, observed_at="syscall")
    report.cycles.append(CycleResult(1, "k", "e", 3, inconclusive=True))
    report.inconclusive.append("m.bin in /s: writable shared mmap; ... inconclusive")
    assert (report.verdict, report.ok, report.lost_writes) == ("inconclusive", False, 0)
    with pytest.raises(InconclusiveError, match=r"inconclusive: m\.bin in /s: writable shared"):
        report.assert_ok()
    assert not isinstance(InconclusiveError("x"), LostWritesError)
    assert "verdict inconclusive; observed at: syscall" in report.summary()


# -- the state directory ----------------------------------------------------------------------


def test_a_state_directory_holding_a_symlink_is_refused_before_any_child_runs(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").symlink_to(outside)
    with pytest.raises(SpecialFileError, match=rf"{state / 'state.json'} is a symbolic link"):
        H.run(w.safe_writer, w.recover, state_dir=state, mode="kill")
    assert outside.read_text() == "{}"


# -- the system-call layer in the children ----------------------------------------------------


@needs_layer
def test_children_run_with_the_library_and_without_the_python_tracer(tmp_path: Path) -> None:
    # the probe acknowledges what it saw; recover finds nothing, so every key reaches the check
    report = H.run(
        w.layer_probe,
        w.recover,
        state_dir=tmp_path,
        cycles=1,
        mode="power-loss",
        kill="crashpoint:probed",
        check=_probe_check,
    )
    report.assert_ok()
    assert report.acked_writes == 3
    assert (report.observed_at, report.observed_why) == ("syscall", "")
    assert "observed at: syscall" in report.summary()


def _probe_check(key: str, acknowledged: object, recovered: object) -> bool:
    # a patched os.fsync or open would be the Python tracer's, not posix.fsync / io.open
    expected = {"active": True, "fsync": "posix.fsync", "open": "io.open"}
    assert acknowledged == expected[key], (key, acknowledged)
    return True


@needs_layer
@pytest.mark.parametrize("writer", [w.saved_ref_writer, w.late_import_writer, w.safe_writer])
def test_durable_writer_passes_however_it_reaches_os(fast_state_dir: Path, writer: object) -> None:
    report = H.run(
        writer,  # type: ignore[arg-type]
        w.recover,
        state_dir=fast_state_dir,
        cycles=8,
        mode="power-loss",
        random_events=60,
    )
    report.assert_ok()
    assert report.acked_writes > 8
    assert report.warnings == []


@needs_layer
def test_saved_references_escape_the_python_tracer_but_not_the_syscall_layer(
    fast_state_dir: Path,
) -> None:
    # what issue 12 measured: the Python layer misses writes and fsyncs through saved references
    with pytest.warns(CrashHarnessWarning, match=r"state\.json .* changed outside the trace"):
        report = H.run(
            w.saved_ref_writer,
            w.recover,
            state_dir=fast_state_dir / "python",
            cycles=3,
            mode="power-loss",
            kill="acks:3",
            layer="python",
        )
    assert not report.ok
    H.run(
        w.saved_ref_writer,
        w.recover,
        state_dir=fast_state_dir / "syscall",
        cycles=3,
        mode="power-loss",
        kill="acks:3",
    ).assert_ok()


@needs_layer
def test_kill_before_the_nth_fsync(tmp_path: Path) -> None:
    report = H.run(
        w.safe_writer,
        w.recover,
        state_dir=tmp_path,
        cycles=2,
        mode="power-loss",
        kill="syscall:fsync:3",
    )
    report.assert_ok()
    assert all(c.kill_point.startswith("syscall") for c in report.cycles), report.cycles
    # safe_writer fsyncs the temp file then the directory, per ack: the 3rd fsync is the
    # second write's temp file, so exactly one write was acknowledged before it
    assert [c.acks for c in report.cycles] == [1, 1]


@needs_layer
def test_kill_before_the_nth_write_in_kill_mode(tmp_path: Path) -> None:
    report = H.run(w.safe_writer, w.recover, state_dir=tmp_path, cycles=3, kill="syscall:write:2")
    report.assert_ok()
    assert [c.acks for c in report.cycles] == [1, 1, 1]


@needs_layer
def test_syscall_kill_point_never_reached(tmp_path: Path) -> None:
    with pytest.raises(KillPointNotReachedError, match=r"kill point 'syscall:any:100000'"):
        H.run(w.finite_writer, w.recover, state_dir=tmp_path, kill="syscall:100000")


@needs_layer
def test_writes_through_a_shared_map_make_the_verdict_inconclusive(tmp_path: Path) -> None:
    report = H.run(w.mmap_writer, w.mmap_recover, state_dir=tmp_path, cycles=3, mode="power-loss")
    assert report.verdict == "inconclusive"
    assert report.cycles_run == 1  # stops: every later cycle would be inconclusive too
    assert report.states_checked == 0
    (message,) = report.inconclusive
    assert message.startswith(f"counter.map in {tmp_path}: writable shared")
    with pytest.raises(InconclusiveError, match=r"counter\.map"):
        report.assert_ok()


@needs_layer
def test_a_template_the_library_cannot_be_loaded_into_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-libedgeio.so"
    monkeypatch.setattr(Layer, "preload", lambda self, env: {**env, "LD_PRELOAD": str(missing)})
    with pytest.raises(CrashHarnessError, match=r"could not be loaded into the crash tem") as e:
        H.run(w.safe_writer, w.recover, state_dir=tmp_path / "s", mode="power-loss")
    assert str(missing) in str(e.value)


def test_records_of_the_report_are_json_ready() -> None:
    report = CrashReport(mode="power-loss", seed=3, observed_at="syscall")
    report.cycles.append(CycleResult(1, "k", "e", 2, 10, 40))
    report.notes.append("kv.db-shm dropped")
    data = json.loads(json.dumps(report.as_dict()))
    assert (data["verdict"], data["notes"], data["observed_at"]) == (
        "pass",
        ["kv.db-shm dropped"],
        "syscall",
    )


@needs_layer
def test_nothing_outside_the_state_directory_is_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (tmp_path / "beside.json").write_text("{}")
    report = H.run(
        w.api_tour_writer, w.recover, state_dir=state, cycles=2, mode="power-loss", kill="acks:2"
    )
    report.assert_ok()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.json", "state"]
    assert (tmp_path / "beside.json").read_text() == "{}"
