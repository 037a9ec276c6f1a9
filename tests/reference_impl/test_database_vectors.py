"""The incremental vector index of EdgeDatabaseOptimizer (issue 17).

The bars from the issue, measured robustly on a shared 2-core machine: insert one row then
search at 100,000 x 384 costs at most 3x a warm search (ratio of the minimum of several
repetitions, same process), and a search never needs more memory than 1.2x the matrix
(tracemalloc, deterministic: numpy reports its buffers to it).
"""

from __future__ import annotations

import itertools
import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reference_impl.database_optimization import (
    BatchInsertError,
    DatabaseConfig,
    EdgeDatabaseOptimizer,
)
from tests.reference_impl.fakes import FailingCommit

N, DIM = 100_000, 384
MATRIX_BYTES = N * DIM * 4


def _old_formula(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    """The scores of the code before issue 17, computed independently here: unit rows (float32,
    normalised in place), a unit query, one product, best first."""
    unit = matrix.astype(np.float32, copy=True)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    q = query.astype(np.float32) / np.float32(np.linalg.norm(query.astype(np.float32)))
    scores = unit @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return order.tolist(), scores[order]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeDatabaseOptimizer, Any]]:
    """100,000 x 384 vectors, inserted once for the module through the API."""
    rng = np.random.default_rng(17)
    matrix = rng.standard_normal((N, DIM)).astype(np.float32)
    path = tmp_path_factory.mktemp("vectors") / "big.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=2)) as db:
        for start in range(0, N, 25_000):
            db.batch_insert_embeddings(
                {"vector_id": f"v{i}", "vector": matrix[i]} for i in range(start, start + 25_000)
            )
        db.checkpoint("TRUNCATE")  # the bulk load's WAL folded in: measure the steady state
        yield db, matrix
    del matrix


def _min_times(actions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Min CPU time of this process per action, the actions interleaved ``repeat`` times.

    CPU time (all threads, BLAS's included) rather than wall time: on a loaded 2-core machine
    a descheduled thread makes wall times jump by tens of milliseconds, CPU time does not.
    """
    best = dict.fromkeys(actions, float("inf"))
    for _ in range(repeat):
        for name, action in actions.items():
            start = time.process_time()
            action()
            best[name] = min(best[name], time.process_time() - start)
    return best


def _peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def test_insert_one_then_search_costs_at_most_3x_a_warm_search(big: Any) -> None:
    db, _ = big
    rng = np.random.default_rng(3)
    query = rng.standard_normal(DIM).astype(np.float32)
    db.search_similar(query, top_k=10)  # the index exists (built once)
    counter = iter(range(10**6))

    def insert_then_search() -> None:
        n = next(counter)
        db.batch_insert_embeddings([{"vector_id": f"new{n}", "vector": query + n}])
        found = db.search_similar(query, top_k=1)
        assert found[0]["vector_id"] == "new0"  # the new row is searchable at once

    best = _min_times(
        {"warm": lambda: db.search_similar(query, top_k=10), "insert": insert_then_search},
        repeat=9,
    )
    warm, cold = best["warm"], best["insert"]
    print(f"\nCPU: warm search {warm * 1e3:.1f} ms, insert one + search {cold * 1e3:.1f} ms")
    assert cold <= 3 * warm, f"insert+search {cold * 1e3:.1f} ms vs warm {warm * 1e3:.1f} ms"


def test_search_peak_memory_is_at_most_1_2x_the_matrix(big: Any) -> None:
    db, _ = big
    query = np.random.default_rng(4).standard_normal(DIM).astype(np.float32)
    db.search_similar(query, top_k=10)
    warm = _peak(lambda: db.search_similar(query, top_k=10))
    db.batch_insert_embeddings([{"vector_id": "peak-probe", "vector": query}])
    after_insert = _peak(lambda: db.search_similar(query, top_k=10))
    print(
        f"\npeak warm {warm / MATRIX_BYTES:.3f}x, after insert {after_insert / MATRIX_BYTES:.3f}x"
    )
    assert warm <= 0.05 * MATRIX_BYTES  # scores and a partition, never a copy of the matrix
    assert after_insert <= 1.2 * MATRIX_BYTES


def test_building_the_index_peaks_at_most_1_2x_the_matrix(big: Any, tmp_path: Path) -> None:
    """A second optimizer on the same file builds its own index from the table."""
    db, _ = big
    query = np.random.default_rng(5).standard_normal(DIM).astype(np.float32)
    config = DatabaseConfig(db_path=db.config.db_path, connection_pool_size=1, check_on_open=False)
    with EdgeDatabaseOptimizer(config) as other:
        peak = _peak(lambda: other.search_similar(query, top_k=10))
        assert other.search_similar(query, top_k=5) == db.search_similar(query, top_k=5)
    print(f"\nbuild peak {peak / MATRIX_BYTES:.3f}x the matrix")
    assert peak <= 1.2 * MATRIX_BYTES


# --- correctness of the incremental index ---------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EdgeDatabaseOptimizer]:
    with EdgeDatabaseOptimizer(
        DatabaseConfig(db_path=tmp_path / "v.db", connection_pool_size=2)
    ) as optimizer:
        yield optimizer


def _insert(db: EdgeDatabaseOptimizer, matrix: np.ndarray, start: int, stop: int) -> None:
    db.batch_insert_embeddings(
        {"vector_id": f"v{i}", "vector": matrix[i], "metadata": {"i": i}}
        for i in range(start, stop)
    )


def _check_against_old_formula(db: EdgeDatabaseOptimizer, matrix: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(5):
        query = rng.standard_normal(matrix.shape[1])
        want, want_scores = _old_formula(matrix, query, 20)
        got = db.search_similar(query, top_k=20)
        assert [r["vector_id"] for r in got] == [f"v{i}" for i in want]
        assert [r["metadata"] for r in got] == [{"i": i} for i in want]
        np.testing.assert_allclose([r["score"] for r in got], want_scores, rtol=0, atol=1e-6)


def test_results_equal_the_old_formula_across_many_appends(db: EdgeDatabaseOptimizer) -> None:
    """Seeded corpus grown in uneven batches past several blocks of the index."""
    matrix = np.random.default_rng(11).standard_normal((9_000, 24)).astype(np.float32)
    _insert(db, matrix, 0, 10)
    db.search_similar(matrix[0], top_k=1)  # the index exists from here on: appends follow
    bounds = [10, 11, 500, 4_096, 4_100, 8_191, 9_000]
    for start, stop in itertools.pairwise(bounds):
        _insert(db, matrix, start, stop)
        _check_against_old_formula(db, matrix[:stop], seed=stop)
    assert db.vector_index_stats()["rebuilds"] == 1  # only the first search built it


def test_insert_appends_instead_of_rebuilding(db: EdgeDatabaseOptimizer) -> None:
    matrix = np.random.default_rng(12).standard_normal((300, 8)).astype(np.float32)
    _insert(db, matrix, 0, 100)
    db.search_similar(matrix[0])
    for start in range(100, 300, 20):
        _insert(db, matrix, start, start + 20)
        assert db.search_similar(matrix[start + 5], top_k=1)[0]["vector_id"] == f"v{start + 5}"
    stats = db.vector_index_stats()
    assert stats["rebuilds"] == 1
    assert stats["appended_rows"] == 200
    assert stats["rows"] == 300


def test_opaque_rows_are_not_indexed_and_do_not_force_a_rebuild(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0]}])
    db.search_similar([1.0, 0.0])
    db.batch_insert_embeddings(
        [{"vector_id": "blob", "vector_data": b"xx"}, {"vector_id": "b", "vector": [0.0, 1.0]}]
    )
    assert [r["vector_id"] for r in db.search_similar([0.0, 1.0], top_k=5)] == ["b", "a"]
    assert db.vector_index_stats()["rebuilds"] == 1


def test_failed_batch_leaves_the_index_as_it_was(db: EdgeDatabaseOptimizer) -> None:
    db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0]}])
    db.search_similar([1.0, 0.0])
    with pytest.raises(BatchInsertError, match=r"row 1 \(field 'vector_id'"):
        db.batch_insert_embeddings(
            [{"vector_id": "b", "vector": [0.0, 1.0]}, {"vector_id": "a", "vector": [0.5, 0.5]}]
        )
    assert [r["vector_id"] for r in db.search_similar([0.0, 1.0], top_k=5)] == ["a"]
    assert db.vector_index_stats()["rows"] == 1


def test_failed_commit_leaves_the_index_as_it_was(
    db: EdgeDatabaseOptimizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommitted rows are never shown: the append happens only after COMMIT returned."""
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return original(*args, factory=FailingCommit, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    db.pool.recycle()
    db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0]}])
    db.search_similar([1.0, 0.0])
    monkeypatch.setattr(FailingCommit, "armed", True)
    with pytest.raises(BatchInsertError, match=r"committing: disk I/O error"):
        db.batch_insert_embeddings([{"vector_id": "b", "vector": [0.0, 1.0]}])
    monkeypatch.setattr(FailingCommit, "armed", False)
    assert [r["vector_id"] for r in db.search_similar([0.0, 1.0], top_k=5)] == ["a"]


def test_another_connection_deleting_or_updating_forces_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=1)) as db:
        db.batch_insert_embeddings(
            [{"vector_id": "a", "vector": [1.0, 0.0]}, {"vector_id": "b", "vector": [0.0, 1.0]}]
        )
        assert db.search_similar([0.0, 1.0], top_k=1)[0]["vector_id"] == "b"
        other = sqlite3.connect(path)
        try:
            with other:
                other.execute("DELETE FROM embeddings WHERE vector_id = 'b'")
            assert [r["vector_id"] for r in db.search_similar([0.0, 1.0], top_k=5)] == ["a"]
            with other:
                other.execute(
                    "UPDATE embeddings SET vector_data = ? WHERE vector_id = 'a'",
                    (np.array([0.0, -1.0], dtype="<f4").tobytes(),),
                )
            assert db.search_similar([0.0, 1.0], top_k=1)[0]["score"] == pytest.approx(-1.0)
            with other:  # a raw insert with an id below the maximum is seen too
                other.execute(
                    "INSERT INTO embeddings(id, vector_id, vector_data, dim, created_at) "
                    "VALUES (-5, 'low', ?, 2, 0)",
                    (np.array([0.0, 1.0], dtype="<f4").tobytes(),),
                )
            assert db.search_similar([0.0, 1.0], top_k=1)[0]["vector_id"] == "low"
        finally:
            other.close()
        assert db.vector_index_stats()["rebuilds"] == 4


def test_rows_of_another_dimension_written_by_raw_sql_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "raw.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=1)) as db:
        db.batch_insert_embeddings([{"vector_id": "a", "vector": [1.0, 0.0]}])
        other = sqlite3.connect(path)
        try:
            with other:
                other.execute(
                    "INSERT INTO embeddings(vector_id, vector_data, dim, created_at) "
                    "VALUES ('wide', ?, 3, 0)",
                    (np.ones(3, dtype="<f4").tobytes(),),
                )
        finally:
            other.close()
        assert [r["vector_id"] for r in db.search_similar([1.0, 0.0], top_k=5)] == ["a"]


def test_concurrent_inserts_and_searches_see_only_committed_whole_batches(
    db: EdgeDatabaseOptimizer,
) -> None:
    import threading

    db.batch_insert_embeddings([{"vector_id": "seed", "vector": [1.0, 0.0, 0.0]}])
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for b in range(60):
                db.batch_insert_embeddings(
                    {"vector_id": f"b{b}-{i}", "vector": [0.0, 1.0, float(b)]} for i in range(5)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                found = db.search_similar([0.0, 1.0, 0.0], top_k=10_000)
                batches: dict[str, int] = {}
                for r in found:
                    if r["vector_id"] != "seed":
                        tag = r["vector_id"].split("-")[0]
                        batches[tag] = batches.get(tag, 0) + 1
                assert all(count == 5 for count in batches.values()), batches
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(db.search_similar([0.0, 1.0, 0.0], top_k=10_000)) == 301
