from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.patching import active_sites


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A WAL database whose table spans many pages."""
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
    con.executemany("INSERT INTO items (body) VALUES (?)", [("x" * 200,) for _ in range(500)])
    con.commit()
    con.close()
    return path


def count(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        con.close()


def insert_batch(con: sqlite3.Connection, n: int, size: int = 500) -> None:
    with con:  # one transaction: all rows or none
        con.executemany("INSERT INTO items (body) VALUES (?)", [("y" * size,) for _ in range(n)])


def test_connect_is_wrapped_only_while_armed(db: Path) -> None:
    before = (sqlite3.connect, sqlite3.dbapi2.connect)
    with FaultInjector() as faults:
        faults.sqlite(db, "ioerr")
        assert sqlite3.connect is not before[0]
    assert (sqlite3.connect, sqlite3.dbapi2.connect) == before
    assert sqlite3.connect is before[0]
    assert active_sites() == []


def test_full_is_sqlite_full_and_the_batch_rolls_back(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "full")
        con = sqlite3.connect(db)
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            insert_batch(con, 2000)
        assert count(db) == 500
        event = faults.fired[-1]
        assert event.fault == "sqlite"
        assert "INSERT INTO items" in event.where
    insert_batch(con, 2000)  # the same connection recovers once the fault is gone
    con.close()
    assert count(db) == 2500


def test_full_with_extra_pages_allows_some_growth(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "full", extra_pages=50)
        con = sqlite3.connect(db)
        insert_batch(con, 20)  # fits in 50 more pages
        with pytest.raises(sqlite3.OperationalError, match="full"):
            insert_batch(con, 2000)
        con.close()
    assert count(db) == 520


class _App:
    """An app that creates its database when it starts (schema, then its first rows)."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path)
        self.con.execute("PRAGMA journal_mode=WAL")
        with self.con:
            self.con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")

    def save(self, n: int) -> None:
        insert_batch(self.con, n)


def test_full_armed_before_the_database_exists_fails_its_first_write(tmp_path: Path) -> None:
    path = tmp_path / "later" / "app.db"  # neither the file nor its directory exists yet
    with FaultInjector() as faults:
        faults.sqlite(path, "full")
        assert not path.parent.exists()  # arming creates nothing
        path.parent.mkdir()
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            _App(path)
        assert faults.fired
    assert sqlite3.connect(path).execute("SELECT count(*) FROM sqlite_schema").fetchone() == (0,)


def test_full_armed_before_the_database_exists_leaves_extra_pages(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with FaultInjector() as faults:
        faults.sqlite(path, "full", extra_pages=4)
        app = _App(path)  # the schema fits
        app.save(5)
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            app.save(2000)
        app.con.close()
    assert count(path) == 5


@pytest.mark.parametrize("error", ["locked", "corrupt"])
def test_file_faults_need_the_database_and_say_which_may_come_first(
    tmp_path: Path, error: str
) -> None:
    with (
        FaultInjector() as faults,
        pytest.raises(
            FaultArgumentError, match=r"needs an existing database file \('full', 'ioerr'"
        ),
    ):
        faults.sqlite(tmp_path / "none.db", error)


def test_locked_fails_writers_and_lets_wal_readers_read(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "locked", busy_timeout=0.05)
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM items").fetchone() == (500,)
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            insert_batch(con, 1)
    insert_batch(con, 1)
    con.close()
    assert count(db) == 501


def test_ioerr_on_the_nth_statement_executemany_counts_once(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "ioerr", nth=3)
        con = sqlite3.connect(db)
        con.execute("SELECT 1")  # 1
        con.executemany("INSERT INTO items (body) VALUES (?)", [("a",)] * 10)  # 2
        con.commit()
        cur = con.cursor()
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error") as info:
            cur.execute("SELECT count(*) FROM items")  # 3, through a cursor
        assert cur.execute("SELECT count(*) FROM items").fetchone() == (510,)
        con.close()
    assert info.value.sqlite_errorname == "SQLITE_IOERR"
    [event] = faults.fired
    assert event.call == 3


def test_interrupt_is_a_real_engine_interrupt(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "interrupt", nth=2)
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM items").fetchone() == (500,)
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            con.execute("SELECT count(*) FROM items a, items b").fetchone()
        assert con.execute("SELECT count(*) FROM items").fetchone() == (500,)
        con.close()


def test_denied_uses_an_authorizer(db: Path) -> None:
    with FaultInjector() as faults:
        faults.sqlite(db, "denied", deny="writes")
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM items").fetchone() == (500,)
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            con.execute("DELETE FROM items")
    con.execute("DELETE FROM items WHERE id = 1")
    con.commit()
    con.close()


def test_corrupt_damages_a_page_and_puts_it_back(db: Path) -> None:
    original = db.read_bytes()
    opened_before = sqlite3.connect(db)
    with FaultInjector(seed=11) as faults:
        faults.sqlite(db, "corrupt", table="items")
        con = sqlite3.connect(db)
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            con.execute("SELECT sum(length(body)) FROM items").fetchone()
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            opened_before.execute("SELECT sum(length(body)) FROM items").fetchone()
        damage = faults.fired[0]
        assert damage.where.startswith("page ")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert opened_before.execute("SELECT count(*) FROM items").fetchone() == (500,)
    con.close()
    opened_before.close()
    assert len(db.read_bytes()) == len(original)


def test_corrupt_page_choice_follows_the_seed(db: Path) -> None:
    def page(seed: int) -> str:
        with FaultInjector(seed=seed) as faults:
            faults.sqlite(db, "corrupt")
            return faults.fired[0].where

    assert page(1) == page(1)
    assert len({page(s) for s in range(8)}) > 1


def test_connections_to_other_databases_are_untouched(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with FaultInjector() as faults:
        faults.sqlite(db, "ioerr", times=None)
        con = sqlite3.connect(other)
        con.execute("CREATE TABLE t (x)")
        assert type(con) is sqlite3.Connection
        con.close()
        mem = sqlite3.connect(":memory:")
        assert mem.execute("SELECT 1").fetchone() == (1,)
        mem.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error": "slow"}, r"error='slow': unknown; use one of 'full', 'locked'"),
        ({"error": "full", "nth": 2}, r"nth=2: sqlite 'full' holds until disarmed"),
        ({"error": "ioerr", "nth": 0}, r"nth=0"),
        ({"error": "full", "extra_pages": -1}, r"extra_pages=-1"),
        ({"error": "corrupt", "table": "nope"}, r"table='nope': no table or index"),
    ],
)
def test_bad_arguments(db: Path, kwargs: dict[str, object], message: str) -> None:
    with FaultInjector() as faults, pytest.raises(FaultArgumentError, match=message):
        faults.sqlite(db, **kwargs)  # type: ignore[arg-type]
    assert active_sites() == []


def test_state_faults_need_an_existing_database(tmp_path: Path) -> None:
    with FaultInjector() as faults, pytest.raises(FaultArgumentError, match="existing database"):
        faults.sqlite(tmp_path / "missing.db", "locked")


def test_corrupt_needs_more_than_one_page(tmp_path: Path) -> None:
    path = tmp_path / "tiny.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with FaultInjector() as faults, pytest.raises(FaultArgumentError, match="more than one page"):
        faults.sqlite(path, "corrupt")


def test_locked_busy_timeout_wins_over_the_codes_own_setting(db: Path) -> None:
    import time

    with FaultInjector() as faults:
        faults.sqlite(db, "locked", busy_timeout=0.05)
        con = sqlite3.connect(db, timeout=30)
        con.execute("PRAGMA busy_timeout = 5000")  # what a careful app does after connecting
        start = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            insert_batch(con, 1)
        assert time.monotonic() - start < 2.0
    assert con.execute("PRAGMA busy_timeout").fetchone() == (5000,)  # the app's value is back
    con.close()


def test_armed_fault_counts_statements(db: Path) -> None:
    with FaultInjector() as faults:
        armed = faults.sqlite(db, "ioerr", nth=10**9)
        con = sqlite3.connect(db)
        for _ in range(3):
            con.execute("SELECT 1")
        con.close()
        assert armed.calls == 3
        assert armed.fired == []


def test_faults_armed_one_after_another_all_reach_an_open_connection(db: Path) -> None:
    """Each new fault is applied to a connection that saw earlier, now freed, ones."""
    import gc

    with FaultInjector() as keeper:
        keeper.sqlite(db, "ioerr", nth=10**9)  # keeps connections opened now wrapped
        con = sqlite3.connect(db)
        for _ in range(6):
            with FaultInjector() as faults:
                faults.sqlite(db, "full")
                with pytest.raises(sqlite3.OperationalError, match="full"):
                    insert_batch(con, 2000)
            del faults
            gc.collect()  # a freed fault's id may be reused by the next one
            # no statement in between: the connection still remembers the last fault
        insert_batch(con, 1)
        con.close()
    assert count(db) == 501
