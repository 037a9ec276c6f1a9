"""The verdicts each library must get, read from its source (see docs/verdicts.md).

A verdict the harness gives must be explained by what the library does, so a failing verdict
also names the evidence the failure's trace must hold (the library's own writes, seen by the
layer that observed them), and a layer that cannot see a library's I/O is expected to be wrong
about it: that is recorded here as ``python_layer`` and turned into a strict xfail.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKLOADS = "tests.thirdparty.workloads"


@dataclass(frozen=True)
class Case:
    """One library, as an app uses it, and what the harness must say about it."""

    id: str
    workload: str
    recover: str
    #: power-loss verdict justified by the source: "pass" (0 acknowledged writes lost) or "fail"
    power_loss: str
    #: why, from the source
    why: str
    #: regexes a line of the failure's trace must match (a "fail" must be for this reason)
    evidence: tuple[str, ...] = ()
    #: regexes no line of the failure's trace may match
    absent: tuple[str, ...] = ()
    #: None when the Python-level layer gets it right; else why it cannot
    python_layer: str | None = None
    #: kill cycles: the kill lands before one of the first N events (traced calls and acks);
    #: a library that makes many calls before its first acknowledgement needs more
    kill_events: int = 200

    @property
    def workload_target(self) -> str:
        return f"{WORKLOADS}:{self.workload}"

    @property
    def recover_target(self) -> str:
        return f"{WORKLOADS}:{self.recover}"


SQLITE_UNSEEN = (
    "python layer: SQLite writes and syncs in C, so the trace holds none of its I/O and every "
    "page is dropped (a store with synchronous=FULL fails the same way)"
)

CASES = (
    Case(
        "sqlitedict",
        "run_sqlitedict",
        "recover_sqlitedict",
        "fail",
        "every connection runs PRAGMA synchronous=OFF: SQLite never calls fsync, so a commit "
        "that returned can vanish at a power cut",
        evidence=(r" write sqlitedict\.db(-journal)? ",),
        absent=(r" fsync ", r" dirsync "),
        python_layer=SQLITE_UNSEEN + "; it fails without seeing a single write",
    ),
    Case(
        "diskcache",
        "run_diskcache",
        "recover_diskcache",
        "fail",
        "WAL with sqlite_synchronous=1 (NORMAL): a commit appends to the WAL without fsync; "
        "only checkpoints sync",
        evidence=(r" write cache/cache\.db-wal ",),
        python_layer=SQLITE_UNSEEN + "; it fails without seeing a single write",
        kill_events=600,
    ),
    Case(
        "diskcache-full",
        "run_diskcache_full",
        "recover_diskcache",
        "pass",
        "sqlite_synchronous=2 (FULL) in WAL mode: every commit fsyncs the WAL, and SQLite "
        "fsyncs the directory after creating it; small values live inside SQLite",
        python_layer=SQLITE_UNSEEN,
    ),
    Case(
        "diskcache-full-large",
        "run_diskcache_full_large",
        "recover_diskcache",
        "fail",
        "values of 32 KiB and more go to their own file, written with open()/write() and "
        "never fsynced (nor its new directories): the committed row can point at a file "
        "that is missing or torn",
        evidence=(
            r" write cache/cache\.db-wal ",
            r" write cache/[0-9a-f]{2}/[0-9a-f]{2}/\w+\.val ",
        ),
        python_layer=SQLITE_UNSEEN + "; it sees the value files but not the rows",
    ),
    Case(
        "tinydb",
        "run_tinydb",
        "recover_tinydb",
        "fail",
        "the file is created by open(path, 'a') with no directory fsync, and every insert "
        "rewrites the whole file in place from offset 0 (fsync, then an unsynced truncate)",
        evidence=(r" (open|write) tinydb\.json",),
    ),
    Case(
        "tinydb-precreated",
        "run_tinydb_precreated",
        "recover_tinydb",
        "fail",
        "even on a file made durable first, each insert overwrites the file in place: a "
        "power cut during the rewrite leaves old and new bytes mixed, and the JSON no longer "
        "parses (every record is lost, not just the last)",
        evidence=(r" write tinydb\.json @0 ", r" fsync tinydb\.json"),
    ),
    Case(
        "atomicwrites",
        "run_atomicwrites",
        "recover_json",
        "pass",
        "mkstemp in the target's directory, write, flush, fsync, rename over the target, "
        "fsync of the directory",
        python_layer=(
            "python layer: atomicwrites binds os.fsync at import (_proper_fsync = os.fsync), "
            "so the trace holds no fsync and the renamed file is not durable"
        ),
    ),
    Case(
        "aiofiles",
        "run_aiofiles",
        "recover_json",
        "pass",
        "the app writes a temp file, flushes, fsyncs, aiofiles.os.replace()s it and fsyncs "
        "the directory",
        python_layer=(
            "python layer: aiofiles binds open (sync_open = open) and os.replace at import, so "
            "the trace holds neither the temp file's writes nor the rename"
        ),
    ),
)
