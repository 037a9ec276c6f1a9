"""Recording at the system-call layer: each call family, paths, fds, kill points, threads."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.syscalls.child import needs_library, ok, run

pytestmark = needs_library


def test_os_write_pwrite_fsync_and_open_records(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            fd = os.open(os.path.join(ROOT, "a"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"hello")
            os.pwrite(fd, b"XY", 1)
            os.fsync(fd)
            os.fdatasync(fd)
            os.close(fd)
        """,
        tmp_path / "root",
    )
    opens = r.of("open")
    assert [o["path"] for o in opens] == ["a"]
    ino = opens[0]["ino"]
    writes = r.of("write")
    assert [(w["off"], base64.b64decode(w["data"]), w["ino"]) for w in writes] == [
        (0, b"hello", ino),
        (1, b"XY", ino),
    ]
    assert [w["sys"] for w in writes] == ["write", "pwrite64"]
    assert [(s["sys"], s["ino"]) for s in r.of("fsync")] == [("fsync", ino), ("fdatasync", ino)]
    # every record numbered 1, 2, 3, ... in call order (one thread)
    assert [rec["n"] for rec in r.records] == list(range(1, len(r.records) + 1))


def test_fileio_buffered_and_append(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            with open(os.path.join(ROOT, "f"), "wb") as f:
                f.write(b"abc")
            with open(os.path.join(ROOT, "f"), "ab", buffering=0) as f:
                f.write(b"de")
                f.write(b"fg")
        """,
        tmp_path / "root",
    )
    assert r.written("f") == b"abcdefg"
    assert [w["off"] for w in r.of("write")] == [0, 3, 5]


def test_writev_and_pwritev(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            fd = os.open(os.path.join(ROOT, "v"), os.O_RDWR | os.O_CREAT, 0o644)
            os.writev(fd, [b"ab", b"", b"cde"])
            os.pwritev(fd, [b"X", b"Y"], 1)
            os.close(fd)
        """,
        tmp_path / "root",
    )
    assert r.written("v") == b"aXYde"
    assert next(w["sys"] for w in r.of("write")) == "writev"


def test_replace_link_unlink_mkdir_rmdir_truncate(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            p = lambda name: os.path.join(ROOT, name)
            with open(p("tmp"), "wb") as f:
                f.write(b"data")
            os.replace(p("tmp"), p("final"))
            os.link(p("final"), p("hard"))
            os.truncate(p("hard"), 2)
            os.mkdir(p("d"))
            os.rmdir(p("d"))
            os.unlink(p("hard"))
        """,
        tmp_path / "root",
    )
    kinds = [(rec["t"], rec.get("path", rec.get("src"))) for rec in r.records]
    assert kinds[2:] == [
        ("rename", "tmp"),
        ("link", "final"),
        ("trunc", "hard"),
        ("mkdir", "d"),
        ("rmdir", "d"),
        ("unlink", "hard"),
    ]
    assert r.of("rename")[0]["dst"] == "final"
    assert r.of("trunc")[0]["size"] == 2


def test_directory_fsync_is_dirsync(tmp_path: Path) -> None:
    r = ok(
        """
        os.mkdir(os.path.join(ROOT, "sub"))
        with tracing(ROOT, REC):
            for d in (ROOT, os.path.join(ROOT, "sub")):
                fd = os.open(d, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        """,
        tmp_path / "root",
    )
    assert [(rec["t"], rec["path"]) for rec in r.records] == [
        ("opendir", "."),
        ("dirsync", "."),
        ("opendir", "sub"),
        ("dirsync", "sub"),
    ]


def test_paths_outside_the_root_are_ignored(tmp_path: Path) -> None:
    r = ok(
        """
        outside = os.path.join(os.path.dirname(ROOT), "outside")
        os.mkdir(outside)
        # a symlink inside the root to a directory outside it: its files are outside
        os.symlink(outside, os.path.join(ROOT, "link"))
        with tracing(ROOT, REC):
            for path in (os.path.join(outside, "x"), os.path.join(ROOT, "link", "y")):
                with open(path, "wb") as f:
                    f.write(b"no")
                    f.flush()
                    os.fsync(f.fileno())
            os.write(1, b"")
        """,
        tmp_path / "root",
    )
    assert r.records == []


def test_dir_fd_forms(tmp_path: Path) -> None:
    r = ok(
        """
        os.mkdir(os.path.join(ROOT, "d"))
        with tracing(ROOT, REC):
            dfd = os.open(os.path.join(ROOT, "d"), os.O_RDONLY)
            fd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dfd)
            os.write(fd, b"1")
            os.close(fd)
            os.rename("f", "g", src_dir_fd=dfd, dst_dir_fd=dfd)
            os.mkdir("e", dir_fd=dfd)
            os.rmdir("e", dir_fd=dfd)
            os.unlink("g", dir_fd=dfd)
            os.close(dfd)
        """,
        tmp_path / "root",
    )
    assert [(rec["t"], rec.get("path", rec.get("dst"))) for rec in r.records] == [
        ("opendir", "d"),
        ("open", "d/f"),
        ("write", "d/f"),
        ("rename", "d/g"),
        ("mkdir", "d/e"),
        ("rmdir", "d/e"),
        ("unlink", "d/g"),
    ]
    assert [rec["sys"] for rec in r.records][-4:] == ["renameat", "mkdirat", "unlinkat", "unlinkat"]


def test_fds_opened_before_tracing_and_dup(tmp_path: Path) -> None:
    r = ok(
        """
        import fcntl
        fd = os.open(os.path.join(ROOT, "early"), os.O_WRONLY | os.O_CREAT, 0o644)
        write = os.write  # a reference bound before tracing
        with tracing(ROOT, REC):
            write(fd, b"a")
            d = os.dup(fd)
            os.write(d, b"b")
            os.dup2(fd, 50)
            os.write(50, b"c")
            d2 = fcntl.fcntl(fd, fcntl.F_DUPFD, 60)
            os.write(d2, b"d")
            os.fsync(d2)
        """,
        tmp_path / "root",
    )
    assert r.written("early") == b"abcd"
    assert [w["sys"] for w in r.of("write")] == ["write"] * 4
    assert len(r.of("fsync")) == 1


def test_sqlite_writes_and_syncs_are_seen(tmp_path: Path) -> None:
    r = ok(
        """
        import sqlite3
        with tracing(ROOT, REC):
            con = sqlite3.connect(os.path.join(ROOT, "db"))
            con.execute("pragma synchronous=FULL")
            con.execute("create table t(x)")
            con.execute("insert into t values ('hello')")
            con.commit()
            con.close()
        """,
        tmp_path / "root",
    )
    paths = {rec["path"] for rec in r.of("write")}
    assert {"db", "db-journal"} <= paths
    synced = [rec["path"] for rec in r.of("fsync")]
    assert "db" in synced
    assert "db-journal" in synced
    assert b"hello" in r.written("db")
    assert ("unlink", "db-journal") in [(rec["t"], rec.get("path")) for rec in r.records]


def test_sqlite_wal_shm_is_an_unobserved_shared_map(tmp_path: Path) -> None:
    r = ok(
        """
        import sqlite3
        with tracing(ROOT, REC):
            con = sqlite3.connect(os.path.join(ROOT, "db"))
            con.execute("pragma journal_mode=WAL")
            con.execute("create table t(x)")
            con.commit()
            con.close()
        """,
        tmp_path / "root",
    )
    unobserved = r.of("unobserved")
    assert unobserved
    assert {u["path"] for u in unobserved} == {"db-shm"}
    assert unobserved[0]["why"] == "writable shared mmap"
    assert unobserved[0]["sys"] == "mmap64"


def test_mmap_shared_write_is_unobserved_private_is_not(tmp_path: Path) -> None:
    r = ok(
        """
        import mmap
        for name in ("shared", "private", "readonly"):
            with open(os.path.join(ROOT, name), "wb") as f:
                f.write(b"x" * 4096)
        with tracing(ROOT, REC):
            with open(os.path.join(ROOT, "shared"), "r+b") as f:
                m = mmap.mmap(f.fileno(), 0)
                m[0:1] = b"y"
                m.close()
            with open(os.path.join(ROOT, "private"), "r+b") as f:
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY).close()
            with open(os.path.join(ROOT, "readonly"), "rb") as f:
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ).close()
        """,
        tmp_path / "root",
    )
    assert [(u["path"], u["why"]) for u in r.of("unobserved")] == [
        ("shared", "writable shared mmap")
    ]


def test_copy_file_range_and_sendfile_record_the_bytes(tmp_path: Path) -> None:
    r = ok(
        """
        src = os.path.join(os.path.dirname(ROOT), "src")
        with open(src, "wb") as f:
            f.write(b"0123456789")
        with tracing(ROOT, REC):
            i = os.open(src, os.O_RDONLY)
            o = os.open(os.path.join(ROOT, "copy"), os.O_RDWR | os.O_CREAT, 0o644)
            os.write(o, b"AB")
            os.copy_file_range(i, o, 4, 2)  # 4 bytes from offset 2
            os.sendfile(o, i, 6, 3)
            os.close(i)
            os.close(o)
        """,
        tmp_path / "root",
    )
    assert r.written("copy") == b"AB2345678"
    assert [w["sys"] for w in r.of("write")] == ["write", "copy_file_range", "sendfile64"]


def test_copies_into_a_write_only_file_are_read_back_from_their_source(tmp_path: Path) -> None:
    r = ok(
        """
        import shutil
        src = os.path.join(os.path.dirname(ROOT), "src")
        with open(src, "wb") as f:
            f.write(bytes(range(256)) * 40)
        with tracing(ROOT, REC):
            shutil.copyfile(src, os.path.join(ROOT, "copy"))  # sendfile into an O_WRONLY fd
            i = os.open(src, os.O_RDONLY)
            o = os.open(os.path.join(ROOT, "cfr"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.lseek(i, 100, os.SEEK_SET)
            os.copy_file_range(i, o, 50)
            os.copy_file_range(i, o, 10, 7)
        """,
        tmp_path / "root",
    )
    assert r.of("unobserved") == []
    assert r.written("copy") == bytes(range(256)) * 40
    assert r.written("cfr") == bytes(range(100, 150)) + bytes(range(7, 17))


def test_stdio_stream_for_writing_is_unobserved(tmp_path: Path) -> None:
    # Python's own open() does not use stdio; ctypes reaches libc's fopen as C code does.
    r = ok(
        """
        import ctypes
        libc = ctypes.CDLL(None)
        libc.fopen.restype = ctypes.c_void_p
        libc.fclose.argtypes = [ctypes.c_void_p]
        with open(os.path.join(ROOT, "r"), "wb"):
            pass
        with tracing(ROOT, REC):
            for name, mode in (("w", b"w"), ("r", b"r")):
                f = libc.fopen(os.path.join(ROOT, name).encode(), mode)
                assert f
                libc.fclose(ctypes.c_void_p(f))
        """,
        tmp_path / "root",
    )
    assert [(u["path"], u["why"]) for u in r.of("unobserved")] == [("w", "stdio stream (FILE*)")]


def test_kill_before_the_nth_write(tmp_path: Path) -> None:
    r = run(
        """
        fd = os.open(os.path.join(ROOT, "k"), os.O_WRONLY | os.O_CREAT, 0o644)
        with tracing(ROOT, REC, kill_at=KillAt("write", 3)):
            for i in range(5):
                os.write(fd, b"%d" % i)
                out(wrote=i)
        """,
        tmp_path / "root",
    )
    assert r.returncode == -9
    assert r.out == {"wrote": 1}
    assert (tmp_path / "root" / "k").read_bytes() == b"01"
    assert r.records[-1]["t"] == "kill"
    assert r.records[-1]["why"] == "syscall: before call 3 (write of k)"
    assert r.records[-1]["n"] == 3


def test_kill_at_any_counts_every_traced_call(tmp_path: Path) -> None:
    r = run(
        """
        with tracing(ROOT, REC, kill_at=KillAt("any", 2)):
            fd = os.open(os.path.join(ROOT, "k"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x")
            out(after="write")
        """,
        tmp_path / "root",
    )
    assert r.returncode == -9
    assert r.out == {}
    assert [rec["t"] for rec in r.records] == ["open", "kill"]


def test_kill_in_sqlite_commit_between_journal_write_and_fsync(tmp_path: Path) -> None:
    r = run(
        """
        import sqlite3
        con = sqlite3.connect(os.path.join(ROOT, "db"))
        con.execute("create table t(x)")
        con.commit()
        with tracing(ROOT, REC, kill_at=KillAt("fsync", 1)):
            con.execute("insert into t values (1)")
            con.commit()
            out(committed=True)
        """,
        tmp_path / "root",
    )
    assert r.returncode == -9
    assert r.out == {}
    assert r.records[-1]["why"].endswith("(fsync of db-journal)")
    assert any(rec["t"] == "write" and rec["path"] == "db-journal" for rec in r.records)


def test_threads_writing_at_once_keep_records_whole(tmp_path: Path) -> None:
    r = ok(
        """
        import threading
        def work(k):
            fd = os.open(os.path.join(ROOT, f"t{k}"), os.O_WRONLY | os.O_CREAT, 0o644)
            for i in range(200):
                os.write(fd, bytes([65 + k]) * (1 + i % 50))
            os.fsync(fd)
            os.close(fd)
        with tracing(ROOT, REC):
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        """,
        tmp_path / "root",
    )
    numbers = sorted(rec["n"] for rec in r.records)
    assert numbers == list(range(1, len(r.records) + 1))  # every call once, none lost
    for k in range(4):
        expected = b"".join(bytes([65 + k]) * (1 + i % 50) for i in range(200))
        assert r.written(f"t{k}") == expected


def test_exec_child_starts_inert_and_untraced_process_records_nothing(tmp_path: Path) -> None:
    r = ok(
        """
        import subprocess
        with tracing(ROOT, REC):
            subprocess.run(
                [sys.executable, "-c", f"open({os.path.join(ROOT, 'x')!r}, 'wb').write(b'1')"],
                check=True,
            )
        out(active=active(), calls=traced_calls())
        """,
        tmp_path / "root",
    )
    assert r.records == []
    assert r.out == {"active": True, "calls": 0}


def test_errno_is_preserved_on_failed_calls(tmp_path: Path) -> None:
    r = ok(
        """
        import errno
        with tracing(ROOT, REC):
            try:
                os.open(os.path.join(ROOT, "missing", "x"), os.O_RDONLY)
            except FileNotFoundError:
                out(open="ENOENT")
            try:
                os.unlink(os.path.join(ROOT, "nothing"))
            except FileNotFoundError:
                out(unlink="ENOENT")
            try:
                os.write(12345, b"x")
            except OSError as exc:
                out(write=errno.errorcode[exc.errno])
        """,
        tmp_path / "root",
    )
    assert r.out == {"open": "ENOENT", "unlink": "ENOENT", "write": "EBADF"}
    assert r.records == []  # failed calls are not effects


@pytest.mark.parametrize("name", ["caf\u00e9", 'quo"te\\back', "bad\udcff"])
def test_odd_file_names_round_trip(tmp_path: Path, name: str) -> None:
    r = ok(
        f"""
        name = {name!r}
        with tracing(ROOT, REC):
            fd = os.open(os.path.join(ROOT, name), os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        """,
        tmp_path / "root",
    )
    assert [rec["path"] for rec in r.of("open")] == [name]


def test_rename_into_and_out_of_the_root(tmp_path: Path) -> None:
    r = ok(
        """
        outside = os.path.dirname(ROOT)
        with open(os.path.join(outside, "incoming"), "wb") as f:
            f.write(b"brought in")
        with open(os.path.join(ROOT, "leaving"), "wb") as f:
            f.write(b"x")
        with tracing(ROOT, REC):
            os.rename(os.path.join(outside, "incoming"), os.path.join(ROOT, "in"))
            os.rename(os.path.join(ROOT, "leaving"), os.path.join(outside, "gone"))
        """,
        tmp_path / "root",
    )
    imported, removed = r.records
    assert imported["t"] == "import"
    assert imported["path"] == "in"
    assert base64.b64decode(imported["data"]) == b"brought in"
    assert imported["ino"] == (tmp_path / "root" / "in").stat().st_ino
    assert (removed["t"], removed["path"]) == ("unlink", "leaving")


def test_sync_family_and_creat(tmp_path: Path) -> None:
    r = ok(
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        with tracing(ROOT, REC):
            fd = libc.creat(os.path.join(ROOT, "c").encode(), 0o644)
            assert fd >= 0
            os.write(fd, b"abc")
            assert libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(0), 2) == 0
            assert libc.syncfs(fd) == 0
            os.sync()
            os.posix_fallocate(fd, 0, 100)
            os.close(fd)
        """,
        tmp_path / "root",
    )
    assert [(rec["t"], rec["sys"]) for rec in r.records] == [
        ("open", "creat"),
        ("write", "write"),
        ("sfr", "sync_file_range"),
        ("syncfs", "syncfs"),
        ("syncfs", "sync"),
        ("trunc", "posix_fallocate64"),
    ]
    assert r.records[-1]["size"] == 100


def test_a_forked_child_inherits_tracing(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            pid = os.fork()
            if pid == 0:
                fd = os.open(os.path.join(ROOT, "from-child"), os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"c")
                os._exit(0)
            os.waitpid(pid, 0)
        """,
        tmp_path / "root",
    )
    assert [(rec["t"], rec["path"]) for rec in r.records] == [
        ("open", "from-child"),
        ("write", "from-child"),
    ]


def test_nothing_is_recorded_before_or_after_tracing(tmp_path: Path) -> None:
    r = ok(
        """
        def touch(name):
            with open(os.path.join(ROOT, name), "wb") as f:
                f.write(b"x")
        touch("before")
        with tracing(ROOT, REC):
            touch("during")
        touch("after")
        """,
        tmp_path / "root",
    )
    assert {rec["path"] for rec in r.records} == {"during"}


def test_records_survive_the_program_closing_its_record_fd(tmp_path: Path) -> None:
    r = ok(
        """
        import subprocess
        with tracing(ROOT, REC):
            os.close(REC)  # the library writes through its own duplicate
            with open(os.path.join(ROOT, "a"), "wb") as f:
                f.write(b"1")
            # an exec'd program does not inherit the library's descriptor
            fds = subprocess.run(
                ["ls", "/proc/self/fd"], capture_output=True, text=True, check=True
            ).stdout.split()
            out(inherited=len(fds))
        """,
        tmp_path / "root",
    )
    assert [rec["t"] for rec in r.records] == ["open", "write"]
    assert r.out["inherited"] <= 4  # 0, 1, 2 and ls's own directory fd


def test_fork_while_another_thread_traces_does_not_deadlock(tmp_path: Path) -> None:
    # The library's lock is taken around fork (pthread_atfork): a child never starts with it
    # held by a thread that does not exist in the child.
    r = ok(
        """
        import threading
        stop = threading.Event()
        def hammer():
            fd = os.open(os.path.join(ROOT, "busy"), os.O_WRONLY | os.O_CREAT, 0o644)
            while not stop.is_set():
                os.pwrite(fd, b"x" * 64, 0)
        with tracing(ROOT, REC):
            t = threading.Thread(target=hammer)
            t.start()
            for i in range(40):
                pid = os.fork()
                if pid == 0:
                    fd = os.open(os.path.join(ROOT, f"child{i}"), os.O_WRONLY | os.O_CREAT, 0o644)
                    os.write(fd, b"c")
                    os._exit(0)
                os.waitpid(pid, 0)
            stop.set()
            t.join()
        """,
        tmp_path / "root",
        timeout=60,
    )
    children = {rec["path"] for rec in r.of("write")} - {"busy"}
    assert children == {f"child{i}" for i in range(40)}


def test_a_write_to_an_o_dsync_file_is_also_an_fsync(tmp_path: Path) -> None:
    r = ok(
        """
        with tracing(ROOT, REC):
            fd = os.open(os.path.join(ROOT, "s"), os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o644)
            os.write(fd, b"durable")
            plain = os.open(os.path.join(ROOT, "p"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwritev(plain, [b"one"], 0, os.RWF_DSYNC)
            os.pwritev(plain, [b"two"], 3)
        """,
        tmp_path / "root",
    )
    assert [(rec["t"], rec["path"], rec["n"]) for rec in r.records[1:]] == [
        ("write", "s", 2),
        ("fsync", "s", 2),  # the same call: durable when it returned
        ("open", "p", 3),
        ("write", "p", 4),
        ("fsync", "p", 4),
        ("write", "p", 5),
    ]


def test_a_hard_link_from_outside_imports_the_file(tmp_path: Path) -> None:
    r = ok(
        """
        outside = os.path.join(os.path.dirname(ROOT), "o")
        with open(outside, "wb") as f:
            f.write(b"linked in")
        with tracing(ROOT, REC):
            os.link(outside, os.path.join(ROOT, "l"))
        """,
        tmp_path / "root",
    )
    (record,) = r.records
    assert (record["t"], record["path"], record["sys"]) == ("import", "l", "link")
    assert base64.b64decode(record["data"]) == b"linked in"
