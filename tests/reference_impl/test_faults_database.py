"""EdgeDatabaseOptimizer under the sqlite fault family (notebook API only).

Every error must be a clear `sqlite3.DatabaseError` naming the engine's complaint, a batch is
all-or-nothing, and the optimizer works again once the fault is gone.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.faults import FaultInjector

db_module = pytest.importorskip(
    "reference_impl.database_optimization", reason="reference_impl.database_optimization not merged"
)

SEED_DOCS = 300


def optimizer(path: Path) -> Any:
    config = db_module.DatabaseConfig(
        db_path=str(path),
        connection_pool_size=2,
        enable_wal_mode=True,
        cache_size_mb=8,
        enable_mmap=True,
    )
    return db_module.EdgeDatabaseOptimizer(config)


def documents(tag: str, n: int, size: int = 40) -> list[dict[str, Any]]:
    return [
        {
            "title": f"{tag} note {i}",
            "content": f"{tag} " + "edge inference on small devices " * size,
            "type": "text",
            "metadata": {"batch": tag, "i": i},
        }
        for i in range(n)
    ]


def found(db: Any, tag: str) -> int:
    return len(db.search_documents(tag, limit=100_000))


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "edge.db"
    db = optimizer(path)
    try:
        assert db.batch_insert_documents(documents("seedbatch", SEED_DOCS)) == SEED_DOCS
    finally:
        db.close()
    return path


def test_full_raises_a_clear_error_keeps_no_half_batch_and_recovers(
    edge_faults: FaultInjector, seeded: Path
) -> None:
    edge_faults.sqlite(seeded, "full")
    db = optimizer(seeded)  # created after arming
    try:
        with pytest.raises(sqlite3.DatabaseError, match="database or disk is full"):
            db.batch_insert_documents(documents("zebrabatch", 400))
        assert found(db, "zebrabatch") == 0
        assert found(db, "seedbatch") == SEED_DOCS
        edge_faults.disarm()
        assert db.batch_insert_documents(documents("zebrabatch", 400)) == 400
        assert found(db, "zebrabatch") == 400
    finally:
        db.close()


def test_locked_raises_a_clear_error_and_recovers(edge_faults: FaultInjector, seeded: Path) -> None:
    locked = edge_faults.sqlite(seeded, "locked", busy_timeout=0.05)
    opening_error = ""
    try:
        db = optimizer(seeded)  # created after arming: opening may already need the lock
    except sqlite3.DatabaseError as exc:
        opening_error = str(exc)
    if opening_error:
        assert "database is locked" in opening_error
        locked.disarm()
        db = optimizer(seeded)
    else:
        try:
            with pytest.raises(sqlite3.DatabaseError, match="database is locked"):
                db.batch_insert_documents(documents("lockbatch", 5))
            assert found(db, "seedbatch") == SEED_DOCS  # WAL readers still read
            locked.disarm()
        except BaseException:
            db.close()
            raise
    try:
        assert db.batch_insert_documents(documents("lockbatch", 5)) == 5
        assert found(db, "lockbatch") == 5
    finally:
        db.close()


# The ioerr fault is armed never to fire: only so connections opened later see the lock.
@pytest.mark.filterwarnings("ignore::pytest_edge.faults.UnfiredFaultWarning")
def test_locked_batch_on_an_open_optimizer_rolls_back(
    edge_faults: FaultInjector, seeded: Path
) -> None:
    # A sqlite fault armed first makes connections opened from then on see later faults too.
    edge_faults.sqlite(seeded, "ioerr", nth=10**9)
    db = optimizer(seeded)
    try:
        locked = edge_faults.sqlite(seeded, "locked", busy_timeout=0.05)
        with pytest.raises(sqlite3.DatabaseError, match="database is locked"):
            db.batch_insert_documents(documents("lockbatch", 50))
        locked.disarm()
        assert found(db, "lockbatch") == 0
        assert db.batch_insert_documents(documents("lockbatch", 50)) == 50
    finally:
        db.close()


def test_ioerr_at_every_statement_is_clear_and_leaves_no_half_batch(seeded: Path) -> None:
    """Sweep the injected "disk I/O error" over every statement of open + insert + search."""
    outcomes: list[str] = []
    for nth in range(1, 80):
        tag = f"sweep{nth}x"
        with FaultInjector(seed=nth) as faults:
            armed = faults.sqlite(seeded, "ioerr", nth=nth)
            db = None
            try:
                db = optimizer(seeded)
                db.batch_insert_documents(documents(tag, 20, size=2))
                db.search_documents(tag, limit=100)
                db.get_database_stats()
            except sqlite3.DatabaseError as exc:
                outcomes.append(f"error: {exc}")
            else:
                outcomes.append("ok")
            finally:
                fired = bool(armed.fired)
                if db is not None:
                    db.close()
        assert fired == outcomes[-1].startswith("error"), outcomes[-1]
        assert outcomes[-1] == "ok" or "disk I/O error" in outcomes[-1], outcomes[-1]
        check = optimizer(seeded)
        try:
            assert found(check, tag) in (0, 20)  # all or nothing
        finally:
            check.close()
        if not fired:
            break
    else:
        pytest.fail("the sweep never got past the last statement")
    failed = sum(o.startswith("error") for o in outcomes)
    print(f"ioerr sweep: {failed} statements failed cleanly, then ok")
    assert failed >= 5
    assert outcomes[-1] == "ok"


def test_corrupt_page_gives_clear_errors_never_wrong_results(seeded: Path) -> None:
    clean = optimizer(seeded)
    try:
        expected = sorted(d["title"] for d in clean.search_documents("seedbatch", limit=1000))
    finally:
        clean.close()
    messages: list[str] = []
    for seed in range(6):
        with FaultInjector(seed=seed) as faults:
            faults.sqlite(seeded, "corrupt")
            db = None
            try:
                db = optimizer(seeded)
                got = sorted(d["title"] for d in db.search_documents("seedbatch", limit=1000))
                db.get_database_stats()
                assert got == expected  # no error means the damaged page was not read
            except sqlite3.DatabaseError as exc:
                messages.append(f"{getattr(exc, 'sqlite_errorname', '')} {exc}")
            finally:
                if db is not None:
                    db.close()
        recovered = optimizer(seeded)
        try:
            assert recovered.get_database_stats()["documents"] == SEED_DOCS
            assert found(recovered, "seedbatch") == SEED_DOCS
        finally:
            recovered.close()
    print(f"corrupt: {len(messages)} of 6 seeds hit the damaged page")
    assert messages
    # A damaged FTS5 shadow page reads "vtable constructor failed: ..." (SQLITE_CORRUPT).
    unclear = [m for m in messages if "malformed" not in m and "SQLITE_CORRUPT" not in m]
    assert unclear == []
    con = sqlite3.connect(seeded)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
