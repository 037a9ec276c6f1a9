"""The edge_faults fixture and edge_fault marker, end to end with pytester."""

from __future__ import annotations

import json

import pytest

from tests.markers import assert_bad_marker_errors_that_test_alone

LEAK_CHECK = """
import builtins, io, os, socket, sqlite3
import pytest

ORIGINALS = {
    "os.fsync": os.fsync, "os.replace": os.replace, "os.write": os.write,
    "builtins.open": builtins.open, "io.open": io.open, "sqlite3.connect": sqlite3.connect,
}


def check_clean():
    for name, value in ORIGINALS.items():
        module, attr = name.rsplit(".", 1)
        modules = {"os": os, "builtins": builtins, "io": io, "sqlite3": sqlite3}
        current = getattr(modules[module], attr)
        assert current is value, name
    assert "connect" not in socket.socket.__dict__
    from pytest_edge.faults.patching import active_sites
    assert active_sites() == []
"""


def test_fixture_arms_and_teardown_restores_even_after_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        LEAK_CHECK
        + """
def test_a_fails_with_faults_armed(edge_faults, tmp_path):
    edge_faults.fail("os.fsync", OSError(5, "Input/output error"))
    edge_faults.disk_full(tmp_path)
    edge_faults.sqlite(str(tmp_path / "x.db"), "ioerr")
    edge_faults.network("refused", port=1)
    with pytest.raises(OSError):
        os.fsync(0)
    assert False, "the test body fails"

def test_b_sees_originals():
    check_clean()

def test_c_errors_in_setup_after_arming(edge_faults, broken):
    pass

@pytest.fixture
def broken(edge_faults):
    edge_faults.fail("os.replace", OSError())
    raise RuntimeError("setup broke")

def test_d_sees_originals():
    check_clean()
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, errors=1)


def test_failing_report_lists_seed_and_fired_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import os

def test_fsync(edge_faults, tmp_path):
    edge_faults.io_error(tmp_path, on="fsync")
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

def test_passes(edge_faults):
    edge_faults.fail("os.fsync", OSError(), nth=99)
"""
    )
    result = pytester.runpytest(
        "--edge-seed=1234", "--edge-unfired-faults=ignore", "--edge-fault-layer=python"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- edge faults -*",
            "seed: 1234 (replay with --edge-seed=1234)",
            "armed (1):",
            "  #1 io_error(path=*, on='fsync') [[]python layer]: 1 call reached it, fired 1 time",
            "fired (1):",
            "  #1 io_error(*) call #1 at */f [[]python layer]: os.fsync: raised OSError(5, *)",
        ]
    )
    assert "nth=99" not in result.stdout.str()  # passing tests get no section


def test_marker_arms_a_fault_with_tmp_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import errno, os, pytest

@pytest.mark.edge_fault("disk_full", path="{tmp_path}", free_bytes=3)
def test_marker(tmp_path):
    with pytest.raises(OSError) as info:
        (tmp_path / "f").write_bytes(b"1234")
    assert info.value.errno == errno.ENOSPC

@pytest.mark.edge_fault("fail", "os.getcwd", OSError(5, "EIO"), nth=2)
def test_marker_positional(edge_faults):
    os.getcwd()
    with pytest.raises(OSError):
        os.getcwd()
    assert [e.call for e in edge_faults.fired] == [2]

def test_without_marker(tmp_path):
    (tmp_path / "f").write_bytes(b"1234")
"""
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('"explode"', "unknown fault kind 'explode'; use one of disk_full, io_error*"),
        (
            '"disk_ful", path="/x"',
            "unknown fault kind 'disk_ful' (did you mean 'disk_full'?); use one of*",
        ),
        (
            '"disk_full", paht="/x"',
            "disk_full has no option 'paht' (did you mean 'path'?); "
            "it takes disk_full(path, free_bytes=0)",
        ),
        ("", "the first argument must be the fault kind*"),
        (
            '"fail", "os.fsync", KeyboardInterrupt',
            "exc=<class 'KeyboardInterrupt'>: expected an exception instance*"
            "of an Exception subclass (KeyboardInterrupt, SystemExit*",
        ),
        (
            '"fail", "os.fsync", OSError(), nth=0',
            "nth=0: must be a whole number >= 1 (calls are numbered from 1)",
        ),
        (
            '"slow", "os.fsync", seconds=1e10',
            "seconds=10000000000.0: must be a number of seconds from 0 to 2147483647*",
        ),
    ],
)
def test_a_bad_marker_errors_that_test_alone_in_one_line(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    assert_bad_marker_errors_that_test_alone(
        pytester, f"edge_fault({marker})", f"@pytest.mark.edge_fault(*): {message}"
    )


def test_probability_replays_with_the_run_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import os

def test_draws(edge_faults):
    edge_faults.fail("os.getpid", OSError(), probability=0.5, times=None)
    hits = []
    for _ in range(40):
        try:
            os.getpid()
            hits.append("0")
        except OSError:
            hits.append("1")
    print("HITS", "".join(hits))
"""
    )

    def hits(*args: str) -> str:
        out = pytester.runpytest("-s", *args).stdout.str()
        return next(line.split("HITS", 1)[1] for line in out.splitlines() if "HITS" in line)

    assert hits("--edge-seed=7") == hits("--edge-seed=7")
    assert hits("--edge-seed=7") != hits("--edge-seed=8")


def test_no_leak_between_tests_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    body = LEAK_CHECK + "".join(
        f"""
def test_arm_{i}(edge_faults, tmp_path):
    edge_faults.fail("os.fsync", OSError(), times=None)
    edge_faults.read_only(tmp_path)
    edge_faults.sqlite(str(tmp_path / "db"), "ioerr")
    edge_faults.network("refused")
    assert os.fsync is not ORIGINALS["os.fsync"]
    if {i} % 2:
        raise AssertionError("failing on purpose")

def test_clean_{i}():
    check_clean()
"""
        for i in range(6)
    )
    pytester.makepyfile(body)
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "xdist", "--edge-seed=5", "--edge-report=report.json"
    )
    result.assert_outcomes(passed=9, failed=3)
    result.stdout.fnmatch_lines(["*seed: 5 (replay with --edge-seed=5)*"])
    # the workers' fault verdicts reach the controller's edge report
    report = json.loads((pytester.path / "report.json").read_text())
    (section,) = [s for s in report["sections"] if s["key"] == "faults"]
    tests = {v["test"].rsplit("::", 1)[1] for v in section["data"]["verdicts"]}
    assert tests == {f"test_arm_{i}" for i in range(6)}
    assert len(section["data"]["verdicts"]) == 24


def test_memory_pressure_moves_the_simulated_devices_view(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import psutil

def test_pressure(edge_faults):
    before = psutil.virtual_memory().available
    armed = edge_faults.memory_pressure(mb=1000)
    during = psutil.virtual_memory().available
    armed.disarm()
    after = psutil.virtual_memory().available
    # the simulated device's view; growth of this process moves it a little too
    assert 900 * 2**20 < before - during < 1100 * 2**20
    assert abs(after - before) < 100 * 2**20
"""
    )
    result = pytester.runpytest("--edge-profile=raspberry-pi-4-4gb")
    result.assert_outcomes(passed=1)


def test_marker_arms_sqlite_full_before_the_app_creates_its_database(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import sqlite3
import pytest

def start_app(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (body TEXT)")
    return con

@pytest.mark.edge_fault("sqlite", "{tmp_path}/app.db", "full")
def test_start_on_a_full_disk(tmp_path):
    assert not (tmp_path / "app.db").exists()
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        start_app(tmp_path / "app.db")
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
