"""Faults at the system-call layer: open handles, bound references, SQLite, space accounting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.syscalls.child import needs_library, ok

pytestmark = needs_library


def test_disk_full_fires_on_a_handle_opened_before_arming(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        fd = os.open(os.path.join(ROOT, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        write = os.write  # bound before arming, as a library that keeps its own reference
        with arm("disk_full", ROOT, free_bytes=10) as fault:
            out(first=write(fd, b"x" * 8))
            out(short=write(fd, b"y" * 8))  # 2 fit: the short count a full disk returns
            try:
                write(fd, b"z")
            except OSError as exc:
                out(then=errno.errorcode[exc.errno])
            out(calls=fault.calls, fired=fault.fired, free=fault.free_bytes)
        out(size=os.fstat(fd).st_size)
        """,
        tmp_path / "root",
    )
    assert r.out == {
        "first": 8,
        "short": 2,
        "then": "ENOSPC",
        "calls": 3,
        "fired": 2,
        "free": 0,
        "size": 10,
    }


def test_disk_full_truncate_and_unlink_give_space_back(tmp_path: Path) -> None:
    r = ok(
        """
        p = lambda name: os.path.join(ROOT, name)
        with arm("disk_full", ROOT, free_bytes=100) as fault:
            fd = os.open(p("a"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"a" * 60)
            out(after_write=fault.free_bytes)
            os.ftruncate(fd, 20)
            out(after_ftruncate=fault.free_bytes)
            os.pwrite(fd, b"b" * 10, 5)  # inside the file: takes nothing
            out(after_overwrite=fault.free_bytes)
            os.close(fd)
            os.truncate(p("a"), 0)
            out(after_truncate=fault.free_bytes)
            with open(p("b"), "wb") as f:
                f.write(b"c" * 70)
            out(after_b=fault.free_bytes)
            os.unlink(p("b"))
            out(after_unlink=fault.free_bytes)
            with open(p("c"), "wb") as f:
                f.write(b"d" * 100)  # all of it fits again
            out(fired=fault.fired)
        """,
        tmp_path / "root",
    )
    assert r.out == {
        "after_write": 40,
        "after_ftruncate": 80,
        "after_overwrite": 80,
        "after_truncate": 100,
        "after_b": 30,
        "after_unlink": 100,
        "fired": 0,
    }


def test_disk_full_only_under_its_path(tmp_path: Path) -> None:
    r = ok(
        """
        other = os.path.join(os.path.dirname(ROOT), "other")
        with arm("disk_full", ROOT, free_bytes=0) as fault:
            with open(other, "wb") as f:
                f.write(b"x" * 1000)
            out(calls=fault.calls, fired=fault.fired)
        """,
        tmp_path / "root",
    )
    assert r.out == {"calls": 0, "fired": 0}


def test_sqlite_full_at_commit_under_disk_full(tmp_path: Path) -> None:
    # WAL keeps a transaction's pages in memory until COMMIT writes them to the -wal file:
    # the full disk surfaces there, as SQLITE_FULL from the real engine.
    r = ok(
        """
        import sqlite3
        con = sqlite3.connect(os.path.join(ROOT, "db"), isolation_level=None)
        con.execute("pragma journal_mode=WAL")
        con.execute("create table t(x)")
        with arm("disk_full", ROOT, free_bytes=0) as fault:
            con.execute("begin")
            con.execute("insert into t values (randomblob(2000))")
            try:
                con.execute("commit")
                out(result="committed")
            except sqlite3.Error as exc:
                out(result=exc.sqlite_errorname)
            out(fired=fault.fired > 0)
        """,
        tmp_path / "root",
    )
    assert r.out == {"result": "SQLITE_FULL", "fired": True}


def test_sqlite_full_at_the_statement_in_rollback_journal_mode(tmp_path: Path) -> None:
    # A rollback journal is written when a page first changes: the INSERT itself fails.
    r = ok(
        """
        import sqlite3
        con = sqlite3.connect(os.path.join(ROOT, "db"), isolation_level=None)
        con.execute("create table t(x)")
        with arm("disk_full", ROOT, free_bytes=0):
            con.execute("begin")
            try:
                con.execute("insert into t values (randomblob(2000))")
                out(result="inserted")
            except sqlite3.Error as exc:
                out(result=exc.sqlite_errorname)
        """,
        tmp_path / "root",
    )
    assert r.out == {"result": "SQLITE_FULL"}


def test_sqlite_ioerr_under_io_error_on_fsync(tmp_path: Path) -> None:
    r = ok(
        """
        import sqlite3
        con = sqlite3.connect(os.path.join(ROOT, "db"))
        con.execute("pragma synchronous=FULL")
        con.execute("create table t(x)")
        con.commit()
        with arm("io_error", ROOT, on="fsync") as fault:
            con.execute("insert into t values (1)")
            try:
                con.commit()
                out(result="committed")
            except sqlite3.Error as exc:
                out(result=exc.sqlite_errorname)
            out(calls=fault.calls, fired=fault.fired)
        """,
        tmp_path / "root",
    )
    assert r.out == {"result": "SQLITE_IOERR_FSYNC", "calls": 1, "fired": 1}


def test_io_error_schedule_nth_every_times(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        fd = os.open(os.path.join(ROOT, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        failed = []
        with arm("io_error", ROOT, on="write", nth=2, every=3, times=2) as fault:
            for i in range(1, 12):
                try:
                    os.write(fd, b"x")
                except OSError as exc:
                    assert exc.errno == errno.EIO
                    failed.append(i)
            out(failed=failed, calls=fault.calls, fired=fault.fired)
        """,
        tmp_path / "root",
    )
    assert r.out == {"failed": [2, 5], "calls": 11, "fired": 2}


def test_io_error_probability_is_replayable_with_its_seed(tmp_path: Path) -> None:
    code = """
        fd = os.open(os.path.join(ROOT, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        failed = []
        with arm("io_error", ROOT, on="write", probability=0.3, times=None, seed="s1"):
            for i in range(1, 101):
                try:
                    os.write(fd, b"x")
                except OSError:
                    failed.append(i)
        out(failed=failed)
        """
    first = ok(code, tmp_path / "a").out["failed"]
    second = ok(code, tmp_path / "b").out["failed"]
    assert first == second
    assert 10 <= len(first) <= 50


def test_io_error_eintr_short_write_open_rename_read(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        p = lambda name: os.path.join(ROOT, name)
        fd = os.open(p("f"), os.O_RDWR | os.O_CREAT, 0o644)
        with arm("io_error", ROOT, on="write", errno="EINTR") as fault:
            # Python retries a call interrupted by EINTR (PEP 475), as after a real signal
            out(eintr=[os.write(fd, b"x"), fault.calls, fault.fired])
        with arm("io_error", ROOT, on="write", short_write=True):
            out(short=os.write(fd, b"abcdef"))
        with arm("io_error", ROOT, on="open"):
            try:
                open(p("g"), "wb")
            except OSError as exc:
                out(open=errno.errorcode[exc.errno])
        with arm("io_error", ROOT, on="rename"):
            try:
                os.replace(p("f"), p("h"))
            except OSError as exc:
                out(rename=errno.errorcode[exc.errno])
        with arm("io_error", ROOT, on="read"):
            try:
                os.pread(fd, 3, 0)
            except OSError as exc:
                out(read=errno.errorcode[exc.errno])
            out(second_read=os.pread(fd, 3, 0).decode())
        import ctypes  # C code built with _FORTIFY_SOURCE reads through __read_chk
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(3)
        with arm("io_error", ROOT, on="read"):
            out(read_chk=[libc.__read_chk(fd, buf, 3, 3), ctypes.get_errno()])
        """,
        tmp_path / "root",
    )
    assert r.out == {
        "eintr": [1, 2, 1],
        "short": 3,
        "open": "EIO",
        "rename": "EIO",
        "read": "EIO",
        "second_read": "xab",
        "read_chk": [-1, 5],
    }


def test_read_only(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        p = lambda name: os.path.join(ROOT, name)
        with open(p("f"), "wb") as f:
            f.write(b"data")
        fd = os.open(p("f"), os.O_WRONLY)
        results = {}
        def attempt(name, call):
            try:
                call()
                results[name] = "ok"
            except OSError as exc:
                results[name] = errno.errorcode[exc.errno]
        with arm("read_only", ROOT) as fault:
            attempt("read", lambda: open(p("f"), "rb").read())
            attempt("open_w", lambda: open(p("g"), "wb"))
            attempt("write", lambda: os.write(fd, b"x"))
            attempt("ftruncate", lambda: os.ftruncate(fd, 0))
            attempt("rename", lambda: os.rename(p("f"), p("h")))
            attempt("link", lambda: os.link(p("f"), p("h")))
            attempt("unlink", lambda: os.unlink(p("f")))
            attempt("mkdir", lambda: os.mkdir(p("d")))
            out(results=results, fired=fault.fired)
        """,
        tmp_path / "root",
    )
    results = r.out["results"]
    assert results.pop("read") == "ok"
    assert set(results.values()) == {"EROFS"}
    assert r.out["fired"] == len(results)


def test_slow_io_delays_the_picked_call(tmp_path: Path) -> None:
    r = ok(
        """
        import time
        fd = os.open(os.path.join(ROOT, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        with arm("slow_io", ROOT, seconds=0.2, on="fsync", nth=2) as fault:
            times = []
            for _ in range(3):
                t = time.monotonic()
                os.fsync(fd)
                times.append(time.monotonic() - t)
            out(second=times[1], calls=fault.calls, fired=fault.fired)
        """,
        tmp_path / "root",
    )
    # Only lower bounds are certain on a loaded machine: the picked (2nd) call slept its 0.2 s,
    # and the fault says it fired once in three calls.
    assert r.out["second"] >= 0.2
    assert (r.out["calls"], r.out["fired"]) == (3, 1)


def test_disarmed_fault_keeps_its_counts_and_stops_firing(tmp_path: Path) -> None:
    r = ok(
        """
        fd = os.open(os.path.join(ROOT, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        fault = arm("io_error", ROOT, on="write", times=None)
        for _ in range(2):
            try:
                os.write(fd, b"x")
            except OSError:
                pass
        fault.disarm()
        out(written=os.write(fd, b"y"), calls=fault.calls, fired=fault.fired, armed=fault.armed)
        """,
        tmp_path / "root",
    )
    assert r.out == {"written": 1, "calls": 2, "fired": 2, "armed": False}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("arm('nope', ROOT)", "unknown fault kind"),
        ("arm('io_error', ROOT, on='close')", "on='close'"),
        ("arm('io_error', ROOT, nth=0)", "nth=0"),
        ("arm('disk_full', ROOT, free_bytes=-1)", "free_bytes=-1"),
        ("arm('disk_full', ROOT, on='write')", "unknown option(s) on"),
        ("arm('io_error', ROOT, errno='ENOSPC')", "errno='ENOSPC'"),
        ("arm('slow_io', ROOT)", "seconds is required"),
        ("arm('io_error', ROOT, on='fsync', short_write=True)", "short_write=True"),
    ],
)
def test_bad_arguments_name_the_value(tmp_path: Path, call: str, message: str) -> None:
    r = ok(
        f"""
        from pytest_edge.errors import EdgeInputError
        try:
            {call}
        except EdgeInputError as exc:
            out(error=str(exc))
        """,
        tmp_path / "root",
    )
    assert message in r.out["error"]


def test_disk_full_o_trunc_rename_over_and_fallocate(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        p = lambda name: os.path.join(ROOT, name)
        for name in ("a", "b"):
            with open(p(name), "wb") as f:
                f.write(b"x" * 50)
        with arm("disk_full", ROOT, free_bytes=10) as fault:
            open(p("a"), "wb").close()  # O_TRUNC gives its 50 bytes back
            out(after_o_trunc=fault.free_bytes)
            with open(p("c"), "wb") as f:
                f.write(b"y" * 5)
            os.replace(p("c"), p("b"))  # b's 50 bytes go with it
            out(after_replace=fault.free_bytes)
            fd = os.open(p("d"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, 1000)
            except OSError as exc:
                out(fallocate=errno.errorcode[exc.errno], size=os.fstat(fd).st_size)
            os.posix_fallocate(fd, 0, 100)
            out(after_fallocate=fault.free_bytes)
        """,
        tmp_path / "root",
    )
    assert r.out == {
        "after_o_trunc": 60,
        "after_replace": 105,
        "fallocate": "ENOSPC",
        "size": 0,
        "after_fallocate": 5,
    }


def test_faults_reach_c_stdio_opens(tmp_path: Path) -> None:
    r = ok(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fopen.restype = ctypes.c_void_p
        with arm("read_only", ROOT) as fault:
            f = libc.fopen(os.path.join(ROOT, "x").encode(), b"w")
            out(opened=bool(f), errno=ctypes.get_errno(), fired=fault.fired)
        """,
        tmp_path / "root",
    )
    assert r.out == {"opened": False, "errno": 30, "fired": 1}  # EROFS


def test_disk_full_counts_a_pwrite_on_an_append_fd_at_the_end(tmp_path: Path) -> None:
    # Linux appends a pwrite on an O_APPEND fd whatever its offset: it grows the file
    r = ok(
        """
        p = os.path.join(ROOT, "log")
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        with arm("disk_full", ROOT, free_bytes=10) as fault:
            out(written=os.pwrite(fd, b"y" * 20, 0), free=fault.free_bytes)
        out(size=os.fstat(fd).st_size)
        """,
        tmp_path / "root",
    )
    assert r.out == {"written": 10, "free": 0, "size": 110}
