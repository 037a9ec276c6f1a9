"""Every armed fault says whether it fired: the verdict, the warning, the option, the report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.faults import FaultInjector, FaultVerdict
from pytest_edge.faults.declarations import Schedule
from pytest_edge.faults.verdict import _eligible, may_not_fire

# The outer run's filterwarnings=error reaches pytester's in-process runs: show the warning
# (a filter naming the class would import pytest_edge before pytest's assertion rewriting);
# the Python layer's wording, also under pytest-edge run.
SHOW = ("-W", "always::UserWarning", "-p", "no:randomly", "--edge-fault-layer=python")

UNFIRED_TESTS = """
import os

def test_never_writes(edge_faults, tmp_path):
    edge_faults.disk_full(tmp_path)

def test_fills_the_disk(edge_faults, tmp_path):
    edge_faults.disk_full(tmp_path, free_bytes=2)
    try:
        (tmp_path / "f").write_bytes(b"1234")
    except OSError:
        pass

def test_fails_without_firing(edge_faults, tmp_path):
    edge_faults.io_error(tmp_path)
    assert False, "a failing test says what went wrong itself"
"""


def test_unfired_fault_is_a_warning_naming_fault_path_and_calls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNFIRED_TESTS)
    result = pytester.runpytest(*SHOW)
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert out.count("UnfiredFaultWarning:") == 1
    result.stdout.fnmatch_lines(
        [
            "*test_never_writes*",
            "*UnfiredFaultWarning: test_*.py::test_never_writes: fault #1 "
            "disk_full(path='*') on '*' never fired: 0 calls reached it "
            "(python layer); at the python layer, I/O through a file opened before arming*",
        ]
    )
    assert "test_fills_the_disk: fault" not in out
    assert "test_fails_without_firing: fault" not in out


@pytest.mark.parametrize(
    ("where", "value"),
    [("flag", "error"), ("ini", "error"), ("env", "ERROR")],
)
def test_option_makes_an_unfired_fault_a_teardown_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str, value: str
) -> None:
    pytester.makepyfile(UNFIRED_TESTS)
    args: list[str] = list(SHOW)
    if where == "flag":
        args.append(f"--edge-unfired-faults={value}")
    elif where == "ini":
        pytester.makeini(f"[pytest]\nedge_unfired_faults = {value}\n")
    else:
        monkeypatch.setenv("PYTEST_EDGE_UNFIRED_FAULTS", value)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_never_writes*",
            "test_*.py::test_never_writes: fault #1 disk_full(*) on '*' never fired: "
            "0 calls reached it*",
            "(--edge-unfired-faults=error; use warn or ignore to allow it)",
        ]
    )
    assert "UnfiredFaultWarning" not in result.stdout.str()


def test_ignore_and_a_bad_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNFIRED_TESTS)
    pytester.runpytest(*SHOW, "--edge-unfired-faults=ignore").assert_outcomes(passed=2, failed=1)
    bad = pytester.runpytest("--edge-unfired-faults=loud")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--edge-unfired-faults: 'loud' is not one of warn, error, ignore*"])


def test_probability_says_it_may_legitimately_not_fire(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import os

def test_rare(edge_faults):
    edge_faults.fail("os.getpid", OSError(), probability=0.0)
    for _ in range(3):
        os.getpid()
"""
    )
    result = pytester.runpytest(*SHOW)
    result.assert_outcomes(passed=1)
    assert result.stdout.str().count("UnfiredFaultWarning:") == 1
    result.stdout.fnmatch_lines(
        [
            "*fault #1 fail(target='os.getpid', exc=OSError(), probability=0.0) on 'os.getpid' "
            "never fired: 3 calls reached it (python layer); it may legitimately not fire: "
            "probability=0 over 3 eligible calls: it never fires with a chance of 100%*"
        ]
    )


def test_edge_report_lists_every_verdict(pytester: pytest.Pytester) -> None:
    # From xdist workers too: test_plugin.py::test_no_leak_between_tests_under_xdist.
    pytester.makepyfile(UNFIRED_TESTS)
    result = pytester.runpytest(*SHOW, "--edge-report=report.json")
    result.assert_outcomes(passed=2, failed=1)
    report = json.loads((pytester.path / "report.json").read_text())
    (section,) = [s for s in report["sections"] if s["key"] == "faults"]
    assert section["status"] == "warning"
    verdicts = {v["test"].rsplit("::", 1)[1]: v for v in section["data"]["verdicts"]}
    assert {name: (v["calls"], v["fired"], v["layer"]) for name, v in verdicts.items()} == {
        "test_never_writes": (0, 0, "python"),
        "test_fills_the_disk": (1, 1, "python"),
        "test_fails_without_firing": (0, 0, "python"),
    }
    rows = next(b for b in section["blocks"] if b.get("caption", "").startswith("Faults that"))
    assert [row[0].rsplit("::", 1)[1] for row in rows["rows"]] == [
        "test_never_writes",
        "test_fails_without_firing",
    ]


def test_header_names_the_layer(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["pytest-edge faults: * layer*"])


# -- the verdict itself, without pytest ---------------------------------------------------------


def test_sqlite_corrupt_damage_at_arming_is_not_a_fire(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _ in range(50)])
    con.commit()
    con.close()
    with FaultInjector() as faults:
        armed = faults.sqlite(db, "corrupt")
        assert armed.fired  # the damage is logged...
        assert armed.fires == 0  # ...but nothing read it yet
        assert armed.verdict().never_fired
        reader = sqlite3.connect(db)
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            reader.execute("SELECT count(*) FROM t WHERE x LIKE '%y%'").fetchall()
        reader.close()
        assert armed.fires == 1
        assert not armed.verdict().never_fired


def test_memory_pressure_is_in_effect_not_unfired() -> None:
    verdict = FaultVerdict(1, "memory_pressure", "memory", "python", 0, 0, "#1 mp")
    assert not verdict.never_fired
    assert verdict.line() == "#1 mp [python layer]: in effect while armed"


def test_verdict_round_trips_as_data() -> None:
    verdict = FaultVerdict(2, "io_error", "/x", "syscall", 5, 1, "#2 io_error(...)", "", "t::x")
    assert FaultVerdict.from_data(json.loads(json.dumps(verdict.to_data()))) == verdict


@given(
    calls=st.integers(0, 60),
    nth=st.none() | st.integers(1, 20),
    every=st.none() | st.integers(1, 7),
)
def test_eligible_calls_follow_the_schedule(calls: int, nth: int | None, every: int | None) -> None:
    schedule = Schedule(nth=nth, every=every)
    expected = sum(schedule.eligible(c) for c in range(1, calls + 1))
    assert _eligible(calls, schedule.first, every) == expected


def test_may_not_fire_reasons() -> None:
    assert may_not_fire({"nth": 5}, 3, 0) == (
        "its schedule picks call #5 first and only 3 calls came"
    )
    assert may_not_fire({"nth": 5}, 9, 1) == ""
    assert may_not_fire({}, 4, 0) == ""
    assert "a chance of 25%" in may_not_fire({"probability": 0.5}, 2, 0)
    assert "window=(1.0, 2.0)" in may_not_fire({"window": (1.0, 2.0)}, 2, 0)
