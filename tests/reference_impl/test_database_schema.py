"""EdgeDatabaseOptimizer's file: schema versions, tokenizers, journal policy, damage (issue 17)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reference_impl import database_optimization as dbo
from reference_impl.database_optimization import (
    SCHEMA_VERSION,
    DatabaseConfig,
    DatabaseCorruptError,
    EdgeDatabaseOptimizer,
    SchemaVersionError,
    TokenizerMismatchError,
)

# The DDL of the code before issue 17, verbatim (no user_version, no change counter).
OLD_DDL = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    doc_type TEXT NOT NULL DEFAULT 'text',
    metadata TEXT,
    created_at REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    title, content, content='documents', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
    INSERT INTO documents_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
END;
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    vector_id TEXT NOT NULL UNIQUE,
    vector_data BLOB NOT NULL,
    dim INTEGER,
    metadata TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS edge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO documents_fts(documents_fts, rank) VALUES ('rank', 'bm25(2.0, 1.0)');
INSERT INTO edge_meta(key, value) VALUES ('fts_rank', 'bm25(2.0, 1.0)');
"""


def _old_database(path: Path) -> None:
    """A file as the previous code left it: its schema, two documents, two vectors."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(OLD_DDL)
        with conn:
            conn.executemany(
                "INSERT INTO documents(title, content, doc_type, metadata, created_at) "
                "VALUES (?, ?, 'text', NULL, 0)",
                [("Solar panels", "charging the board"), ("Battery", "lithium cells age")],
            )
            conn.execute(
                "INSERT INTO documents_fts(rowid, title, content) "
                "SELECT id, title, content FROM documents"
            )
            for i, vector in enumerate(([1.0, 0.0], [0.0, 1.0])):
                conn.execute(
                    "INSERT INTO embeddings(vector_id, vector_data, dim, metadata, created_at) "
                    "VALUES (?, ?, 2, NULL, 0)",
                    (f"v{i}", np.array(vector, dtype="<f4").tobytes()),
                )
            conn.execute("INSERT INTO edge_meta(key, value) VALUES ('vector_dim', '2')")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    finally:
        conn.close()


def _schema_objects(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# --- user_version migrations ------------------------------------------------------------------


def test_new_file_gets_the_current_schema_version(tmp_path: Path) -> None:
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=tmp_path / "new.db")) as db:
        assert db.get_database_stats()["schema_version"] == SCHEMA_VERSION == 1
    assert _user_version(tmp_path / "new.db") == 1


def test_file_of_the_previous_code_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path)
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        stats = db.get_database_stats()
        assert stats["schema_version"] == 1
        assert stats["fts_tokenizer"] == "unicode61"
        assert (stats["documents"], stats["embeddings"]) == (2, 2)
        assert db.search_documents("lithium")[0]["title"] == "Battery"
        assert db.search_similar([0.0, 1.0], top_k=1)[0]["vector_id"] == "v1"
        db.batch_insert_embeddings([{"vector_id": "v2", "vector": [0.6, 0.8]}])
        assert db.search_similar([0.6, 0.8], top_k=1)[0]["vector_id"] == "v2"
    names = {name for _, name in _schema_objects(path)}
    assert {"embeddings_changed_ai", "embeddings_changed_au", "embeddings_changed_ad"} <= names
    assert _user_version(path) == 1


def test_a_failing_migration_leaves_the_old_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All steps run in one transaction: a failure in the last statement undoes the others."""
    path = tmp_path / "old.db"
    _old_database(path)
    before = _schema_objects(path)
    monkeypatch.setattr(dbo, "_V1_SCHEMA", dbo._V1_SCHEMA + "\nSELECT no_such_function();\n")
    with pytest.raises(dbo.EdgeDatabaseError, match="no such function"):
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path))
    assert _schema_objects(path) == before
    assert _user_version(path) == 0
    monkeypatch.undo()
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        assert db.get_database_stats()["documents"] == 2


def test_file_from_a_newer_version_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)):
        pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    data = path.read_bytes()
    with pytest.raises(SchemaVersionError) as info:
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path))
    error = info.value
    assert (error.path, error.found, error.supported) == (str(path), 7, SCHEMA_VERSION)
    assert f"{path}" in str(error)
    assert "schema version is 7" in str(error)
    assert f"up to {SCHEMA_VERSION}" in str(error)
    assert path.read_bytes() == data


# --- tokenizers ---------------------------------------------------------------------------------


def test_tokenizer_is_validated_with_the_allowed_values() -> None:
    with pytest.raises(
        ValueError,
        match=r"fts_tokenizer must be one of unicode61, porter, ascii, trigram .*got 'icu'",
    ):
        DatabaseConfig(db_path="x.db", fts_tokenizer="icu")


CJK_DOCS = [
    {"title": "机器学习入门", "content": "本文介绍边缘设备上的机器学习模型。"},
    {"title": "東京の天気", "content": "今日の東京は晴れのち曇りです。"},
    {"title": "Edge notes", "content": "small models on a Raspberry Pi"},
]


@pytest.fixture
def trigram_db(tmp_path: Path) -> Iterator[EdgeDatabaseOptimizer]:
    config = DatabaseConfig(db_path=tmp_path / "cjk.db", fts_tokenizer="trigram")
    with EdgeDatabaseOptimizer(config) as db:
        db.batch_insert_documents(CJK_DOCS)
        yield db


def _titles(found: list[dict[str, Any]]) -> list[str]:
    return [hit["title"] for hit in found]


def test_unicode61_cannot_find_cjk_substrings(tmp_path: Path) -> None:
    """Why the option exists: without spaces a whole CJK sentence is one unicode61 token."""
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=tmp_path / "u.db")) as db:
        db.batch_insert_documents(CJK_DOCS)
        assert db.search_documents("机器学习") == []


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("机器学习", "机器学习入门"),  # Chinese, 4 characters
        ("边缘设备", "机器学习入门"),  # in the content
        ("東京は晴れ", "東京の天気"),  # Japanese
        ("raspberry", "Edge notes"),  # case-insensitive, Latin too
    ],
)
def test_trigram_finds_cjk_substrings(
    trigram_db: EdgeDatabaseOptimizer, query: str, title: str
) -> None:
    found = trigram_db.search_documents(query)
    assert _titles(found) == [title]
    assert found[0]["score"] > 0  # ranked by bm25


def test_trigram_short_queries_fall_back_to_like(trigram_db: EdgeDatabaseOptimizer) -> None:
    """Under 3 characters trigram matches nothing; a LIKE scan answers instead (unranked)."""
    found = trigram_db.search_documents("天気")
    assert _titles(found) == ["東京の天気"]
    assert found[0]["score"] == 0.0
    assert _titles(trigram_db.search_documents("学习 天気", match="any")) == [
        "机器学习入门",
        "東京の天気",
    ]
    assert trigram_db.search_documents("学习 天気") == []  # "all": no document has both
    assert trigram_db.search_documents("%") == []  # LIKE wildcards are searched as text
    assert trigram_db.search_documents("_") == []


def test_changing_the_tokenizer_of_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, fts_tokenizer="trigram")) as db:
        db.batch_insert_documents(CJK_DOCS)
    with pytest.raises(
        TokenizerMismatchError,
        match=r"built with the 'trigram' tokenizer.*set_fts_tokenizer\('unicode61'\)",
    ):
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, fts_tokenizer="unicode61"))
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:  # None: the file's own
        assert db.get_database_stats()["fts_tokenizer"] == "trigram"
        assert _titles(db.search_documents("机器学习")) == ["机器学习入门"]


def test_the_tokenizer_is_changed_by_rebuilding_the_index(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        db.batch_insert_documents(CJK_DOCS)
        assert db.search_documents("机器学习") == []
        with pytest.raises(ValueError, match=r"tokenizer must be one of .* got 'icu'"):
            db.set_fts_tokenizer("icu")
        assert db.set_fts_tokenizer("trigram") == 3
        assert _titles(db.search_documents("机器学习")) == ["机器学习入门"]
        assert _titles(db.search_documents("天気")) == ["東京の天気"]  # LIKE fallback now
        found = db.search_documents("raspberry")
        assert found[0]["score"] > 0  # still ranked, with the title weight kept
        db.batch_insert_documents([{"title": "新しい", "content": "推論エンジンの話"}])
        assert _titles(db.search_documents("推論エンジン")) == ["新しい"]
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, fts_tokenizer="trigram")) as db:
        assert db.get_database_stats()["fts_tokenizer"] == "trigram"
        with db.pool.connection("check") as conn:
            conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")
            assert conn.execute(
                "SELECT value FROM edge_meta WHERE key = 'fts_rank'"
            ).fetchone() == ("bm25(2.0, 1.0)",)


# --- checkpoint and journal size policy -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("wal_autocheckpoint", -1, r"wal_autocheckpoint must be an integer >= 0 \(pages"),
        ("journal_size_limit", -2, r"journal_size_limit must be an integer >= -1 \(bytes"),
        ("check_on_open", "yes", r"check_on_open must be True or False"),
    ],
)
def test_policy_fields_are_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DatabaseConfig(db_path="x.db", **{field: value})  # type: ignore[arg-type]


def _largest_wal(path: Path, **policy: Any) -> int:
    """Largest -wal file seen over 150 small batches (~3 MiB written in all)."""
    config = DatabaseConfig(db_path=path, connection_pool_size=2, **policy)
    largest = 0
    with EdgeDatabaseOptimizer(config) as db:
        for batch in range(150):
            db.batch_insert_documents(
                {"title": f"b{batch}", "content": f"row {i} " + "x" * 400} for i in range(40)
            )
            largest = max(largest, os.path.getsize(f"{path}-wal"))
    return largest


def test_wal_stays_bounded_with_the_policy_and_grows_without(tmp_path: Path) -> None:
    bounded = _largest_wal(
        tmp_path / "policy.db", wal_autocheckpoint=64, journal_size_limit=256 * 1024
    )
    unbounded = _largest_wal(tmp_path / "none.db", wal_autocheckpoint=0, journal_size_limit=-1)
    print(f"\nlargest WAL: {bounded} bytes with the policy, {unbounded} without")
    assert bounded <= 1024 * 1024
    assert unbounded >= 3 * 1024 * 1024
    assert unbounded > 4 * bounded


def test_policy_pragmas_are_applied_to_every_connection(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "p.db", wal_autocheckpoint=200)
    with EdgeDatabaseOptimizer(config) as db:
        stats = db.get_database_stats()
        assert stats["wal_autocheckpoint_pages"] == 200
        assert stats["journal_size_limit_bytes"] == 4 * 1024 * 1024  # the edge default


def test_checkpoint_returns_sqlites_figures(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "c.db", wal_autocheckpoint=0)
    with EdgeDatabaseOptimizer(config) as db:
        db.batch_insert_documents({"title": "t", "content": "c" * 500} for _ in range(200))
        wal = os.path.getsize(f"{config.db_path}-wal")
        passive = db.checkpoint()
        assert passive["busy"] == 0
        assert passive["wal_frames"] == passive["checkpointed_frames"] > 0
        assert os.path.getsize(f"{config.db_path}-wal") == wal  # PASSIVE leaves the file
        assert db.checkpoint("truncate") == {"busy": 0, "wal_frames": 0, "checkpointed_frames": 0}
        assert os.path.getsize(f"{config.db_path}-wal") == 0
        with pytest.raises(ValueError, match=r"one of PASSIVE, FULL, RESTART, TRUNCATE, got 'x'"):
            db.checkpoint("x")


def test_checkpoint_reports_busy_while_a_reader_holds_a_snapshot(tmp_path: Path) -> None:
    config = DatabaseConfig(db_path=tmp_path / "b.db", wal_autocheckpoint=0, busy_timeout_ms=50)
    with EdgeDatabaseOptimizer(config) as db:
        db.batch_insert_documents([{"title": "a", "content": "a"}])
        reader = sqlite3.connect(config.db_path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM documents").fetchone()
            db.batch_insert_documents([{"title": "b", "content": "b"}])
            result = db.checkpoint("RESTART")
            assert result["busy"] == 1
            assert result["checkpointed_frames"] < result["wal_frames"]
        finally:
            reader.close()


# --- quick_check on open and recovery --------------------------------------------------------


def _damaged(path: Path, how: str = "pages", docs: int = 3000) -> list[tuple[Any, ...]]:
    """A real file damaged on disk; returns the rows it had.

    ``pages``: every 37th page from page 20 overwritten (quick_check itself cannot read the
    file); ``cells``: one table leaf page claims 5 more cells than it has (quick_check lists
    the bad cells).
    """
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        db.batch_insert_documents(
            {"title": f"doc {i}", "content": f"note {i} " + "words to fill pages " * 5}
            for i in range(docs)
        )
        db.batch_insert_embeddings(
            {"vector_id": f"v{i}", "vector": [1.0, float(i)]} for i in range(50)
        )
        db.checkpoint("TRUNCATE")
        with db.pool.connection("rows") as conn:
            rows = conn.execute("SELECT id, title, content FROM documents ORDER BY id").fetchall()
    data = bytearray(path.read_bytes())
    page = 4096
    if how == "pages":
        for offset in range(20 * page, len(data) - page, 37 * page):
            data[offset : offset + page] = b"\xa5" * page
    else:
        offset = next(
            o for o in range(len(data) // 2 // page * page, len(data), page) if data[o] == 0x0D
        )  # a table b-tree leaf page (sqlite.org/fileformat.html, b-tree page header)
        cells = int.from_bytes(data[offset + 3 : offset + 5], "big")
        data[offset + 3 : offset + 5] = (cells + 5).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return rows


@pytest.mark.parametrize("how", ["pages", "cells"])
def test_corrupt_file_is_refused_on_open_with_the_check_and_the_way_out(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "bad.db"
    _damaged(path, how)
    data = path.read_bytes()
    with pytest.raises(DatabaseCorruptError) as info:
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path))
    error = info.value
    assert error.path == str(path)
    assert error.problems
    assert error.problems != ["ok"]
    message = str(error)
    assert str(path) in message
    assert "PRAGMA quick_check says:" in message
    assert error.problems[0].splitlines()[0] in message
    if how == "cells":
        assert "out of range" in message
    assert "EdgeDatabaseOptimizer.recover(" in message
    assert path.read_bytes() == data  # nothing written


def test_check_on_open_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    _damaged(path)
    config = DatabaseConfig(db_path=path, check_on_open=False)
    with EdgeDatabaseOptimizer(config) as db, pytest.raises(DatabaseCorruptError) as info:
        db.search_documents("words", limit=5000)
    assert info.value.operation == "search_documents"
    assert "malformed" in str(info.value)
    assert "EdgeDatabaseOptimizer.recover(" in str(info.value)


@pytest.mark.parametrize("how", ["pages", "cells"])
def test_recover_keeps_the_damaged_file_and_rebuilds_the_readable_rows(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "bad.db"
    original = _damaged(path, how)
    damaged_bytes = path.read_bytes()
    report = EdgeDatabaseOptimizer.recover(path)
    print(f"\n{report}")
    assert Path(report.damaged_path).read_bytes() == damaged_bytes  # kept, byte for byte
    assert Path(report.damaged_path).name.startswith("bad.db.corrupt-")
    assert not report.complete
    assert report.errors
    if how == "pages":  # rows on the overwritten pages are lost, and reported
        assert 0 < report.recovered["documents"] < len(original)
        assert report.skipped["documents"]
    else:  # every real row is readable; the 5 phantom cells read as garbage and are rejected
        assert report.recovered["documents"] == len(original)
        assert report.rejected["documents"] == 5
    assert report.recovered["embeddings"] == 50  # on pages that were not hit
    assert [p.name for p in tmp_path.iterdir() if ".edge-recover-" in p.name] == []
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:  # passes quick_check
        with db.pool.connection("rows") as conn:
            rows = conn.execute("SELECT id, title, content FROM documents ORDER BY id").fetchall()
            conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")
        by_id = {row[0]: row for row in original}
        assert all(by_id[row[0]] == row for row in rows)  # what is back is exactly as it was
        assert len(rows) == report.recovered["documents"]
        lost = set(by_id) - {row[0] for row in rows}
        spans = report.skipped["documents"]
        assert all(any(a < i <= b for a, b in spans) for i in lost)  # every loss is reported
        hit = rows[len(rows) // 2]
        assert db.search_documents(hit[1])[0]["id"] == hit[0]
        assert db.search_similar([1.0, 49.0], top_k=1)[0]["vector_id"] == "v49"


def test_recover_of_an_intact_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "fine.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, fts_tokenizer="trigram")) as db:
        db.batch_insert_documents(CJK_DOCS)
    report = EdgeDatabaseOptimizer.recover(path)
    assert report.complete
    assert report.recovered["documents"] == 3
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path)) as db:
        assert db.get_database_stats()["fts_tokenizer"] == "trigram"
        assert _titles(db.search_documents("机器学习")) == ["机器学习入门"]


def test_recover_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"recover: no database file at .*nope\.db"):
        EdgeDatabaseOptimizer.recover(tmp_path / "nope.db")
