"""Offline text embeddings and exact vector search, with no model download.

`HashedLexicalEmbedder` turns text into hashed bag-of-words vectors (sublinear term frequency,
stop words dropped, a light plural stemmer), L2-normalised, with numpy. Feature buckets come
from BLAKE2b, never Python's salted ``hash()``, so a text embeds to the same vector on every
machine and in every process. `VectorIndex` keeps the vectors of the texts it was given and
answers exact top-k cosine queries; over a lexical embedder it also weights buckets by inverse
document frequency (TF-IDF), so rare words such as "matplotlib" outweigh common ones.
`BoundedVectorIndex` does the same over at most `capacity` texts in a ring
(the oldest are evicted and handed back to the caller), so its memory and search cost stay
flat however many texts pass through it.

This is a lexical stand-in for a sentence-embedding model: it matches shared words, not
meaning. Anything with the `Embedder` protocol (e.g. a wrapper around a local ONNX model)
plugs into `VectorIndex`, the context system and the TaskGroup manager instead.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]
Counts = npt.NDArray[np.int64]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words that carry no topic; dropping them does most of what IDF would on tiny corpora.
_STOP_WORDS_TEXT = """
    a about above after again all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves s t d ll m re ve
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into a ``(len(texts), dim)`` float32 matrix, one row per text."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix: ...


def tokenize(text: str) -> list[str]:
    """Lower-cased content words with a light plural stemmer ("networks" -> "network")."""
    words: list[str] = []
    for raw in _WORD.findall(text.lower()):
        if raw in STOP_WORDS:
            continue
        word = raw
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        words.append(word)
    return words


@functools.lru_cache(maxsize=4096)
def stable_bucket(token: str, dim: int) -> int:
    """The feature bucket of `token`: the same on every machine and in every process.

    Cached (at most 4,096 words, well under 1 MiB): a conversation keeps reusing its words.
    """
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dim


@dataclass(frozen=True)
class HashedLexicalEmbedder:
    """Hashed bag-of-words vectors: weight ``1 + log(tf)`` per word, rows L2-normalised.

    A text with no content words embeds to the zero vector (it matches nothing).
    """

    dim: int = 512

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"HashedLexicalEmbedder dim must be >= 1, got {self.dim}")

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word, count in Counter(tokenize(text)).items():
                matrix[row, stable_bucket(word, self.dim)] += 1.0 + math.log(count)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix


@dataclass(frozen=True)
class SearchHit:
    """One search result: the position of the text in the index, its score and the text."""

    position: int
    score: float
    text: str


def _vectors_for(
    embedder: Embedder, texts: Sequence[str], vectors: FloatMatrix | None
) -> FloatMatrix:
    """`vectors` as float32 (the embedder's vectors of `texts` when None), one row per text."""
    rows = np.asarray(embedder.embed(texts) if vectors is None else vectors, dtype=np.float32)
    if rows.shape != (len(texts), embedder.dim):
        raise ValueError(
            f"expected vectors of shape {(len(texts), embedder.dim)}, got {rows.shape}"
        )
    return rows


def idf_weights(rows: int, document_frequency: Counts) -> FloatMatrix:
    """Smoothed IDF per dimension, as in scikit-learn: ``ln((1 + n) / (1 + df)) + 1``."""
    idf = np.log((1.0 + rows) / (1.0 + document_frequency)) + 1.0
    weights: FloatMatrix = idf.astype(np.float32)
    return weights


def idf_cosines(
    query_vector: FloatMatrix, rows: FloatMatrix, weights: FloatMatrix | None
) -> FloatMatrix:
    """cos(row * w, query * w) for each row, as ``row . (q w^2) / (sqrt(row^2 . w^2) |q w|)``.

    No temporary the size of `rows` is made, so a search costs a few vectors of memory, not
    a copy of the index.
    """
    squared = np.ones_like(query_vector) if weights is None else weights * weights
    query_norm = float(np.sqrt(query_vector * query_vector @ squared))
    if query_norm == 0.0 or len(rows) == 0:
        return np.zeros(len(rows), dtype=np.float32)
    # einsum runs single-threaded: a multi-threaded BLAS matvec this small waits on its
    # helper threads, which cost milliseconds on a busy 2-core board. The three-operand
    # form sums row^2 w^2 without an n x dim temporary.
    dots = np.einsum("ij,j->i", rows, query_vector * squared)
    norms = np.sqrt(np.einsum("ij,ij,j->i", rows, rows, squared))
    scores: FloatMatrix = np.divide(
        dots, norms * query_norm, out=np.zeros_like(dots), where=norms > 0
    )
    return scores


class VectorIndex:
    """Exact top-k cosine search over the texts added to it.

    `idf` weights dimensions by inverse document frequency (`idf_weights`) before the cosine;
    it defaults to on for the lexical embedder, where a dimension is a word, and off for other
    embedders, whose dimensions are not words. Vectors are appended to a buffer that grows by
    doubling, and document frequencies are kept up to date on `add`, so a search neither
    copies nor rescans the matrix. Thread-safe: a search sees the index as it was when the
    search began (rows are only ever appended, and a grown buffer is a new array).
    """

    def __init__(self, embedder: Embedder | None = None, *, idf: bool | None = None) -> None:
        self.embedder: Embedder = embedder if embedder is not None else HashedLexicalEmbedder()
        self.idf = isinstance(self.embedder, HashedLexicalEmbedder) if idf is None else idf
        self._lock = threading.Lock()
        self._texts: list[str] = []
        self._buffer: FloatMatrix = np.zeros((0, self.embedder.dim), dtype=np.float32)
        self._df = np.zeros(self.embedder.dim, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(self._texts)

    def add(self, texts: Sequence[str], vectors: FloatMatrix | None = None) -> FloatMatrix:
        """Embed `texts` (or take their precomputed `vectors`), store them, return the vectors."""
        vectors = _vectors_for(self.embedder, texts, vectors)
        with self._lock:
            size = len(self._texts)
            if size + len(texts) > len(self._buffer):
                grown = np.zeros(
                    (max(2 * len(self._buffer), size + len(texts), 64), self.embedder.dim),
                    dtype=np.float32,
                )
                grown[:size] = self._buffer[:size]
                self._buffer = grown
            self._buffer[size : size + len(texts)] = vectors
            self._df = self._df + np.count_nonzero(vectors, axis=0)
            self._texts.extend(texts)
        return vectors

    def _snapshot(self) -> tuple[FloatMatrix, list[str], Counts]:
        with self._lock:
            # Rows below the size never change and the lists only grow: views stay valid.
            size = len(self._texts)
            return self._buffer[:size], self._texts, self._df

    def _weights(self, rows: int, document_frequency: Counts) -> FloatMatrix | None:
        return idf_weights(rows, document_frequency) if self.idf and rows else None

    def search(self, query: str, top_k: int, *, min_score: float = 0.0) -> list[SearchHit]:
        """The `top_k` stored texts most similar to `query`, best first.

        Only scores above `min_score` are returned (by default: texts sharing nothing with the
        query are left out).
        """
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        matrix, texts, df = self._snapshot()
        if top_k == 0 or len(matrix) == 0:
            return []
        weights = self._weights(len(matrix), df)
        scores = idf_cosines(self.embedder.embed([query])[0], matrix, weights)
        k = min(top_k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        # Stable order: best score first, earlier text first among equals.
        ordered = sorted(best.tolist(), key=lambda i: (-float(scores[i]), i))
        return [
            SearchHit(i, float(scores[i]), texts[i])
            for i in ordered
            if float(scores[i]) > min_score
        ]


@dataclass(frozen=True)
class Evicted:
    """A text pushed out of a `BoundedVectorIndex`: its key, text and vector."""

    key: int
    text: str
    vector: FloatMatrix


class BoundedVectorIndex:
    """Exact top-k cosine search over the newest `capacity` texts, each under an integer key.

    Vectors live in a ``(capacity, dim)`` float32 ring, allocated by doubling up to
    `capacity` (a small conversation does not pay for a large cap); once full, adding never
    copies the stored rows, and a search scores at most `capacity` rows. When full, each added text
    evicts the oldest, which `add` returns (to spill it elsewhere or count it dropped).
    IDF (as in `VectorIndex`) comes from per-dimension document frequencies kept up to date on
    every add and eviction, so a query does not rescan the matrix for them. Not thread-safe:
    the owner serialises calls (the context system holds its lock).
    """

    def __init__(
        self, capacity: int, embedder: Embedder | None = None, *, idf: bool | None = None
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(
                f"BoundedVectorIndex capacity must be an integer >= 1, got {capacity!r}"
            )
        self.capacity = capacity
        self.embedder: Embedder = embedder if embedder is not None else HashedLexicalEmbedder()
        self.idf = isinstance(self.embedder, HashedLexicalEmbedder) if idf is None else idf
        dim, rows = self.embedder.dim, min(capacity, 64)
        self._ring: FloatMatrix = np.zeros((rows, dim), dtype=np.float32)
        self._df = np.zeros(dim, dtype=np.int64)
        self._keys: list[int] = [0] * rows
        self._texts: list[str] = [""] * rows
        self._start = 0  # slot of the oldest text (moves only once the ring is at capacity)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _slot(self, age: int) -> int:
        return (self._start + age) % len(self._keys)

    def _grow(self) -> None:
        """Double the allocated rows (up to `capacity`); only called before any eviction."""
        rows = min(self.capacity, 2 * len(self._keys))
        grown = np.zeros((rows, self._ring.shape[1]), dtype=np.float32)
        grown[: len(self._ring)] = self._ring
        self._ring = grown
        extra = rows - len(self._keys)
        self._keys.extend([0] * extra)
        self._texts.extend([""] * extra)

    def items(self) -> list[tuple[int, str]]:
        """``(key, text)`` of every stored text, oldest first."""
        return [
            (self._keys[slot], self._texts[slot])
            for slot in (self._slot(age) for age in range(self._size))
        ]

    def add(
        self, keys: Sequence[int], texts: Sequence[str], vectors: FloatMatrix | None = None
    ) -> list[Evicted]:
        """Store `texts` under `keys` (embedding them unless `vectors` is given); return the
        texts evicted to make room, oldest first."""
        if len(keys) != len(texts):
            raise ValueError(f"got {len(keys)} keys for {len(texts)} texts")
        vectors = _vectors_for(self.embedder, texts, vectors)
        evicted: list[Evicted] = []
        for key, text, vector in zip(keys, texts, vectors, strict=True):
            if self._size == len(self._keys) < self.capacity:
                self._grow()
            if self._size == self.capacity:
                slot = self._start
                old = self._ring[slot].copy()
                evicted.append(Evicted(self._keys[slot], self._texts[slot], old))
                self._df -= old != 0
                self._start = self._slot(1)
                self._size -= 1
            slot = self._slot(self._size)
            self._ring[slot] = vector
            self._keys[slot], self._texts[slot] = key, text
            self._df += vector != 0
            self._size += 1
        return evicted

    def weights(self) -> FloatMatrix | None:
        """IDF weight per dimension over the stored texts (None without IDF or when empty)."""
        if not self.idf or self._size == 0:
            return None
        return idf_weights(self._size, self._df)

    def score(self, query: str, vectors: FloatMatrix) -> FloatMatrix:
        """Cosine of `query` against each row of `vectors`, IDF-weighted like a search."""
        rows = np.asarray(vectors, dtype=np.float32)
        return idf_cosines(self.embedder.embed([query])[0], rows, self.weights())

    def search(self, query: str, top_k: int, *, min_score: float = 0.0) -> list[SearchHit]:
        """The `top_k` stored texts most similar to `query`, best first; `SearchHit.position`
        is the text's key. Only scores above `min_score` are returned."""
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if top_k == 0 or self._size == 0:
            return []
        size = self._size
        query_vector = self.embedder.embed([query])[0]
        scores = idf_cosines(query_vector, self._ring[:size], self.weights())
        k = min(top_k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        # Oldest first among equal scores, as VectorIndex does.
        start, capacity = self._start, len(self._keys)
        ordered = sorted(
            best.tolist(), key=lambda slot: (-float(scores[slot]), (slot - start) % capacity)
        )
        return [
            SearchHit(self._keys[slot], float(scores[slot]), self._texts[slot])
            for slot in ordered
            if float(scores[slot]) > min_score
        ]


if __name__ == "__main__":
    index = VectorIndex()
    index.add(
        [
            "Pandas and matplotlib are excellent tools for data analysis.",
            "Seasonal patterns show up when grouping sales by month.",
            "Neural networks learn layered representations.",
        ]
    )
    for hit in index.search("pandas matplotlib", top_k=2):
        print(f"{hit.score:.3f}  {hit.text}")
