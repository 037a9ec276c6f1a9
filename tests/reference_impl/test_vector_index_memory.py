"""VectorIndex (the TaskGroup manager's index) searches without copying its matrix (issue 17:
"each query copies the matrix for IDF, 2x peak"), and its scores are still the IDF cosine."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from reference_impl.embeddings import HashedLexicalEmbedder, VectorIndex

ROWS, DIM = 20_000, 256


def _random_sparse_rows(rows: int, dim: int, seed: int) -> np.ndarray:
    """Unit rows with ~10% non-zero buckets, like hashed bag-of-words vectors."""
    rng = np.random.default_rng(seed)
    matrix = rng.random((rows, dim), dtype=np.float32)
    matrix[rng.random((rows, dim)) > 0.1] = 0.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


@pytest.fixture(scope="module")
def index() -> VectorIndex:
    built = VectorIndex(HashedLexicalEmbedder(dim=DIM), idf=True)
    texts = [f"text {i}" for i in range(ROWS)]
    built.add(texts, _random_sparse_rows(ROWS, DIM, seed=17))
    built.search("warm up", top_k=5)
    return built


def test_a_search_allocates_far_less_than_the_matrix(index: VectorIndex) -> None:
    matrix_bytes = ROWS * DIM * 4
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        index.search("edge inference memory budget", top_k=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A copy of the matrix (the old IDF weighting did two) would be >= 1.0x on its own.
    assert peak < 0.25 * matrix_bytes, f"search peak {peak / matrix_bytes:.2f}x the matrix"


def test_scores_are_the_idf_weighted_cosine(index: VectorIndex) -> None:
    query = "edge inference memory budget for a small board"
    hits = index.search(query, top_k=20, min_score=-1.0)
    matrix = np.stack([row for row in _random_sparse_rows(ROWS, DIM, seed=17)])
    df = np.count_nonzero(matrix, axis=0)
    weights = np.log((1.0 + ROWS) / (1.0 + df)) + 1.0
    q = index.embedder.embed([query])[0] * weights
    rows = matrix * weights
    norms = np.linalg.norm(rows, axis=1)
    expected = (rows @ q) / np.where(norms > 0, norms * np.linalg.norm(q), 1.0)
    best = np.argsort(-expected, kind="stable")[:20]
    assert [h.position for h in hits] == best.tolist()
    assert [h.score for h in hits] == pytest.approx(expected[best].tolist(), abs=1e-5)


def test_scores_follow_texts_added_after_a_search() -> None:
    grown = VectorIndex()
    grown.add(["data pandas", "data tables"])
    assert grown.search("pandas", top_k=1)[0].position == 0
    grown.add(["pandas pandas pandas", "data lakes"])
    fresh = VectorIndex()
    fresh.add(["data pandas", "data tables", "pandas pandas pandas", "data lakes"])
    assert grown.search("data pandas", top_k=4) == fresh.search("data pandas", top_k=4)
