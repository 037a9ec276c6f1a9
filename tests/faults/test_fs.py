"""The filesystem faults' Python layer (patching ``os`` and ``open``), pinned with
``FaultInjector(layer="python")`` so these pass under ``pytest-edge run`` too; the syscall
layer's behaviour is tested in ``test_syscall_layer.py``."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.patching import active_sites

FS_CALLS = ("open", "fsync", "fdatasync", "write", "read", "replace", "rename", "unlink", "mkdir")


def originals() -> dict[str, object]:
    found: dict[str, object] = {"builtins.open": builtins.open, "io.open": io.open}
    found.update({f"os.{n}": getattr(os, n) for n in FS_CALLS if hasattr(os, n)})
    return found


def atomic_write(path: Path, data: bytes) -> None:
    """The crash-safe pattern: temp file, fsync, replace, directory fsync."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_disk_full_raises_enospc_at_the_write_that_crosses_the_quota(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        faults.disk_full(tmp_path, free_bytes=10)
        with open(tmp_path / "a.bin", "wb") as f:
            f.write(b"123456")
            with pytest.raises(OSError, match="No space left on device") as info:
                f.write(b"12345")  # 6 + 5 > 10
            f.write(b"1234")  # still fits: 10 bytes
        assert info.value.errno == errno.ENOSPC
        fd = os.open(tmp_path / "b.bin", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError, match="No space left") as raw:
                os.write(fd, b"x")  # quota shared by every file under the path
        finally:
            os.close(fd)
        assert raw.value.errno == errno.ENOSPC
    assert (tmp_path / "a.bin").read_bytes() == b"1234561234"
    events = faults.fired
    assert [e.call for e in events] == [2, 4]
    assert events[0].where == str((tmp_path / "a.bin").resolve())


@pytest.mark.parametrize(
    "free",
    [
        lambda p: os.unlink(p),
        lambda p: os.remove(p),
        lambda p: os.truncate(p, 2),
        lambda p: open(p, "w").close(),
        lambda p: os.close(os.open(p, os.O_WRONLY | os.O_TRUNC)),
        lambda p: os.replace(p.with_name("small"), p),
        lambda p: _ftruncate(p),
    ],
    ids=["unlink", "remove", "truncate", "open-w", "O_TRUNC", "replace", "file.truncate"],
)
def test_disk_full_gives_space_back_when_files_shrink_or_go(
    tmp_path: Path, free: Callable[[Path], None]
) -> None:
    target = tmp_path / "big"
    target.write_bytes(b"x" * 8)  # before arming: space the disk had already given
    (tmp_path / "small").write_bytes(b"")
    with FaultInjector(layer="python") as faults:
        full = faults.disk_full(tmp_path, free_bytes=8)
        (tmp_path / "a").write_bytes(b"y" * 8)
        with pytest.raises(OSError, match="No space left"):
            (tmp_path / "b").write_bytes(b"z")
        free(target)  # frees 6 or 8 bytes
        (tmp_path / "b").write_bytes(b"z" * 6)
        with pytest.raises(OSError, match="No space left"):
            (tmp_path / "c").write_bytes(b"z" * 3)
    assert full.fires == 2


def _ftruncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(2)


def test_disk_full_gives_nothing_back_for_a_file_with_another_link(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 8)
    os.link(tmp_path / "big", tmp_path / "other")
    with FaultInjector(layer="python") as faults:
        faults.disk_full(tmp_path, free_bytes=0)
        os.unlink(tmp_path / "big")  # the data stays, under "other"
        with pytest.raises(OSError, match="No space left"):
            (tmp_path / "b").write_bytes(b"z")


def test_disk_full_covers_text_mode_pathlib_json_and_tempfile(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        faults.disk_full(tmp_path)
        with pytest.raises(OSError, match="No space"):
            (tmp_path / "t.txt").write_text("hello")
        with pytest.raises(OSError, match="No space"), open(tmp_path / "j.json", "w") as f:
            json.dump({"a": 1}, f)
        with pytest.raises(OSError, match="No space"), tempfile.TemporaryFile(dir=tmp_path) as t:
            t.write(b"x")
        fd, _name = tempfile.mkstemp(dir=tmp_path)
        with pytest.raises(OSError, match="No space"), os.fdopen(fd, "wb") as g:
            g.write(b"x")
        # other directories are untouched
        other = Path(tempfile.gettempdir()) / f"edge-faults-other-{os.getpid()}"
        other.write_text("fine")
        other.unlink()
    assert len(faults.fired) == 4


def test_io_error_on_fsync_hits_the_file_then_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    with FaultInjector(layer="python") as faults:
        armed = faults.io_error(tmp_path, on="fsync", nth=2)
        with pytest.raises(OSError, match="Input/output error") as info:
            atomic_write(target, b"new")  # call 1 is the file, call 2 the directory
        assert armed.calls == 2
        assert armed.fired == faults.fired
    assert info.value.errno == errno.EIO
    assert faults.fired[0].where == str(tmp_path.resolve())
    assert target.read_bytes() == b"new"


def test_io_error_on_rename_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with FaultInjector(layer="python") as faults:
        faults.io_error(tmp_path, on="rename")
        with pytest.raises(OSError, match="Input/output error"):
            atomic_write(target, b"new")
        assert target.read_bytes() == b"old"
        (tmp_path / "state.tmp").rename(tmp_path / "x")  # times=1: the next rename works
    assert (tmp_path / "x").read_bytes() == b"new"


def test_io_error_on_write_and_read_with_counting(tmp_path: Path) -> None:
    (tmp_path / "r.txt").write_text("line1\nline2\n")
    with FaultInjector(layer="python") as faults:
        faults.io_error(tmp_path, on="write", every=2, times=None)
        with open(tmp_path / "w.bin", "wb") as f:
            f.write(b"a")
            with pytest.raises(OSError, match="Input/output error"):
                f.write(b"b")
            f.write(b"c")
            with pytest.raises(OSError, match="Input/output error"):
                f.writelines([b"d"])
        faults.io_error(tmp_path, on="read")
        with open(tmp_path / "r.txt") as f, pytest.raises(OSError, match="Input/output"):
            f.read()
        assert (tmp_path / "r.txt").read_text() == "line1\nline2\n"  # once only
    assert (tmp_path / "w.bin").read_bytes() == b"ac"


def test_read_only_refuses_every_change_but_allows_reads(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("data")
    (tmp_path / "d").mkdir()
    with FaultInjector(layer="python") as faults:
        faults.read_only(tmp_path)
        assert (tmp_path / "keep.txt").read_text() == "data"
        for change in (
            lambda: (tmp_path / "new.txt").write_text("x"),
            lambda: open(tmp_path / "keep.txt", "a"),  # noqa: SIM115
            lambda: os.open(tmp_path / "n2", os.O_CREAT | os.O_WRONLY),
            lambda: (tmp_path / "keep.txt").unlink(),
            lambda: (tmp_path / "d2").mkdir(),
            lambda: (tmp_path / "d").rmdir(),
            lambda: os.replace(tmp_path / "keep.txt", tmp_path / "moved.txt"),
        ):
            with pytest.raises(OSError, match="Read-only file system") as info:
                change()
            assert info.value.errno == errno.EROFS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "keep.txt"]
    assert len(faults.fired) == 7


def test_io_error_and_slow_io_on_open(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with FaultInjector(layer="python") as faults:
        failing = faults.io_error(tmp_path, on="open", every=2, times=None)
        (tmp_path / "f").read_bytes()  # call 1
        with pytest.raises(OSError, match="Input/output error"):
            (tmp_path / "f").read_bytes()  # call 2: reading too
        os.close(os.open(tmp_path / "f", os.O_RDONLY))  # call 3
        with pytest.raises(OSError, match="Input/output error"):
            os.open(tmp_path / "g", os.O_WRONLY | os.O_CREAT)  # call 4
        (tmp_path.parent / "elsewhere").write_bytes(b"")  # not under the path
        slow = faults.slow_io(tmp_path, 0.0, on="open")
        (tmp_path / "f").read_bytes()  # call 5 of both
    assert [e.call for e in failing.fired] == [2, 4]
    assert failing.calls == 5
    assert slow.fires == 1
    (tmp_path.parent / "elsewhere").unlink()


def test_eintr_at_the_python_layer_is_retried_as_python_does(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        armed = faults.io_error(tmp_path, errno="EINTR")
        (tmp_path / "f").write_bytes(b"data")  # Python retries an interrupted call (PEP 475)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert [e.effect for e in armed.fired] == ["write: EINTR, retried"]


def test_every_patch_is_undone_even_when_the_block_fails(tmp_path: Path) -> None:
    before = originals()

    def failing_block() -> None:
        with FaultInjector(layer="python") as faults:
            faults.disk_full(tmp_path)
            faults.read_only(tmp_path)
            for on in ("write", "fsync", "rename", "read", "open"):
                faults.io_error(tmp_path, on=on)
            assert originals() != before
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        failing_block()
    after = originals()
    assert all(after[name] is before[name] for name in before)
    assert active_sites() == []


def test_files_opened_elsewhere_are_not_wrapped(tmp_path: Path) -> None:
    (tmp_path / "faulty").mkdir()
    with FaultInjector(layer="python") as faults:
        faults.disk_full(tmp_path / "faulty")
        with open(tmp_path / "plain.txt", "w") as f:
            assert type(f) is io.TextIOWrapper
            f.write("ok")


def test_bad_arguments_name_the_argument(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        with pytest.raises(FaultArgumentError, match=r"on='flush': unknown; use one of 'write'"):
            faults.io_error(tmp_path, on="flush")
        with pytest.raises(FaultArgumentError, match=r"free_bytes=-1"):
            faults.disk_full(tmp_path, free_bytes=-1)
        with pytest.raises(FaultArgumentError, match=r"path=None: expected a file or directory"):
            faults.read_only(None)  # type: ignore[arg-type]
        with pytest.raises(FaultArgumentError, match=r"nth=0"):
            faults.io_error(tmp_path, nth=0)
    assert active_sites() == []


def test_read_only_covers_links_truncate_chmod_and_dir_fd_forms(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "keep.txt"
    target.write_text("data")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "leaf.txt").write_text("leaf")
    with FaultInjector(layer="python") as faults:
        faults.read_only(tmp_path)
        for change in (
            lambda: os.link(target, tmp_path / "hard"),
            lambda: os.symlink(target, tmp_path / "soft"),
            lambda: os.truncate(target, 0),
            lambda: os.chmod(target, 0o600),
            lambda: shutil.rmtree(tmp_path / "tree"),  # unlinks with dir_fd on Linux
        ):
            with pytest.raises(OSError, match="Read-only file system"):
                change()
    assert target.read_text() == "data"
    assert (tmp_path / "tree" / "leaf.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "tree"]


def test_each_handle_reports_only_its_own_events(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        on_write = faults.io_error(tmp_path, on="write")
        on_fsync = faults.io_error(tmp_path, on="fsync")
        with open(tmp_path / "f", "wb") as f:
            with pytest.raises(OSError, match="Input/output"):
                f.write(b"x")
            with pytest.raises(OSError, match="Input/output"):
                os.fsync(f.fileno())
    assert [e.effect.split(":")[0] for e in on_write.fired] == ["write"]
    assert [e.effect.split(":")[0] for e in on_fsync.fired] == ["os.fsync"]
    assert [e.index for e in faults.fired] == [on_write.index, on_fsync.index] == [1, 2]


def test_a_wrapped_file_can_be_copied_without_endless_recursion(tmp_path: Path) -> None:
    import copy

    with FaultInjector(layer="python") as faults:
        faults.disk_full(tmp_path, free_bytes=100)
        with open(tmp_path / "f", "wb") as f:
            clone = copy.copy(f)  # builds a half-initialised proxy first
            clone.write(b"ok")
    assert (tmp_path / "f").read_bytes() == b"ok"


def test_slow_io_delays_picked_calls_under_the_path_only(tmp_path: Path) -> None:
    import time

    (tmp_path / "slow").mkdir()
    with FaultInjector(layer="python") as faults:
        armed = faults.slow_io(tmp_path / "slow", 0.05, times=None)  # on="fsync" by default
        for directory, delayed in ((tmp_path / "slow", True), (tmp_path, False)):
            fd = os.open(directory / "f", os.O_WRONLY | os.O_CREAT)
            try:
                start = time.perf_counter()
                os.fsync(fd)
                elapsed = time.perf_counter() - start
            finally:
                os.close(fd)
            if delayed:
                assert elapsed >= 0.05
        faults.slow_io(tmp_path / "slow", 0.0, on="write", nth=2)
        with open(tmp_path / "slow" / "w", "wb") as f:
            f.write(b"a")
            f.write(b"b")
    assert [e.effect for e in armed.fired] == ["os.fsync: delayed 0.05 s"]
    assert [e.call for e in faults.fired if e.fault == "slow_io"] == [1, 2]
    assert (tmp_path / "slow" / "w").read_bytes() == b"ab"
    assert armed.calls == 1


def write_all(fd: int, data: bytes) -> None:
    """The correct pattern: os.write may write fewer bytes than asked; loop until done."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def test_short_write_writes_part_of_the_picked_os_write(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with FaultInjector(layer="python") as faults:
        armed = faults.io_error(tmp_path, short_write=True, nth=2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            assert os.write(fd, b"abcd") == 4
            assert os.write(fd, b"efghij") == 3  # a naive caller would lose "hij"
            write_all(fd, b"klmn")
        finally:
            os.close(fd)
    assert path.read_bytes() == b"abcdefgklmn"
    assert [(e.call, e.effect) for e in armed.fired] == [(2, "os.write: wrote 3 of 6 bytes")]


def test_short_write_is_harmless_to_code_that_loops(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with FaultInjector(layer="python") as faults:
        faults.io_error(tmp_path, short_write=True, times=None)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            write_all(fd, b"0123456789")
        finally:
            os.close(fd)
        assert len(faults.fired) >= 3
    assert path.read_bytes() == b"0123456789"


def test_short_write_reaches_unbuffered_files_not_buffered_ones(tmp_path: Path) -> None:
    with FaultInjector(layer="python") as faults:
        armed = faults.io_error(tmp_path, short_write=True, times=None)
        with open(tmp_path / "raw", "wb", buffering=0) as raw:
            assert raw.write(b"abcdef") == 3
        # Python's buffered layer finishes a short write itself, as it does on a real disk.
        with open(tmp_path / "buffered", "wb") as buffered:
            assert buffered.write(b"abcdef") == 6
        (tmp_path / "text").write_text("abcdef")
    assert (tmp_path / "raw").read_bytes() == b"abc"
    assert (tmp_path / "buffered").read_bytes() == b"abcdef"
    assert (tmp_path / "text").read_text() == "abcdef"
    assert armed.calls == 1


def test_short_write_applies_to_writes_only(tmp_path: Path) -> None:
    with (
        FaultInjector(layer="python") as faults,
        pytest.raises(FaultArgumentError, match=r"short_write=True: applies to on='write' only"),
    ):
        faults.io_error(tmp_path, on="fsync", short_write=True)
    with (
        FaultInjector(layer="python") as faults,
        pytest.raises(FaultArgumentError, match=r"short_write='yes': must be True or False"),
    ):
        faults.io_error(tmp_path, short_write="yes")  # type: ignore[arg-type]
