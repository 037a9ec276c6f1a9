"""edge_corpus: seeded, sized, and identical on every machine for the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from faker import VERSION as FAKER_VERSION

from pytest_edge.bench.corpus import MIB, CorpusFactory, make_corpus
from pytest_edge.errors import EdgeInputError

# Computed once with faker 40.x. The same seed must give these on every machine; a new
# faker major version may change its word lists, and then this test says so.
FINGERPRINTS = {
    "documents": "587a890e9b89bf0efb3d830dd86f03306767fcc026fc3a23ad6b9b5df189d6e9",
    "conversations": "dbcff73f25b9a4c29ce13d1d5e4f1d89a4e15cc1aee967c178840ba346a8b80d",
    "agent_states": "c85b1ebe7e10fa7840d51e85af9ce3a852b335c5f13ca55ba0bb38f05bda17dc",
}


@pytest.mark.parametrize("kind", sorted(FINGERPRINTS))
def test_fingerprint_is_pinned(kind: str) -> None:
    if FAKER_VERSION.split(".")[0] != "40":
        pytest.skip(f"fingerprints were computed with faker 40, this is faker {FAKER_VERSION}")
    assert make_corpus(kind, count=20, seed=42).fingerprint == FINGERPRINTS[kind]


def test_same_in_a_fresh_process_with_other_hash_seed_timezone_and_locale() -> None:
    code = (
        "from pytest_edge.bench.corpus import make_corpus;"
        "print(make_corpus('conversations', count=20, seed=42).fingerprint)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Asia/Kolkata", "LANG": "de_DE.UTF-8"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == make_corpus("conversations", count=20, seed=42).fingerprint


def test_seeds_differ_and_items_look_like_user_data() -> None:
    a = make_corpus("documents", count=5, seed=1)
    b = make_corpus("documents", count=5, seed=2)
    assert a.fingerprint != b.fingerprint
    doc = a[0]
    assert set(doc) >= {"id", "title", "author", "created", "body", "tags"}
    assert len(doc["body"]) > 100
    conv = make_corpus("conversations", count=3, seed=1)[0]
    assert [t["role"] for t in conv["turns"][:2]] == ["user", "assistant"]
    state = make_corpus("agent_states", count=3, seed=1)[0]
    json.dumps(state)  # JSON-ready
    assert len(a.texts()) == 5


@pytest.mark.parametrize("kind", ["documents", "conversations", "agent_states"])
def test_sized_by_megabytes(kind: str) -> None:
    corpus = make_corpus(kind, mb=0.25, seed=3)
    assert 0.25 * MIB <= corpus.size_bytes < 0.25 * MIB + 64 * 1024


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "emails", "count": 1}, "'emails' is not one of documents"),
        ({"kind": "documents"}, "exactly one of count= or mb="),
        ({"kind": "documents", "count": 1, "mb": 1}, "exactly one of count= or mb="),
        ({"kind": "documents", "count": -1}, "count must be a whole number"),
        ({"kind": "documents", "mb": 0}, "mb must be above 0"),
    ],
)
def test_bad_requests_say_what_is_allowed(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EdgeInputError, match=message):
        make_corpus(**kwargs)  # type: ignore[arg-type]


def test_factory_caches_but_returns_independent_copies() -> None:
    factory = CorpusFactory()
    first = factory("documents", count=3)
    first[0]["title"] = "changed"
    again = factory("documents", count=3)
    assert again[0]["title"] != "changed"
    assert again.fingerprint == make_corpus("documents", count=3, seed=0).fingerprint
    assert factory("documents", count=3, seed=9).seed == 9
