"""Filesystem faults at the system-call layer: pytest started with the library (as
``pytest-edge run`` starts it) arms ``edge_faults`` in C, reaching what the Python layer
cannot; children the harness starts get the library; where it is missing, it says so.

One pytest run in a subprocess with the library preloaded holds the end-to-end cases (a
pytest start costs seconds on a loaded machine); the same file at the Python layer shows
what that layer misses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.launch import NOT_FOUND, launch_env, run
from pytest_edge.faults.layer import LIBRARY_NAME, chosen_layer, current_layer, header_line
from pytest_edge.syscalls import LIBRARY_NAME as SYSCALLS_LIBRARY_NAME
from pytest_edge.syscalls import SyscallLayerUnavailable, library, unavailable_reason

needs_library = pytest.mark.skipif(
    unavailable_reason() is not None,
    reason=f"the system-call library cannot be used here: {unavailable_reason()}",
)

# Each test says, in its last line, which layer it ran at and what it saw.
CASES = r'''
import concurrent.futures, json, os, sqlite3
import builtins
import pytest
from os import write as saved_write  # bound at import, as libraries do

_open = builtins.open  # a library's own reference to open (aiofiles keeps one)


def test_disk_full_fires_on_a_handle_opened_before_arming(edge_faults, tmp_path):
    f = open(tmp_path / "log", "wb", buffering=0)
    full = edge_faults.disk_full(tmp_path, free_bytes=4)
    try:
        assert f.write(b"1234") == 4
        with pytest.raises(OSError) as info:
            f.write(b"5")
    finally:
        f.close()
    assert info.value.errno == 28  # ENOSPC
    assert full.fires == 1


class InPlaceStore:
    """Keeps its file open and rewrites it in place: truncate, write, flush."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "w+")

    def save(self, data):
        self.f.seek(0)
        self.f.truncate()
        self.f.write(json.dumps(data))
        self.f.flush()

    def close(self):
        try:
            self.f.close()
        except OSError:
            pass  # the flush at close fails too on a full disk


def test_in_place_rewrite_under_disk_full_leaves_a_file_it_cannot_read(edge_faults, tmp_path):
    store = InPlaceStore(tmp_path / "state.json")
    try:
        store.save({"notes": ["a" * 40]})
        edge_faults.disk_full(tmp_path, free_bytes=0)  # what was truncated comes back, no more
        with pytest.raises(OSError):
            store.save({"notes": ["a" * 40, "b" * 40]})
    finally:
        store.close()
    with pytest.raises(ValueError):  # json.JSONDecodeError: caught, the store is unsafe
        json.loads((tmp_path / "state.json").read_text())


def test_io_error_reaches_a_reference_saved_at_import(edge_faults, tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    edge_faults.io_error(tmp_path)
    try:
        with pytest.raises(OSError) as info:
            saved_write(fd, b"x")
    finally:
        os.close(fd)
    assert info.value.errno == 5


def test_io_error_reaches_a_thread_pool_holding_its_own_open(edge_faults, tmp_path):
    edge_faults.io_error(tmp_path, on="write")

    def write_file():
        with _open(tmp_path / "a", "wb", buffering=0) as f:
            f.write(b"data")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(OSError):
            pool.submit(write_file).result()


@pytest.mark.parametrize(
    ("fault", "code"),
    [("disk_full", "SQLITE_FULL"), ("io_error_fsync", "SQLITE_IOERR_FSYNC")],
)
def test_sqlite_commit_fails_with_the_engines_own_error(edge_faults, tmp_path, fault, code):
    con = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("BEGIN")
    con.execute("INSERT INTO notes VALUES ('kept in the page cache until COMMIT')")
    if fault == "disk_full":
        edge_faults.disk_full(tmp_path)
    else:
        edge_faults.io_error(tmp_path, on="fsync")
    with pytest.raises(sqlite3.OperationalError) as info:
        con.execute("COMMIT")
    assert info.value.sqlite_errorname == code
    con.close()


def test_sqlite_retries_an_interrupted_write_itself(edge_faults, tmp_path):
    con = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    con.execute("CREATE TABLE notes (body TEXT)")
    eintr = edge_faults.io_error(tmp_path, errno="EINTR")
    con.execute("INSERT INTO notes VALUES ('x')")  # interrupted once, retried by SQLite
    assert con.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    assert eintr.fires == 1
    con.close()


def test_unfired_at_this_layer(edge_faults, tmp_path):
    edge_faults.read_only(tmp_path / "nothing-here")
'''


def _run_cases(pytester: pytest.Pytester, *args: str, subprocess: bool) -> pytest.RunResult:
    pytester.makepyfile(test_cases=CASES)
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run("-p", "no:randomly", "-p", "no:cacheprovider", "-W", "always::UserWarning", *args)


@needs_library
def test_pytest_started_with_the_library_faults_at_the_syscall_layer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_PRELOAD", launch_env(require=True)[0]["LD_PRELOAD"])
    result = _run_cases(pytester, subprocess=True)  # LD_PRELOAD acts when a process starts
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["pytest-edge faults: syscall layer (LD_PRELOAD)"])
    result.stdout.fnmatch_lines(
        [
            "*UnfiredFaultWarning: test_cases.py::test_unfired_at_this_layer: fault #1 "
            "read_only(path='*nothing-here') on '*' never fired: 0 calls reached it "
            "(syscall layer); the test never reached it: check the path*"
        ]
    )
    assert result.stdout.str().count("UnfiredFaultWarning:") == 1


def test_the_python_layer_misses_them_and_says_so(pytester: pytest.Pytester) -> None:
    result = _run_cases(pytester, "--edge-fault-layer=python", subprocess=False)
    out = result.stdout.str()
    # Each miss is a failing test or a fault that never fired: none passes silently.
    result.assert_outcomes(passed=1, failed=7)
    assert "pytest-edge faults: python layer (asked for: --edge-fault-layer=python" in out
    for name in (
        "test_disk_full_fires_on_a_handle_opened_before_arming",
        "test_in_place_rewrite_under_disk_full_leaves_a_file_it_cannot_read",
        "test_io_error_reaches_a_reference_saved_at_import",
        "test_io_error_reaches_a_thread_pool_holding_its_own_open",
    ):
        assert f"FAILED test_cases.py::{name}" in out
    assert "0 calls reached it (python layer); at the python layer, I/O through" in out


# -- the layer in use, its header and the fallback ---------------------------------------------


def test_the_cheap_check_names_the_same_file_as_the_binding() -> None:
    assert LIBRARY_NAME == SYSCALLS_LIBRARY_NAME


def test_without_the_library_in_ld_preload_the_python_layer_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if current_layer().syscall:
        pytest.skip("this pytest runs with the library (pytest-edge run)")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    if unavailable_reason() is None:
        assert header_line() == (
            "pytest-edge faults: python layer (pytest was not started with the syscall "
            "library; start it with: pytest-edge run -- pytest ARGS (see docs/faults.md))"
        )
    monkeypatch.setattr("pytest_edge.faults.layer.LIBRARY_NAME", "libmissing.so")
    assert "the syscall library is not built" in current_layer().why_not_syscall
    assert chosen_layer("python").describe().startswith("python layer (asked for:")


def test_ld_preload_naming_a_library_the_loader_did_not_load_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if current_layer().syscall:
        pytest.skip("this pytest runs with the library (pytest-edge run)")
    monkeypatch.setenv("LD_PRELOAD", f"/nowhere/{LIBRARY_NAME}")
    layer = current_layer()
    assert not layer.syscall
    assert "LD_PRELOAD names /nowhere/libedgeio.so but the dynamic loader did not load it" in (
        layer.why_not_syscall
    )


def test_asking_for_the_syscall_layer_without_it_is_a_usage_error_saying_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if current_layer().syscall:
        pytest.skip("this pytest runs with the library (pytest-edge run)")
    pytester.makepyfile("def test_x(): pass")
    monkeypatch.setenv("PYTEST_EDGE_FAULT_LAYER", "syscall")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*the PYTEST_EDGE_FAULT_LAYER environment variable=syscall: the system-call layer "
            "is not in use in this pytest: *"
        ]
    )
    with pytest.raises(SyscallLayerUnavailable, match=r"FaultInjector\(layer='syscall'\)"):
        FaultInjector(layer="syscall").disk_full(pytester.path)
    with pytest.raises(FaultArgumentError, match="layer='both': one of auto, python, syscall"):
        FaultInjector(layer="both")


def test_the_fallback_is_said_plainly_and_require_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(library, "_reason", lambda: "not built: no C compiler (simulated)")
    env, line, fallback = launch_env(require=False, env={"PATH": "/bin"})
    assert fallback
    assert "LD_PRELOAD" not in env
    assert line == (
        "pytest-edge run: the system-call library cannot be used (not built: no C compiler "
        "(simulated)); running the command without it: filesystem faults use the Python layer"
    )
    assert run(["pytest"], require=True) == 2
    assert capsys.readouterr().err == (
        "pytest-edge run --require: not built: no C compiler (simulated)\n"
    )
    with pytest.raises(SyscallLayerUnavailable, match="not built"):
        launch_env(require=True)


def test_run_refuses_no_command_and_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    assert run(["no-such-command-pytest-edge"]) == NOT_FOUND
    err = capsys.readouterr().err
    assert "pytest-edge run: error: no command: pytest-edge run -- pytest ARGS" in err
    assert "'no-such-command-pytest-edge': command not found" in err


@needs_library
def test_the_run_command_starts_a_process_with_the_library(tmp_path: Path) -> None:
    code = "from pytest_edge import syscalls; print(syscalls.active())"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edge.cli", "run", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )
    assert (done.returncode, done.stdout) == (0, "True\n")
    assert done.stderr == "pytest-edge run: syscall layer (LD_PRELOAD)\n"


# -- children the harness starts ------------------------------------------------------------


def child_layer() -> tuple[bool, str]:
    from pytest_edge import syscalls
    from pytest_edge.faults.layer import current_layer

    return syscalls.active(), current_layer().name


@needs_library
def test_isolated_children_start_with_the_library() -> None:
    # Scenario workloads run in these children too (their measured run).
    from pytest_edge.device.isolated import IsolationLimits, run_isolated

    outcome = run_isolated(child_layer, (), {}, IsolationLimits(None, None, watchdog=False))
    assert outcome.value == (True, "syscall")
