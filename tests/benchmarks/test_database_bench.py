"""Benchmarks for reference_impl.database_optimization, each against a bare baseline.

Every figure is a ratio (or a latency) measured in the same run as its baseline, interleaved
so that noise from a shared machine hits both sides alike: whole batches alternate for inserts,
single queries alternate for searches. Full sizes (50,000
documents to insert, 100,000 to search, 100,000 x 384 vectors) are ``slow`` and run under
``make bench``; the default run uses small sizes as a smoke check. Figures go to pytest-benchmark's
``extra_info`` and are printed (``-s``) as ``DB-BENCH`` lines.

Targets (from the issue): insert >= 0.8x raw ``executemany`` throughput; search_documents
top-10 median < 5 ms; vector top-10 <= 1.2x bare numpy. The asserts below are looser sanity
bounds, because a noisy 2-core machine must not turn a benchmark into a flaky test; the report
quotes the measured figures against the targets.

Issue 17 (the bars themselves are asserted in ``make test`` by
tests/reference_impl/test_database_vectors.py): insert one row then search at 100,000 x 384
<= 3x a warm search (before: 408-534 ms against 13.6-14.6 ms warm, ~37x, because every insert
rebuilt the matrix; after: 8.1 ms against 7.9 ms, 1.03x, on a quiet moment, up to 2.5x in wall
time at a load average of 10), search peak memory <= 1.2x the matrix (before: 3.13x for the
search after an insert; after: 0.008x warm or after an insert, 1.10x when the index is built).
The cost of ``PRAGMA quick_check`` on open is measured here too (the figure for
``DatabaseConfig.check_on_open``).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faker import Faker

from reference_impl.database_optimization import (
    INSERT_DOCUMENT_SQL,
    DatabaseConfig,
    EdgeDatabaseOptimizer,
    fts5_query,
)

FULL = {"insert_docs": 50_000, "search_docs": 100_000, "vectors": 100_000}
SMOKE = {"insert_docs": 1_000, "search_docs": 2_000, "vectors": 2_000}
DIM = 384


def _corpus(n: int, seed: int = 1104) -> list[dict[str, Any]]:
    """Faker documents: a sentence as title, ~75 English words of content (seeded)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [
        {
            "title": fake.sentence(nb_words=6),
            "content": fake.paragraph(nb_sentences=15),
            "type": "article",
            "metadata": {"source": "faker", "index": i},
        }
        for i in range(n)
    ]


_CORPUS: list[dict[str, Any]] = []


def _documents(n: int) -> list[dict[str, Any]]:
    """The first ``n`` documents of one seeded corpus, generated once per process."""
    if len(_CORPUS) < n:
        _CORPUS[:] = _corpus(n)
    return _CORPUS[:n]


def _report(benchmark: Any, name: str, **figures: float) -> None:
    benchmark.extra_info.update(figures)
    print(f"\nDB-BENCH {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items()))


def _fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _raw_connection(path: Path) -> sqlite3.Connection:
    """A bare connection with the optimizer's schema already created and the same pragmas."""
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=1)):
        pass
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _nothing() -> None:
    return None


def _paired(
    benchmark: Any,
    ours: Callable[[], object],
    baseline: Callable[[], object],
    rounds: int,
    prepare_ours: Callable[[], None] = _nothing,
    prepare_baseline: Callable[[], None] = _nothing,
) -> tuple[float | None, float]:
    """Interleave baseline and ours; return (median ours, median baseline) in seconds.

    The baseline runs (timed by us) in pytest-benchmark's untimed setup of each round, ours is
    pytest-benchmark's timed target; the ``prepare_*`` steps are not timed. Under xdist
    pytest-benchmark is disabled and times nothing: ours is then None.
    """
    baseline_times: list[float] = []

    def setup() -> None:
        prepare_baseline()
        start = time.perf_counter()
        baseline()
        baseline_times.append(time.perf_counter() - start)
        prepare_ours()

    benchmark.pedantic(ours, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    ours_median = None if stats is None else float(stats.stats.median)
    return ours_median, statistics.median(baseline_times)


# --- batch insert -------------------------------------------------------------------------


def _insert_case(benchmark: Any, tmp_path: Path, n: int, rounds: int) -> float | None:
    docs = _documents(n)
    state: dict[str, Any] = {}

    def reset() -> None:
        if "db" in state:
            state.pop("db").close()
        state["db"] = EdgeDatabaseOptimizer(
            DatabaseConfig(db_path=_fresh(tmp_path, "ours.db"), connection_pool_size=1)
        )

    def ours() -> None:
        assert state["db"].batch_insert_documents(docs) == n

    def prepare_raw() -> None:
        state["raw"] = _raw_connection(_fresh(tmp_path, "raw.db"))

    def raw() -> None:
        conn = state.pop("raw")
        try:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                INSERT_DOCUMENT_SQL,
                (
                    (d["title"], d["content"], d["type"], json.dumps(d["metadata"]), now)
                    for d in docs
                ),
            )
            conn.execute(
                "INSERT INTO documents_fts(rowid, title, content) "
                "SELECT id, title, content FROM documents"
            )
            conn.execute("COMMIT")
            assert conn.execute("SELECT count(*) FROM documents_fts").fetchone()[0] == n
        finally:
            conn.close()

    try:
        ours_s, raw_s = _paired(benchmark, ours, raw, rounds, reset, prepare_raw)
    finally:
        if "db" in state:
            state.pop("db").close()
        if "raw" in state:
            state.pop("raw").close()
    if ours_s is None:
        return None
    ratio = raw_s / ours_s
    _report(
        benchmark,
        f"batch_insert_documents x{n}",
        ours_docs_per_s=n / ours_s,
        raw_docs_per_s=n / raw_s,
        throughput_ratio=ratio,
    )
    return ratio


def test_batch_insert_vs_raw_executemany_smoke(benchmark: Any, tmp_path: Path) -> None:
    _insert_case(benchmark, tmp_path, SMOKE["insert_docs"], rounds=2)


@pytest.mark.slow
def test_batch_insert_vs_raw_executemany_full(benchmark: Any, tmp_path: Path) -> None:
    ratio = _insert_case(benchmark, tmp_path, FULL["insert_docs"], rounds=5)
    assert ratio is None or ratio >= 0.5  # target 0.8; looser bound against machine noise


# --- full-text search ---------------------------------------------------------------------


def _queries(corpus: list[dict[str, Any]], count: int, seed: int = 7) -> list[str]:
    """Two or three words taken from a random document: realistic, each matches something."""
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(count):
        words = corpus[int(rng.integers(len(corpus)))]["content"].rstrip(".").split()
        picks = rng.choice(len(words), size=int(rng.integers(2, 4)), replace=False)
        queries.append(" ".join(words[int(i)].strip(".,").lower() for i in sorted(picks)))
    return queries


def _search_case(benchmark: Any, tmp_path: Path, n: int, rounds: int) -> float:
    docs = _documents(n)
    queries = _queries(docs, 100)
    path = tmp_path / "search.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=2)) as db:
        for start in range(0, n, 10_000):
            db.batch_insert_documents(docs[start : start + 10_000])
        db.optimize()  # the maintenance step recommended after a bulk load
        sql = (
            "SELECT d.id, d.title, d.content FROM (SELECT rowid, rank FROM documents_fts "
            "WHERE documents_fts MATCH ? ORDER BY rank LIMIT 10) AS f "
            "JOIN documents AS d ON d.id = f.rowid ORDER BY f.rank"
        )
        expressions = [fts5_query(q) for q in queries]
        ours_latencies: list[float] = []
        raw_latencies: list[float] = []
        hits: list[int] = []
        with db.pool.connection("bench-baseline") as conn:
            # The figures: each query timed through the API and raw, back to back, so that
            # noise from a shared machine lands on both alike.
            for _ in range(rounds):
                for query, expression in zip(queries, expressions, strict=True):
                    start = time.perf_counter()
                    conn.execute(sql, (expression,)).fetchall()
                    raw_latencies.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    found = db.search_documents(query, limit=10)
                    ours_latencies.append(time.perf_counter() - start)
                    hits.append(len(found))

        def ours() -> None:
            for query in queries:
                db.search_documents(query, limit=10)

        # pytest-benchmark's record (for its JSON and comparisons): all queries through the API
        benchmark.pedantic(ours, rounds=rounds, iterations=1)
    assert min(hits) >= 1  # every query matches its source document
    median_ms = statistics.median(ours_latencies) * 1000
    _report(
        benchmark,
        f"search_documents top-10 over {n} docs, {len(queries)} queries x {rounds} rounds",
        median_ms=median_ms,
        p90_ms=float(np.percentile(ours_latencies, 90)) * 1000,
        raw_fts5_median_ms=statistics.median(raw_latencies) * 1000,
        median_hits=statistics.median(hits),
    )
    return median_ms


def test_search_documents_latency_smoke(benchmark: Any, tmp_path: Path) -> None:
    _search_case(benchmark, tmp_path, SMOKE["search_docs"], rounds=2)


@pytest.mark.slow
def test_search_documents_latency_full(benchmark: Any, tmp_path: Path) -> None:
    median_ms = _search_case(benchmark, tmp_path, FULL["search_docs"], rounds=5)
    assert median_ms < 25  # target 5 ms; looser bound against machine noise


# --- vector search ------------------------------------------------------------------------


def _vectors_case(benchmark: Any, tmp_path: Path, n: int, rounds: int) -> float:
    rng = np.random.default_rng(384)
    matrix = rng.standard_normal((n, DIM)).astype(np.float32)
    queries = rng.standard_normal((20, DIM)).astype(np.float32)
    path = tmp_path / "vectors.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=2)) as db:
        for start in range(0, n, 20_000):
            db.batch_insert_embeddings(
                {"vector_id": f"v{i}", "vector": matrix[i]}
                for i in range(start, min(n, start + 20_000))
            )
        db.search_similar(queries[0], top_k=10)  # builds the cached matrix once
        # the bare baseline gets the same advantage: a matrix already in memory, unit rows
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        ours_times: list[float] = []
        bare_times: list[float] = []
        for _ in range(rounds):
            # each query through the API and bare, back to back (noise lands on both alike)
            for query in queries:
                start = time.perf_counter()
                scores = unit @ query
                top = np.argpartition(scores, n - 10)[n - 10 :]
                want = [f"v{i}" for i in top[np.argsort(-scores[top])]]
                bare_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                got = [r["vector_id"] for r in db.search_similar(query, top_k=10)]
                ours_times.append(time.perf_counter() - start)
                assert got == want  # exact search: the same ten, in the same order

        # pytest-benchmark's record (for its JSON and comparisons): all queries through the API
        benchmark.pedantic(
            lambda: [db.search_similar(q, top_k=10) for q in queries], rounds=rounds, iterations=1
        )
    ours_ms = statistics.median(ours_times) * 1000
    bare_ms = statistics.median(bare_times) * 1000
    ratio = ours_ms / bare_ms
    _report(
        benchmark,
        f"search_similar top-10 over {n}x{DIM} float32, {len(queries)} queries x {rounds}",
        ours_median_ms=ours_ms,
        bare_numpy_median_ms=bare_ms,
        time_ratio=ratio,
    )
    return ratio


def test_vector_search_vs_bare_numpy_smoke(benchmark: Any, tmp_path: Path) -> None:
    _vectors_case(benchmark, tmp_path, SMOKE["vectors"], rounds=2)


@pytest.mark.slow
def test_vector_search_vs_bare_numpy_full(benchmark: Any, tmp_path: Path) -> None:
    ratio = _vectors_case(benchmark, tmp_path, FULL["vectors"], rounds=5)
    assert ratio <= 2.0  # target 1.2; looser bound against machine noise


# --- vector index upkeep (issue 17) ----------------------------------------------------------


def _insert_then_search_case(benchmark: Any, tmp_path: Path, n: int, rounds: int) -> float:
    """Insert one row then search, against a warm search; min of ``rounds`` each, interleaved."""
    rng = np.random.default_rng(1717)
    matrix = rng.standard_normal((n, DIM)).astype(np.float32)
    query = rng.standard_normal(DIM).astype(np.float32)
    path = tmp_path / "upkeep.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=2)) as db:
        for start in range(0, n, 20_000):
            db.batch_insert_embeddings(
                {"vector_id": f"v{i}", "vector": matrix[i]}
                for i in range(start, min(n, start + 20_000))
            )
        db.search_similar(query, top_k=10)  # builds the index once
        rows = iter(range(10**6))
        warm_times: list[float] = []

        def warm() -> None:
            start = time.perf_counter()
            db.search_similar(query, top_k=10)
            warm_times.append(time.perf_counter() - start)

        def ours() -> None:
            db.batch_insert_embeddings([{"vector_id": f"new{next(rows)}", "vector": query}])
            db.search_similar(query, top_k=10)

        upkeep_times: list[float] = []

        def timed_ours() -> None:
            start = time.perf_counter()
            ours()
            upkeep_times.append(time.perf_counter() - start)

        benchmark.pedantic(timed_ours, setup=warm, rounds=rounds, iterations=1, warmup_rounds=0)
        tracemalloc.start()
        try:
            db.search_similar(query, top_k=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        stats = db.vector_index_stats()
    ratio = min(upkeep_times) / min(warm_times)
    _report(
        benchmark,
        f"insert one row + search_similar over {n}x{DIM}, min of {rounds}",
        warm_search_min_ms=min(warm_times) * 1000,
        insert_and_search_min_ms=min(upkeep_times) * 1000,
        ratio=ratio,
        search_peak_x_matrix=peak / (n * DIM * 4),
        index_rebuilds=stats["rebuilds"],
    )
    return ratio


def test_insert_then_search_vs_warm_search_smoke(benchmark: Any, tmp_path: Path) -> None:
    _insert_then_search_case(benchmark, tmp_path, SMOKE["vectors"], rounds=5)


@pytest.mark.slow
def test_insert_then_search_vs_warm_search_full(benchmark: Any, tmp_path: Path) -> None:
    ratio = _insert_then_search_case(benchmark, tmp_path, FULL["vectors"], rounds=9)
    assert ratio <= 3.0  # the bar (also asserted in make test at full size)


def _quick_check_case(benchmark: Any, tmp_path: Path, n: int, rounds: int) -> float:
    """Opening with ``PRAGMA quick_check`` against opening without it (min of ``rounds``)."""
    rng = np.random.default_rng(2)
    path = tmp_path / "checked.db"
    with EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=1)) as db:
        for start in range(0, n, 20_000):
            chunk = rng.standard_normal((min(n, start + 20_000) - start, DIM)).astype(np.float32)
            db.batch_insert_embeddings(
                {"vector_id": f"v{start + i}", "vector": v} for i, v in enumerate(chunk)
            )
        db.checkpoint("TRUNCATE")
    unchecked_times: list[float] = []

    def unchecked() -> None:
        start = time.perf_counter()
        config = DatabaseConfig(db_path=path, connection_pool_size=1, check_on_open=False)
        EdgeDatabaseOptimizer(config).close()
        unchecked_times.append(time.perf_counter() - start)

    checked_times: list[float] = []

    def checked() -> None:
        start = time.perf_counter()
        EdgeDatabaseOptimizer(DatabaseConfig(db_path=path, connection_pool_size=1)).close()
        checked_times.append(time.perf_counter() - start)

    benchmark.pedantic(checked, setup=unchecked, rounds=rounds, iterations=1, warmup_rounds=0)
    size_mib = path.stat().st_size / 2**20
    check_ms = (min(checked_times) - min(unchecked_times)) * 1000
    _report(
        benchmark,
        f"open with quick_check, {n}x{DIM} vectors ({size_mib:.0f} MiB), min of {rounds}",
        open_checked_ms=min(checked_times) * 1000,
        open_unchecked_ms=min(unchecked_times) * 1000,
        quick_check_ms=check_ms,
        quick_check_ms_per_mib=check_ms / size_mib,
    )
    return check_ms


def test_quick_check_on_open_cost_smoke(benchmark: Any, tmp_path: Path) -> None:
    _quick_check_case(benchmark, tmp_path, SMOKE["vectors"], rounds=3)


@pytest.mark.slow
def test_quick_check_on_open_cost_full(benchmark: Any, tmp_path: Path) -> None:
    check_ms = _quick_check_case(benchmark, tmp_path, FULL["vectors"], rounds=5)
    assert check_ms > 0  # it reads every page: never free
