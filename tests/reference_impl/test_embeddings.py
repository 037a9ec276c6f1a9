"""The offline embedder is deterministic across processes and its index searches exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from reference_impl.embeddings import (
    Embedder,
    FloatMatrix,
    HashedLexicalEmbedder,
    VectorIndex,
    stable_bucket,
    tokenize,
)

TEXTS = [
    "Pandas and matplotlib are excellent tools for data analysis.",
    "Seasonal patterns show up when grouping sales by month.",
    "Neural networks learn layered representations.",
]


def test_tokenize_drops_stop_words_and_stems_plurals() -> None:
    assert tokenize("The Networks and the batteries of a bus") == ["network", "battery", "bus"]
    assert tokenize("I'm here") == []


def test_vectors_are_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from reference_impl.embeddings import HashedLexicalEmbedder;"
        "v = HashedLexicalEmbedder().embed(['edge devices run quantized models'])[0];"
        "print(sorted(int(i) for i in v.nonzero()[0]))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    here = HashedLexicalEmbedder().embed(["edge devices run quantized models"])[0]
    assert outputs == {f"{sorted(int(i) for i in here.nonzero()[0])}\n"}
    assert stable_bucket("edge", 512) == stable_bucket("edge", 512)


def test_rows_are_unit_length_or_zero() -> None:
    matrix = HashedLexicalEmbedder(dim=64).embed(["alpha beta beta", "the of and", ""])
    assert matrix.shape == (3, 64)
    assert matrix.dtype == np.float32
    assert np.linalg.norm(matrix[0]) == pytest.approx(1.0)
    assert not matrix[1].any()
    assert not matrix[2].any()


def test_bad_dim_is_rejected() -> None:
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        HashedLexicalEmbedder(dim=0)


def test_search_ranks_by_shared_rare_words() -> None:
    index = VectorIndex()
    index.add(TEXTS)
    hits = index.search("pandas matplotlib", top_k=3)
    assert [h.position for h in hits] == [0]  # the others share no word and are left out
    assert hits[0].text == TEXTS[0]
    assert 0 < hits[0].score <= 1.0
    assert index.search("quantum chromodynamics", top_k=3) == []
    assert index.search("pandas", top_k=0) == []


def test_idf_prefers_the_rare_word() -> None:
    index = VectorIndex()
    index.add(["data data pandas", "data tables", "data frames", "data lakes"])
    with_idf = index.search("data pandas", top_k=1)
    assert with_idf[0].position == 0
    plain = VectorIndex(idf=False)
    plain.add(["data tables", "pandas frames"])
    assert plain.search("data pandas", top_k=2)[0].score == pytest.approx(0.5)


def test_negative_top_k_is_rejected() -> None:
    with pytest.raises(ValueError, match="top_k must be >= 0, got -1"):
        VectorIndex().search("x", top_k=-1)


class _CharCounts:
    """A toy embedder: counts of a, b, c. Shows the Protocol is all an embedder needs."""

    dim = 3

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        return np.array(
            [[t.count("a"), t.count("b"), t.count("c")] for t in texts], dtype=np.float32
        )


def test_custom_embedder_plugs_in_without_idf() -> None:
    embedder = _CharCounts()
    assert isinstance(embedder, Embedder)
    index = VectorIndex(embedder)
    assert not index.idf
    index.add(["aaa", "bbb", "abc"])
    assert [h.text for h in index.search("aab", top_k=2)] == ["aaa", "abc"]
    with pytest.raises(ValueError, match=r"expected vectors of shape \(1, 3\)"):
        index.add(["x"], np.zeros((1, 4), dtype=np.float32))


def test_searches_running_while_texts_are_added_see_a_consistent_index() -> None:
    index = VectorIndex()
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        try:
            while not done.is_set():
                for hit in index.search("sensor reading", top_k=5):
                    assert hit.text == f"sensor reading {hit.position}"
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    searchers = [threading.Thread(target=search) for _ in range(2)]
    for thread in searchers:
        thread.start()
    try:
        for n in range(300):
            index.add([f"sensor reading {n}"])
    finally:
        done.set()
        for thread in searchers:
            thread.join(10)
    assert errors == []
    assert len(index) == 300


# -- the bounded index ----------------------------------------------------------------------


def test_bounded_index_evicts_the_oldest_and_hands_them_back() -> None:
    from reference_impl.embeddings import BoundedVectorIndex

    index = BoundedVectorIndex(3)
    assert index.add([10, 11], TEXTS[:2]) == []
    evicted = index.add([12, 13], [TEXTS[2], "Battery drains in the cold."])
    assert [(e.key, e.text) for e in evicted] == [(10, TEXTS[0])]
    assert evicted[0].vector.shape == (HashedLexicalEmbedder().dim,)
    assert index.items() == [(11, TEXTS[1]), (12, TEXTS[2]), (13, "Battery drains in the cold.")]
    assert [hit.position for hit in index.search("neural networks", 1)] == [12]
    assert index.search("pandas matplotlib", 3) == []  # evicted: not found any more
    with pytest.raises(ValueError, match="capacity must be an integer >= 1, got 0"):
        BoundedVectorIndex(0)


def test_bounded_index_scores_like_the_unbounded_index_over_the_same_texts() -> None:
    from reference_impl.embeddings import BoundedVectorIndex

    texts = [f"{TEXTS[n % 3]} note {n} about device {n % 7}" for n in range(300)]
    bounded = BoundedVectorIndex(100)  # grows 64 -> 100, then wraps around
    bounded.add(list(range(300)), texts)
    plain = VectorIndex()
    plain.add(texts[200:])
    for query in ("neural networks device 3", "sales month note", "pandas 5"):
        ours = [(h.position, round(h.score, 5)) for h in bounded.search(query, 5)]
        theirs = [(h.position + 200, round(h.score, 5)) for h in plain.search(query, 5)]
        assert ours == theirs
