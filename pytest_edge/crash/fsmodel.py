"""What a power cut can leave on disk, rebuilt from a trace of Python-level file operations.

The model (after SQLite's crash VFS, ALICE and LazyFS): every file has durable bytes (last
fsync) and a list of data operations since then; each of those may be missing, present, or
torn at sector granularity (512 B or 4 KiB). Namespace operations (create, rename, unlink,
mkdir, rmdir) persist in order, as a journaling file system commits them, and become durable
only when a directory is fsynced; fsyncing a file does not make its directory entry durable.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTOR_SIZES = (512, 4096)
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
            for name in dirnames:
                dirs.add(os.path.normpath(os.path.join(base, name)))
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(base, name))
                with open(path, "rb") as f:
                    files[rel] = f.read()
                inodes[os.stat(path).st_ino] = rel
        return cls(files, frozenset(dirs), inodes)

    def write(self, root: Path) -> None:
        """Create this snapshot under *root* (which must be empty or absent)."""
        root.mkdir(parents=True, exist_ok=True)
        for rel in sorted(self.dirs):
            (root / rel).mkdir(parents=True, exist_ok=True)
        for rel, data in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


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
            for op in self.meta_pending:
                _replay_meta(self.durable_ns, self.durable_dirs, op)
            self.meta_pending.clear()
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


STATE_RECORDS = frozenset(
    {
        "open",
        "import",
        "write",
        "trunc",
        "fsync",
        "dirsync",
        "rename",
        "link",
        "unlink",
        "mkdir",
        "rmdir",
    }
)


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
