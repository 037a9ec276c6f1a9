"""reference_impl.database_optimization: the chapter's cells 8-9, the pool, batches, search."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_impl.database_optimization import (
    BatchInsertError,
    DatabaseConfig,
    DimensionMismatchError,
    EdgeDatabaseError,
    EdgeDatabaseOptimizer,
    InvalidRowError,
    PoolClosedError,
    PoolTimeoutError,
    _prefix_upper_bound,
    fts5_query,
)
from tests.reference_impl.fakes import FailingCommit
from tests.reference_impl.notebook import REFERENCE_IMPL, run_cells

ROOT = REFERENCE_IMPL.parent


def _docs(
    n: int, start: int = 0, words: str = "edge devices run small models"
) -> list[dict[str, Any]]:
    return [
        {
            "title": f"Doc {i}",
            "content": f"{words} number {i}",
            "type": "text",
            "metadata": {"i": i},
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EdgeDatabaseOptimizer]:
    with EdgeDatabaseOptimizer(
        DatabaseConfig(db_path=tmp_path / "t.db", connection_pool_size=3, pool_timeout_s=2)
    ) as optimizer:
        yield optimizer


@pytest.fixture
def patch_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[sqlite3.Connection], None]], None]:
    """Wrap sqlite3.connect so every connection opened afterwards gets ``hook`` applied."""

    def install(hook: Callable[[sqlite3.Connection], None]) -> None:
        original = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = original(*args, **kwargs)
            hook(conn)
            return conn

        monkeypatch.setattr(sqlite3, "connect", connect)

    return install


def _count(db: EdgeDatabaseOptimizer) -> tuple[int, int]:
    stats = db.get_database_stats()
    return stats["documents"], stats["embeddings"]


# --- the notebook -------------------------------------------------------------------------


def test_notebook_cells_8_and_9_run_unchanged_and_leave_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the cell's NamedTemporaryFile
    namespace = run_cells([8, 9], tmp_path, namespace={"time": time})
    out = capsys.readouterr().out
    assert "Database initialized with 5 connections" in out
    assert "Inserted 100 documents" in out
    assert "Inserted 100 embeddings" in out
    assert "Found 5 documents:" in out
    assert "1. Document " in out
    assert "machine le..." in out
    assert "Found 5 embeddings:" in out
    assert "embed_0 - b'embedding_data_0'" in out
    assert "  documents: 100" in out
    assert "  embeddings: 100" in out
    assert "  journal_mode: WAL" in out
    assert "  pool_size: 5" in out
    db_path = Path(namespace["db_path"])
    assert db_path.parent == tmp_path
    finalizer = namespace["db_optimizer"]._finalizer
    assert finalizer.alive  # cell 9 deleted the file while the optimizer was still open
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace.clear()
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert not finalizer.alive
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(db_path.name)]
    assert leftovers == []


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"connection_pool_size": 0}, r"connection_pool_size must be an integer >= 1, got 0"),
        ({"connection_pool_size": True}, r"connection_pool_size must be an integer >= 1"),
        (
            {"cache_size_mb": -1},
            r"cache_size_mb must be a number >= 0 \(MiB per connection\), got -1",
        ),
        ({"cache_size_mb": float("nan")}, r"cache_size_mb must be a number >= 0"),
        ({"busy_timeout_ms": -5}, r"busy_timeout_ms must be an integer >= 0"),
        ({"pool_timeout_s": -0.1}, r"pool_timeout_s must be a number >= 0"),
        ({"mmap_size_mb": -1}, r"mmap_size_mb must be an integer >= 0"),
        ({"synchronous": "SOMETIMES"}, r"synchronous must be one of OFF, NORMAL, FULL, EXTRA"),
        ({"enable_wal_mode": "yes"}, r"enable_wal_mode must be True or False"),
        ({"db_path": ":memory:"}, r"db_path must be a path to a database file, got ':memory:'"),
        ({"db_path": 42}, r"db_path must be a file path"),
    ],
)
def test_bad_config_names_field_and_allowed_range(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"db_path": "x.db", **kwargs}
    with pytest.raises(ValueError, match=message):
        DatabaseConfig(**values)


def test_pragmas_are_applied_to_pooled_connections(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "p.db", cache_size_mb=8, busy_timeout_ms=1234)
    with EdgeDatabaseOptimizer(config) as db, db.pool.connection("test") as conn:

        def pragma(name: str) -> Any:
            return conn.execute(f"PRAGMA {name}").fetchone()[0]

        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("cache_size") == -8 * 1024
        assert pragma("busy_timeout") == 1234
        assert pragma("mmap_size") > 0


def test_wal_can_be_disabled_and_mmap_off(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "d.db", enable_wal_mode=False, enable_mmap=False)
    with EdgeDatabaseOptimizer(config) as db:
        stats = db.get_database_stats()
    assert stats["journal_mode"] == "DELETE"
    assert stats["mmap_size_bytes"] == 0


@pytest.mark.parametrize(
    ("kwargs", "chosen", "pragma_value"),
    [
        ({}, "NORMAL", 1),
        ({"durable": True}, "FULL", 2),
        ({"durable": True, "enable_wal_mode": False}, "EXTRA", 3),
        ({"durable": True, "synchronous": "EXTRA"}, "EXTRA", 3),
        ({"synchronous": "OFF"}, "OFF", 0),
    ],
)
def test_durable_picks_the_setting_sqlite_documents_as_durable(
    tmp_path: Path, kwargs: dict[str, Any], chosen: str, pragma_value: int
) -> None:
    config = DatabaseConfig(db_path=tmp_path / "s.db", **kwargs)
    assert config.synchronous == chosen
    with EdgeDatabaseOptimizer(config) as db:
        with db.pool.connection("test") as conn:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == pragma_value
        assert db.get_database_stats()["synchronous"] == chosen


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"synchronous": "NORMAL"},
            r"synchronous='NORMAL' with durable=True: with WAL only FULL or EXTRA keeps",
        ),
        (
            {"synchronous": "FULL", "enable_wal_mode": False},
            r"synchronous='FULL' with durable=True: with a rollback journal only EXTRA keeps",
        ),
        ({"synchronous": "OFF"}, r"synchronous='OFF' with durable=True"),
    ],
)
def test_durable_refuses_a_synchronous_setting_too_weak_for_it(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DatabaseConfig(db_path="x.db", durable=True, **kwargs)


def test_durable_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match=r"durable must be True or False, got 'yes'"):
        DatabaseConfig(db_path="x.db", durable="yes")  # type: ignore[arg-type]


# --- pool ---------------------------------------------------------------------------------


def test_pool_times_out_with_a_clear_error_when_exhausted(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "x.db", connection_pool_size=2, pool_timeout_s=0.2)
    with EdgeDatabaseOptimizer(config) as db:
        held = [db.pool.acquire("hold"), db.pool.acquire("hold")]
        with pytest.raises(
            PoolTimeoutError, match=r"search_documents: no free connection .* all 2"
        ):
            db.search_documents("anything")
        db.pool.release(held.pop())  # the pool works again once a connection returns
        assert db.search_documents("anything") == []
        db.pool.release(held.pop())
        assert db.pool.stats().timeouts == 1


def test_pool_waiter_gets_a_connection_when_one_returns(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "x.db", connection_pool_size=1, pool_timeout_s=5)
    with EdgeDatabaseOptimizer(config) as db:
        conn = db.pool.acquire("hold")
        timer = threading.Timer(0.1, db.pool.release, args=(conn,))
        timer.start()
        try:
            assert db.batch_insert_documents(_docs(3)) == 3
        finally:
            timer.join()


def test_close_while_a_connection_is_checked_out(tmp_path: Path) -> None:
    db = EdgeDatabaseOptimizer(DatabaseConfig(db_path=tmp_path / "o.db", connection_pool_size=2))
    conn = db.pool.acquire("hold")
    db.close()
    assert db.connection_count == 1  # the checked-out one, still usable by its holder
    assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
    db.pool.release(conn)
    assert db.connection_count == 0
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_recycle_retires_every_connection(
    tmp_path: Path, patch_connect: Callable[[Callable[[sqlite3.Connection], None]], None]
) -> None:
    config = DatabaseConfig(db_path=tmp_path / "r.db", connection_pool_size=3)
    with EdgeDatabaseOptimizer(config) as db:
        held = db.pool.acquire("hold")
        armed = {"on": True}
        patch_connect(lambda conn: conn.set_progress_handler(lambda: int(armed["on"]), 100))
        assert db.batch_insert_documents(_docs(5)) == 5  # old connections: no fault yet
        db.pool.recycle()  # now the armed fault reaches every connection
        assert db.connection_count == 1  # only the checked-out one, retired when it returns
        with pytest.raises(EdgeDatabaseError, match="interrupted"):
            db.search_documents("edge")
        db.pool.release(held)
        armed["on"] = False
        assert db.connection_count == 0
        assert len(db.search_documents("edge", limit=10)) == 5
        # 2 idle + 1 held; the new connection failed while opening (reading the schema
        # takes more than 100 VM steps since the schema has the embeddings triggers), so it
        # never entered the pool
        assert db.pool.stats().replaced == 3


def test_closed_connections_are_replaced(db: EdgeDatabaseOptimizer) -> None:
    for _ in range(3):
        conn = db.pool.acquire("test")
        conn.close()  # closed behind the pool's back
        db.pool.release(conn)
    assert db.batch_insert_documents(_docs(5)) == 5
    stats = db.get_database_stats()
    assert stats["pool_replaced"] == 3
    assert stats["pool_open"] <= 3


def test_pool_never_hands_out_more_than_its_size(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "x.db", connection_pool_size=3, pool_timeout_s=10)
    peak = 0
    lock = threading.Lock()
    errors: list[BaseException] = []
    with EdgeDatabaseOptimizer(config) as db:

        def work() -> None:
            nonlocal peak
            try:
                for _ in range(30):
                    with db.pool.connection("test") as conn:
                        with lock:
                            peak = max(peak, db.pool.stats().in_use)
                        conn.execute("SELECT count(*) FROM documents").fetchone()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert peak <= 3
        assert db.pool.stats().in_use == 0


def test_concurrent_writers_and_readers(db: EdgeDatabaseOptimizer) -> None:
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for batch in range(5):
                db.batch_insert_documents(_docs(20, start + batch * 20))
                db.search_documents("edge devices", limit=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(db) == (400, 0)


def test_close_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        db.batch_insert_documents(_docs(10))
        assert db.connection_count == 5
    assert db.closed
    assert db.connection_count == 0
    db.close()  # idempotent
    with pytest.raises(PoolClosedError, match=r"search_documents: the database .*c.db is closed"):
        db.search_documents("edge")
    # SQLite checkpointed and removed the WAL when the last connection closed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as again:
        assert _count(again) == (10, 0)


def test_finalizer_closes_connections_of_a_forgotten_optimizer(tmp_path: Path) -> None:
    db = EdgeDatabaseOptimizer(DatabaseConfig(db_path=tmp_path / "f.db"))
    db.batch_insert_documents(_docs(3))
    pool = db.pool
    ref = weakref.ref(db)
    del db
    gc.collect()
    assert ref() is None
    assert pool.closed
    assert pool.open_count == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.db"]


# --- batched inserts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"title": 5, "content": "x"}, r"row 2 \(field 'title'\): expected a str, got int 5"),
        ({"title": "t"}, r"row 2 \(field 'content'\): expected a str, got NoneType"),
        ({"title": "t", "content": "c", "metadata": {1j}}, r"row 2 \(field 'metadata'\): not JSON"),
        (
            {"title": "t", "content": "c", "contents": "typo"},
            r"row 2 \(field 'contents'\): unknown",
        ),
        (["t", "c"], r"row 2: expected a mapping"),
    ],
)
def test_invalid_row_is_named_and_nothing_is_written(
    db: EdgeDatabaseOptimizer, bad: Any, message: str
) -> None:
    with pytest.raises(InvalidRowError, match=message) as info:
        db.batch_insert_documents([*_docs(2), bad, *_docs(2)])
    assert info.value.row_index == 2
    assert isinstance(info.value, ValueError)
    assert _count(db) == (0, 0)


def test_engine_failure_mid_batch_rolls_everything_back(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_documents(_docs(5))
    with db.pool.connection("test") as conn:
        conn.execute(
            "CREATE TRIGGER reject AFTER INSERT ON documents WHEN new.title = 'Doc 1042' "
            "BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END"
        )
    with pytest.raises(
        BatchInsertError, match=r"row 42: rejected by test trigger; the batch of 100"
    ):
        db.batch_insert_documents(_docs(100, start=1000))
    assert _count(db) == (5, 0)
    assert db.search_documents("number 1041") == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.tuples(
            st.integers(1, 30),
            st.none() | st.integers(0, 40),
            st.sampled_from(["invalid", "engine"]),
        ),
        max_size=6,
    )
)
def test_batches_are_all_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, batches: list[tuple[int, int | None, str]]
) -> None:
    path = tmp_path_factory.mktemp("atomic") / "a.db"
    expected = 0
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=2)) as db:
        with db.pool.connection("test") as conn:
            conn.execute(
                "CREATE TRIGGER reject AFTER INSERT ON documents WHEN new.title = 'BAD' "
                "BEGIN SELECT RAISE(ABORT, 'rejected'); END"
            )
        for size, bad, how in batches:
            docs = _docs(size, words="payload")
            if bad is not None and bad < size:
                docs[bad]["title"] = None if how == "invalid" else "BAD"
                with pytest.raises(BatchInsertError, match=rf"row {bad}\b") as info:
                    db.batch_insert_documents(docs)
                assert info.value.row_index == bad
            else:
                assert db.batch_insert_documents(docs) == size
                expected += size
        assert _count(db) == (expected, 0)
        assert len(db.search_documents("payload", limit=1000)) == expected


def test_interrupted_batch_rolls_back_and_pool_recovers(
    tmp_path: Path, patch_connect: Callable[[Callable[[sqlite3.Connection], None]], None]
) -> None:
    armed = {"on": False}
    patch_connect(lambda conn: conn.set_progress_handler(lambda: int(armed["on"]), 5000))
    config = DatabaseConfig(db_path=tmp_path / "i.db", connection_pool_size=1)
    with EdgeDatabaseOptimizer(config) as db:
        db.batch_insert_documents(_docs(10))
        armed["on"] = True
        with pytest.raises(
            BatchInsertError, match=r"batch_insert_documents: .*interrupted"
        ) as info:
            db.batch_insert_documents(_docs(2000, start=100))
        assert info.value.sqlite_errorname == "SQLITE_INTERRUPT"
        armed["on"] = False
        assert _count(db) == (10, 0)
        assert db.batch_insert_documents(_docs(10, start=5000)) == 10
        assert db.get_database_stats()["pool_replaced"] == 1


def test_disk_full_is_typed_names_the_batch_and_recovers(
    tmp_path: Path, patch_connect: Callable[[Callable[[sqlite3.Connection], None]], None]
) -> None:
    path = tmp_path / "full.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as setup:
        setup.batch_insert_documents(_docs(10))
    limit = {"pages": 40}
    patch_connect(lambda conn: conn.execute(f"PRAGMA max_page_count = {limit['pages']}"))
    config = DatabaseConfig(db_path=path, connection_pool_size=1)
    with EdgeDatabaseOptimizer(config) as db:
        with pytest.raises(
            BatchInsertError, match=r"database or disk is full; the batch of 5000"
        ) as info:
            db.batch_insert_documents(_docs(5000, start=100, words="filler text " * 20))
        assert info.value.sqlite_errorname == "SQLITE_FULL"
        assert info.value.operation == "batch_insert_documents"
        limit["pages"] = 1_000_000  # the fault is gone: the replacement connection has room
        assert _count(db) == (10, 0)
        assert db.batch_insert_documents(_docs(5000, start=100)) == 5000


def test_locked_database_is_a_clear_error_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    config = DatabaseConfig(db_path=path, connection_pool_size=2, busy_timeout_ms=50)
    with EdgeDatabaseOptimizer(config) as db:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(
                BatchInsertError, match=r"starting the transaction: database is locked"
            ):
                db.batch_insert_documents(_docs(3))
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert db.batch_insert_documents(_docs(3)) == 3


def test_duplicate_vector_id_names_row_and_field(db: EdgeDatabaseOptimizer) -> None:
    rows = [{"vector_id": f"v{i}", "vector_data": b"x"} for i in range(5)]
    rows.append({"vector_id": "v3", "vector_data": b"y"})
    with pytest.raises(
        BatchInsertError, match=r"row 5 \(field 'vector_id' = 'v3'\): UNIQUE constraint failed"
    ) as info:
        db.batch_insert_embeddings(rows)
    assert (info.value.row_index, info.value.field) == (5, "vector_id")
    assert _count(db) == (0, 0)
    assert db.batch_insert_embeddings(rows[:5]) == 5  # the connection stayed usable


def test_unencodable_text_names_the_field(db: EdgeDatabaseOptimizer) -> None:
    docs = [*_docs(3), {"title": "ok", "content": "bad \ud800 surrogate"}]
    with pytest.raises(BatchInsertError, match=r"row 3 \(field 'content'"):
        db.batch_insert_documents(docs)
    assert _count(db) == (0, 0)


_CHILD = """
import sqlite3, sys
sys.path.insert(0, sys.argv[2])
import database_optimization as dbo
original = sqlite3.connect
state = {"armed": False, "ticks": 0}
def connect(*args, **kwargs):
    conn = original(*args, **kwargs)
    def progress():
        if state["armed"]:
            state["ticks"] += 1
            if state["ticks"] == int(sys.argv[3]):
                print("mid-batch", flush=True)
        return 0
    conn.set_progress_handler(progress, 1000)
    return conn
sqlite3.connect = connect
db = dbo.EdgeDatabaseOptimizer(dbo.DatabaseConfig(db_path=sys.argv[1], cache_size_mb=1))
n = db.get_database_stats()["documents"]
db.batch_insert_documents(
    [{"title": f"kept {n + i}", "content": "committed batch"} for i in range(500)]
)
print("committed", flush=True)
state["armed"] = True
db.batch_insert_documents(
    [{"title": f"lost {i}", "content": "doomed batch " * 20} for i in range(100000)]
)
print("finished", flush=True)
"""


@pytest.mark.parametrize("kill_after_ticks", [5, 300])
def test_kill_9_mid_batch_keeps_committed_and_drops_uncommitted(
    tmp_path: Path, kill_after_ticks: int
) -> None:
    path = tmp_path / "crash.db"
    for cycle in range(2):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(REFERENCE_IMPL), str(kill_after_ticks)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "committed"
            assert child.stdout.readline().strip() == "mid-batch"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
            assert _count(db) == (500 * (cycle + 1), 0)
            assert db.search_documents("doomed") == []
            assert len(db.search_documents("committed", limit=2000)) == 500 * (cycle + 1)
            with db.pool.connection("check") as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")


# --- full-text search ---------------------------------------------------------------------


def test_search_is_ranked_by_bm25_with_title_weight(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_documents(
        [
            {"title": "Cooking", "content": "pasta and a little sqlite"},
            {"title": "SQLite tuning", "content": "sqlite wal mode and sqlite pragmas"},
            {"title": "Gardening", "content": "tomatoes"},
            {"title": "Notes", "content": "sqlite sqlite"},
            *({"title": f"Filler {i}", "content": "nothing relevant here"} for i in range(20)),
        ]
    )
    results = db.search_documents("SQLite", limit=10)
    assert [r["title"] for r in results] == ["Notes", "SQLite tuning", "Cooking"]
    assert results[0]["score"] > results[1]["score"] > results[2]["score"]
    assert set(results[0]) >= {"id", "title", "content", "type", "metadata", "score"}
    assert db.search_documents("sqlite tomatoes") == []
    assert len(db.search_documents("sqlite tomatoes", match="any")) == 4
    # the title counts twice: the rank function is stored in the FTS5 table
    with db.pool.connection("test") as conn:
        titled = conn.execute(
            "SELECT bm25(documents_fts, 1.0, 1.0) FROM documents_fts "
            "WHERE documents_fts MATCH 'sqlite' ORDER BY rowid"
        ).fetchall()
    assert -titled[1][0] < results[1]["score"] < results[0]["score"]


@pytest.mark.parametrize(
    "query",
    [
        'machine "learning',
        "learn*",
        "-machine",
        "machine NEAR learning",
        "NEAR(machine learning, 2)",
        "(machine OR",
        "title:machine",
        "^machine",
        "machine AND NOT",
        "'; DROP TABLE documents; --",
        '" OR 1=1 --',
        "documents_fts MATCH '*'",
        "",
        "   ",
        "***",
        "\x00machine",
    ],
)
def test_operator_and_sql_text_is_searched_as_words(db: EdgeDatabaseOptimizer, query: str) -> None:
    db.batch_insert_documents(_docs(10, words="machine learning on edge"))
    results = db.search_documents(query, limit=20)
    assert all("machine" in r["content"] for r in results)
    assert _count(db) == (10, 0)


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query('NEAR("a" b*) OR -c') == '"NEAR" "a" "b" "OR" "c"'
    assert fts5_query("x y", match="any") == '"x" OR "y"'
    assert fts5_query("!!! \x00") == ""
    assert fts5_query("état—de l'art") == '"état—de" "l" "art"'


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=60))
def test_any_text_neither_crashes_nor_injects(db: EdgeDatabaseOptimizer, query: str) -> None:
    if _count(db)[0] == 0:
        db.batch_insert_documents(_docs(20, words="alpha beta gamma delta"))
    for match in ("all", "any"):
        results = db.search_documents(query, limit=5, match=match)  # type: ignore[arg-type]
        assert len(results) <= 5
    assert _count(db) == (20, 0)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(st.characters(codec="utf-8"), min_size=1, max_size=30))
def test_searching_a_documents_own_words_finds_it(db: EdgeDatabaseOptimizer, title: str) -> None:
    db.batch_insert_documents([{"title": title, "content": "zebra"}])
    results = db.search_documents(f"{title} zebra", limit=1000)
    assert title in {r["title"] for r in results}


# --- embeddings ---------------------------------------------------------------------------


def test_prefix_search_matches_startswith(db: EdgeDatabaseOptimizer) -> None:
    ids = [
        "embed_1",
        "embed_10",
        "embed_2",
        "embed%",
        "embed_",
        "emb",
        "Embed_1",
        "e\U0010ffffz",
        "e",
    ]
    db.batch_insert_embeddings({"vector_id": i, "vector_data": i.encode()} for i in ids)
    for prefix in ["embed_", "embed", "e", "", "E", "embed%", "e\U0010ffff", "%", "_"]:
        found = [r["vector_id"] for r in db.search_embeddings(prefix, limit=100)]
        assert found == sorted(i for i in ids if i.startswith(prefix)), prefix
    assert db.search_embeddings("embed_", limit=1)[0]["vector_data"] == b"embed_"


@given(prefix=st.text(max_size=4), name=st.text(max_size=6))
def test_prefix_upper_bound_is_tight(prefix: str, name: str) -> None:
    upper = _prefix_upper_bound(prefix)
    key = (prefix + name).encode("utf-8", "surrogatepass")
    if upper is not None:
        assert key < upper.encode("utf-8", "surrogatepass")
    assert key >= prefix.encode("utf-8", "surrogatepass")


def test_search_similar_is_exact_cosine_top_k(db: EdgeDatabaseOptimizer) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    db.batch_insert_embeddings(
        {"vector_id": f"v{i}", "vector": v.tolist() if i % 2 else v, "metadata": {"i": i}}
        for i, v in enumerate(vectors)
    )
    query = rng.standard_normal(16)
    results = db.search_similar(query, top_k=7)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = np.argsort(-(unit @ (query / np.linalg.norm(query))))[:7]
    assert [r["vector_id"] for r in results] == [f"v{i}" for i in expected]
    assert results[0]["metadata"] == {"i": int(expected[0])}
    assert -1 <= results[-1]["score"] <= results[0]["score"] <= 1
    assert len(db.search_similar(query, top_k=1000)) == 300


def test_vector_cache_is_invalidated_on_insert(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0, 0.0]}])
    assert db.search_similar([0.0, 0.0, 1.0], top_k=1)[0]["vector_id"] == "a"
    db.batch_insert_embeddings([{"vector_id": "b", "vector": [0.0, 0.1, 2.0]}])
    assert db.search_similar([0.0, 0.0, 1.0], top_k=1)[0]["vector_id"] == "b"


def test_vector_cache_sees_inserts_from_another_optimizer(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "v.db", connection_pool_size=1)
    with EdgeDatabaseOptimizer(config) as first, EdgeDatabaseOptimizer(config) as second:
        first.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0]}])
        assert second.search_similar([0.0, 1.0], top_k=1)[0]["vector_id"] == "a"
        first.batch_insert_embeddings([{"vector_id": "b", "vector": [0.0, 1.0]}])
        assert second.search_similar([0.0, 1.0], top_k=1)[0]["vector_id"] == "b"


def test_dimension_mismatch_is_a_clear_error(db: EdgeDatabaseOptimizer) -> None:
    assert db.search_similar([1.0, 2.0]) == []
    db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 2.0, 3.0]}])
    with pytest.raises(
        DimensionMismatchError, match=r"dimension 2, the stored vectors have dimension 3"
    ):
        db.search_similar([1.0, 2.0])
    with pytest.raises(
        InvalidRowError, match=r"row 1 \(field 'vector'\): dimension 4 does not match"
    ):
        db.batch_insert_embeddings(
            [
                {"vector_id": "b", "vector_data": b"opaque"},
                {"vector_id": "c", "vector": [1, 2, 3, 4]},
            ]
        )
    with pytest.raises(InvalidRowError, match=r"row 1 \(field 'vector'\): dimension 2 differs"):
        db.batch_insert_embeddings(
            [{"vector_id": "d", "vector": [1, 2, 3]}, {"vector_id": "e", "vector": [1, 2]}]
        )
    assert _count(db) == (0, 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"vector_id": "a", "vector": [0.0, 0.0]}, r"all zeros"),
        ({"vector_id": "a", "vector": [1.0, float("nan")]}, r"NaN or infinity"),
        ({"vector_id": "a", "vector": [1.0, 1e300]}, r"values beyond float32"),
        ({"vector_id": "a", "vector": [[1.0], [2.0]]}, r"1-D vector"),
        ({"vector_id": "a", "vector": "abc"}, r"field 'vector'"),
        ({"vector_id": "a"}, r"exactly one of 'vector_data'"),
        ({"vector_id": "a", "vector_data": "text"}, r"field 'vector_data'\): expected bytes"),
        ({"vector_id": "", "vector_data": b""}, r"field 'vector_id'\): expected a non-empty str"),
    ],
)
def test_bad_embedding_rows(db: EdgeDatabaseOptimizer, row: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRowError, match=message):
        db.batch_insert_embeddings([row])


def test_bad_search_arguments(db: EdgeDatabaseOptimizer) -> None:
    with pytest.raises(ValueError, match=r"limit must be an integer >= 1, got 0"):
        db.search_documents("x", limit=0)
    with pytest.raises(ValueError, match=r"top_k must be an integer >= 1"):
        db.search_similar([1.0], top_k=-1)
    with pytest.raises(ValueError, match=r"bad query vector: .*all zeros"):
        db.search_similar([0.0])


# --- statistics, errors on reads, demo -----------------------------------------------------


def test_stats_are_real(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_documents(_docs(50))
    db.batch_insert_embeddings(
        [{"vector_id": "a", "vector": [1.0, 2.0]}, {"vector_id": "b", "vector_data": b"z"}]
    )
    stats = db.get_database_stats()
    assert stats["documents"] == 50
    assert stats["embeddings"] == 2
    assert stats["vectors"] == 1
    assert stats["vector_dimension"] == 2
    assert stats["database_size_bytes"] == stats["page_size"] * stats["page_count"] > 0
    assert stats["wal_size_bytes"] == os.path.getsize(f"{stats['database_path']}-wal") > 0
    assert stats["pool_size"] == 3
    assert stats["pool_in_use"] == 0
    assert stats["pool_open"] == 3
    assert stats["synchronous"] == "NORMAL"


def test_optimize_merges_the_index_and_truncates_the_wal(db: EdgeDatabaseOptimizer) -> None:
    for start in range(0, 500, 50):
        db.batch_insert_documents(_docs(50, start=start))
    assert db.get_database_stats()["wal_size_bytes"] > 0
    result = db.optimize()
    assert result["busy"] == 0
    assert db.get_database_stats()["wal_size_bytes"] == 0
    assert len(db.search_documents("edge devices", limit=1000)) == 500
    with db.pool.connection("check") as conn:
        conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")


def test_malformed_database_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not an sqlite database" * 200)
    with pytest.raises(
        EdgeDatabaseError, match=r"opening the database .*bad.db failed: file is not a database"
    ) as info:
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path))
    assert info.value.operation == "open"
    assert info.value.sqlite_errorname == "SQLITE_NOTADB"


@pytest.mark.parametrize(
    "how",
    [["reference_impl/database_optimization.py"], ["-m", "reference_impl.database_optimization"]],
)
def test_demo_runs(how: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *how], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Inserted 1000 documents" in done.stdout
    assert "search_similar(near vec_0042): [('vec_0042'" in done.stdout
    assert "Rejected batch: batch_insert_documents: row 1 (field 'title')" in done.stdout


def test_io_error_at_commit_rolls_back_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return original(*args, factory=FailingCommit, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=tmp_path / "io.db")) as db:
        monkeypatch.setattr(FailingCommit, "armed", True)
        with pytest.raises(
            BatchInsertError, match=r"batch_insert_documents: committing: disk I/O error; the batch"
        ) as info:
            db.batch_insert_documents(_docs(50))
        assert info.value.row_index is None
        monkeypatch.setattr(FailingCommit, "armed", False)
        assert _count(db) == (0, 0)
        assert db.batch_insert_documents(_docs(50)) == 50
        assert db.get_database_stats()["pool_replaced"] == 1


def test_damaged_pages_surface_as_typed_errors(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        db.batch_insert_documents(_docs(3000, words="some words to fill pages " * 5))
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, len(data) - page, 7 * page):
        data[offset : offset + page] = b"\xa5" * page
    path.write_bytes(bytes(data))

    def use_damaged() -> None:
        with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as damaged:
            damaged.search_documents("words", limit=5000)
            damaged.get_database_stats()

    with pytest.raises(EdgeDatabaseError, match=r"malformed") as info:
        use_damaged()
    assert info.value.operation in {"open", "search_documents", "get_database_stats"}
