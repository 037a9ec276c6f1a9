"""What a power cut can leave on disk, rebuilt from a trace of file operations.

The trace comes from the system-call layer (`pytest_edge.syscalls`: every libc file call of
the child, C code included) or, where that layer is unavailable, from Python-level patches;
both write the same records. The model (after SQLite's crash VFS, ALICE and LazyFS): every
file has durable bytes (last fsync) and a list of data operations since then (byte ranges
written at offsets, truncations); each of those may be missing, present, or torn at sector
granularity (512 B or 4 KiB). Namespace operations (create, rename, link, unlink, mkdir,
rmdir) persist in order, as a journaling file system commits them, and become durable only
when a directory is fsynced; fsyncing a file does not make its directory entry durable.
``syncfs`` makes everything durable; ``sync_file_range`` does not make anything durable.

Files written through a writable shared map (or a ``FILE*`` stream the layer cannot see) are
recorded ``unobserved``: the model cannot know their content, so a verdict that depends on them
is inconclusive. The one exception is SQLite's wal-index (``*-shm``), which holds no durable
content and which SQLite rebuilds from the WAL after a crash
(https://sqlite.org/walformat.html): it is dropped from crash states.
"""

from __future__ import annotations

import base64
import os
import random
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_edge.errors import EdgeInputError

SECTOR_SIZES = (512, 4096)
SQLITE_HEADER = b"SQLite format 3\x00"
WAL_INDEX_NOTE = (
    "SQLite wal-index (a writable shared map, holds no durable content; SQLite rebuilds it "
    "from the WAL after a crash: https://sqlite.org/walformat.html)"
)
VARIANTS = ("nothing-pending", "all-pending", "metadata-only", "data-only")


@dataclass(frozen=True)
class Snapshot:
    """A directory's files and subdirectories (relative paths) and the inode of each file."""

    files: Mapping[str, bytes]
    dirs: frozenset[str]
    inodes: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path) -> Snapshot:
        files: dict[str, bytes] = {}
        dirs: set[str] = set()
        inodes: dict[int, str] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            base = os.path.relpath(dirpath, root)
            for name in (*dirnames, *filenames):
                refuse_special(os.path.join(dirpath, name))
            for name in dirnames:
                dirs.add(os.path.normpath(os.path.join(base, name)))
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(base, name))
                # A path swapped after the check is refused too, never followed or blocked on.
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        refuse_special(path)
                    with os.fdopen(fd, "rb", closefd=False) as f:
                        files[rel] = f.read()
                    inodes[st.st_ino] = rel
                finally:
                    os.close(fd)
        return cls(files, frozenset(dirs), inodes)

    def write(self, root: Path) -> None:
        """Create this snapshot under *root* (which must be empty or absent)."""
        for rel in (*self.dirs, *self.files):
            _check_inside(rel)
        root.mkdir(parents=True, exist_ok=True)
        for rel in sorted(self.dirs):
            (root / rel).mkdir(parents=True, exist_ok=True)
        for rel, data in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


class SpecialFileError(EdgeInputError):
    """The state directory holds a symlink, FIFO, socket or device file (the path is named)."""


_SPECIAL = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def refuse_special(path: str) -> None:
    """Raise `SpecialFileError` unless *path* is a regular file or a directory (not followed)."""
    mode = os.lstat(path).st_mode
    for test, what in _SPECIAL:
        if test(mode):
            raise SpecialFileError(
                f"crash harness: {path} is {what}; a state directory may hold only regular "
                "files and directories (the trace and the crash states never follow a path "
                "out of the state directory)"
            )


def check_state_dir(root: Path) -> None:
    """Refuse a state directory holding anything but regular files and directories."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            refuse_special(os.path.join(dirpath, name))


def _check_inside(rel: str) -> None:
    """A crash state is written only inside its own directory: no absolute or ``..`` path."""
    if os.path.isabs(rel) or ".." in rel.split(os.sep):
        raise EdgeInputError(
            f"crash harness: trace path {rel!r} leaves the state directory; refused"
        )


@dataclass
class _Inode:
    durable: bytes
    current: bytearray
    pending: list[tuple[str, int, bytes]]  # ("write", offset, data) | ("trunc", size, b"")


@dataclass(frozen=True)
class CrashState:
    """One state a power cut at trace position *cut* could leave, and how it was chosen."""

    cut: int
    variant: str
    snapshot: Snapshot
    detail: str


def _apply(content: bytearray, op: tuple[str, int, bytes]) -> None:
    kind, arg, data = op
    if kind == "trunc":
        if arg < len(content):
            del content[arg:]
        else:
            content.extend(bytes(arg - len(content)))
        return
    end = arg + len(data)
    if len(content) < arg:
        content.extend(bytes(arg - len(content)))
    content[arg:end] = data


def _apply_torn(
    content: bytearray, op: tuple[str, int, bytes], sector: int, rng: random.Random
) -> str:
    """Apply a random subset of the write's sectors; returns a description."""
    _, offset, data = op
    first, last = offset // sector, (offset + len(data) - 1) // sector
    sectors = list(range(first, last + 1))
    if len(sectors) == 1:
        if rng.random() < 0.5:
            _apply(content, op)
            return "present"
        return "missing"
    kept = [s for s in sectors if rng.random() < 0.5]
    if len(kept) in (0, len(sectors)):
        kept = sectors[: max(1, len(sectors) // 2)]
    for s in kept:
        lo, hi = max(offset, s * sector), min(offset + len(data), (s + 1) * sector)
        _apply(content, ("write", lo, data[lo - offset : hi - offset]))
    return f"torn ({len(kept)}/{len(sectors)} sectors of {sector} B)"


class FsModel:
    """Replays a trace over a snapshot, keeping what is durable and what is only pending."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._next = 0
        self.inodes: dict[int, _Inode] = {}
        self.by_real_ino: dict[int, int] = {}
        self.durable_ns: dict[str, int] = {}
        self.durable_dirs: set[str] = set(snapshot.dirs)
        for rel, data in snapshot.files.items():
            self.durable_ns[rel] = self._new(data)
        for real, rel in snapshot.inodes.items():
            self.by_real_ino[real] = self.durable_ns[rel]
        self.ns = dict(self.durable_ns)
        self.dirs = set(self.durable_dirs)
        self.meta_pending: list[tuple[str, str, str, int]] = []
        self.unknown: list[str] = []
        #: model inode -> (path, why) its writes cannot be seen (writable shared map, FILE*)
        self.unobserved: dict[int, tuple[str, str]] = {}

    def _new(self, data: bytes = b"") -> int:
        self._next += 1
        self.inodes[self._next] = _Inode(data, bytearray(data), [])
        return self._next

    def _meta(self, op: tuple[str, str, str, int]) -> None:
        self.meta_pending.append(op)
        _replay_meta(self.ns, self.dirs, op)

    def _data(self, inode: int, op: tuple[str, int, bytes]) -> None:
        node = self.inodes[inode]
        _apply(node.current, op)
        node.pending.append(op)

    def _inode_of(self, record: Mapping[str, Any]) -> int | None:
        inode = self.by_real_ino.get(int(record.get("ino", -1)))
        if inode is None and "path" in record:
            inode = self.ns.get(str(record["path"]))
        return inode

    def apply(self, record: Mapping[str, Any]) -> None:
        """Apply one trace record (records of other kinds are ignored)."""
        kind = record["t"]
        if kind == "open":
            path = str(record["path"])
            inode = self.ns.get(path)
            if inode is None:
                inode = self._new()
                self._meta(("create", path, "", inode))
            self.by_real_ino[int(record["ino"])] = inode
            if int(record["flags"]) & os.O_TRUNC:
                self._data(inode, ("trunc", 0, b""))
        elif kind == "import":
            inode = self._new()
            self.by_real_ino[int(record["ino"])] = inode
            self._data(inode, ("write", 0, base64.b64decode(record["data"])))
            self._meta(("create", str(record["path"]), "", inode))
        elif kind == "write":
            target = self._inode_of(record)
            if target is None:
                self.unknown.append(f"write to unknown file {record.get('path')}")
                return
            self._data(target, ("write", int(record["off"]), base64.b64decode(record["data"])))
        elif kind == "trunc":
            target = self._inode_of(record)
            if target is not None:
                self._data(target, ("trunc", int(record["size"]), b""))
        elif kind == "fsync":
            target = self._inode_of(record)
            if target is not None:
                node = self.inodes[target]
                node.durable = bytes(node.current)
                node.pending.clear()
        elif kind == "dirsync":
            self._meta_durable()
        elif kind == "syncfs":
            for node in self.inodes.values():
                node.durable = bytes(node.current)
                node.pending.clear()
            self._meta_durable()
        elif kind == "unobserved":
            target = self._inode_of(record)
            if target is not None:
                why = str(record.get("why", "not observable"))
                self.unobserved.setdefault(target, (str(record.get("path", "?")), why))
        elif kind == "rename":
            self._meta(("rename", str(record["src"]), str(record["dst"]), 0))
        elif kind == "link":
            self._meta(("link", str(record["src"]), str(record["dst"]), 0))
        elif kind == "unlink":
            self._meta(("unlink", str(record["path"]), "", 0))
        elif kind == "mkdir":
            self._meta(("mkdir", str(record["path"]), "", 0))
        elif kind == "rmdir":
            self._meta(("rmdir", str(record["path"]), "", 0))

    def _meta_durable(self) -> None:
        for op in self.meta_pending:
            _replay_meta(self.durable_ns, self.durable_dirs, op)
        self.meta_pending.clear()

    def wal_index(self, path: str) -> bool:
        """Whether *path* is SQLite's wal-index: ``X-shm`` beside an SQLite database ``X``."""
        if not path.endswith("-shm"):
            return False
        db = self.ns.get(path[: -len("-shm")])
        return db is not None and bytes(self.inodes[db].current[:16]) == SQLITE_HEADER

    def unobserved_files(self) -> dict[str, str]:
        """Files (path when recorded) whose content the trace cannot know, and why.

        SQLite's wal-index is not among them: it is dropped from crash states instead.
        """
        return {path: why for path, why in self.unobserved.values() if not self.wal_index(path)}

    def dropped_files(self) -> list[str]:
        """Files left out of every crash state: SQLite wal-indexes (no durable content)."""
        seen = {path for path, _ in self.unobserved.values()} | set(self.ns)
        return sorted(path for path in seen if self.wal_index(path))

    def current(self) -> Snapshot:
        """What the files look like to the running program (every operation applied)."""
        files = {p: bytes(self.inodes[i].current) for p, i in self.ns.items()}
        return Snapshot(files, frozenset(self.dirs))

    def crash_state(self, cut: int, variant: str, rng: random.Random) -> CrashState:
        """Build one state a power cut now could leave, following *variant*."""
        meta = self.meta_pending
        if variant in ("nothing-pending", "data-only"):
            keep_meta = 0
        elif variant in ("all-pending", "metadata-only"):
            keep_meta = len(meta)
        else:
            keep_meta = rng.randint(0, len(meta))
        ns = dict(self.durable_ns)
        dirs = set(self.durable_dirs)
        for op in meta[:keep_meta]:
            _replay_meta(ns, dirs, op)
        notes = [f"metadata ops persisted: {keep_meta}/{len(meta)}"]
        sector = rng.choice(SECTOR_SIZES)
        files: dict[str, bytes] = {}
        for path, inode in sorted(ns.items()):
            if self.wal_index(path):
                notes.append(f"{path}: dropped (SQLite wal-index)")
                continue
            node = self.inodes[inode]
            content = bytearray(node.durable)
            fates: list[str] = []
            for data_op in node.pending:
                if variant in ("nothing-pending", "metadata-only"):
                    fates.append("missing")
                elif variant in ("all-pending", "data-only"):
                    _apply(content, data_op)
                    fates.append("present")
                else:
                    roll = rng.random()
                    if roll < 0.3:
                        fates.append("missing")
                    elif roll < 0.6 or data_op[0] == "trunc":
                        _apply(content, data_op)
                        fates.append("present")
                    else:
                        fates.append(_apply_torn(content, data_op, sector, rng))
            if fates:
                notes.append(f"{path}: unsynced ops " + ", ".join(fates))
            files[path] = bytes(content)
        return CrashState(cut, variant, Snapshot(files, frozenset(dirs)), "; ".join(notes))


def _replay_meta(ns: dict[str, int], dirs: set[str], op: tuple[str, str, str, int]) -> None:
    kind, a, b, inode = op
    if kind == "create":
        ns[a] = inode
    elif kind == "link":
        if a in ns:
            ns[b] = ns[a]
    elif kind == "unlink":
        ns.pop(a, None)
    elif kind == "mkdir":
        dirs.add(a)
    elif kind == "rmdir":
        dirs.discard(a)
    elif kind == "rename":
        if a in ns:
            ns[b] = ns.pop(a)
        elif a in dirs:
            prefix = a + os.sep
            for path in [p for p in ns if p.startswith(prefix)]:
                ns[b + os.sep + path[len(prefix) :]] = ns.pop(path)
            for d in [d for d in dirs if d == a or d.startswith(prefix)]:
                dirs.discard(d)
                dirs.add(b + d[len(a) :])


#: Record kinds of the traced filesystem calls that change state, in the order error messages
#: list them (``syscall:CALL:N`` kill points name one of them).
CALL_RECORDS = (
    "open",
    "write",
    "trunc",
    "fsync",
    "dirsync",
    "syncfs",
    "rename",
    "link",
    "unlink",
    "mkdir",
    "rmdir",
)
#: Every record kind that changes the files' state: the calls, and a file that existed before the
#: trace began ("import").
STATE_RECORDS = frozenset({"import", *CALL_RECORDS})


def cut_positions(records: Sequence[Mapping[str, Any]]) -> list[int]:
    """Trace positions worth cutting at: the start, and after every state change or ack."""
    cuts = [0]
    for i, record in enumerate(records):
        if record["t"] in STATE_RECORDS or record["t"] in ("ack", "intent"):
            cuts.append(i + 1)
    return cuts


def iter_states(
    snapshot: Snapshot,
    records: Sequence[Mapping[str, Any]],
    chosen: Sequence[tuple[int, str]],
    seed: str,
) -> Iterator[tuple[CrashState, FsModel]]:
    """Build the chosen (cut, variant) states, replaying the trace once in order."""
    model = FsModel(snapshot)
    by_cut: dict[int, list[str]] = {}
    for cut, variant in chosen:
        by_cut.setdefault(cut, []).append(variant)
    position = 0
    for cut in sorted(by_cut):
        while position < cut:
            model.apply(records[position])
            position += 1
        for variant in by_cut[cut]:
            rng = random.Random(f"{seed}:{cut}:{variant}")  # noqa: S311 - seeded replay, not crypto
            yield model.crash_state(cut, variant, rng), model
