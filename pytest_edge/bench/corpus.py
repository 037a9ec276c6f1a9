"""Seeded, realistic data for benchmarks and scenarios: documents, conversations, agent states.

Generated with faker from one seed, sized by count or by megabytes of JSON. The same seed gives
the same corpus on every machine (no clock, no hash order, no locale default is read); its
`fingerprint` proves it. faker's word lists can change between faker releases, so the corpus
also records the faker version that made it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal, get_args

from pytest_edge.errors import EdgeError, EdgeInputError
from pytest_edge.schema import is_number, is_whole

if TYPE_CHECKING:
    from faker import Faker

Kind = Literal["documents", "conversations", "agent_states"]
KINDS: tuple[str, ...] = get_args(Kind)
MIB = 1024 * 1024
_START = datetime(2023, 1, 1, tzinfo=UTC)
_END = datetime(2025, 12, 31, tzinfo=UTC)
_TOOLS = ("search", "calculator", "calendar", "sqlite_query", "http_get", "summarize")


@dataclass(frozen=True)
class Corpus:
    """A generated corpus: the items (JSON-ready dicts) and how to reproduce them."""

    kind: str
    seed: int
    items: tuple[dict[str, Any], ...]
    faker_version: str
    locale: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]

    @property
    def size_bytes(self) -> int:
        """Bytes of the items as compact UTF-8 JSON, one per line."""
        return sum(len(_canonical(item)) + 1 for item in self.items)

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON lines: equal fingerprints, equal corpora."""
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(_canonical(item))
            digest.update(b"\n")
        return digest.hexdigest()

    def texts(self) -> list[str]:
        """The main text of each item (document body, joined turns, scratchpad)."""
        return [_text_of(item) for item in self.items]


def _canonical(item: dict[str, Any]) -> bytes:
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _text_of(item: dict[str, Any]) -> str:
    if "body" in item:
        return str(item["body"])
    if "turns" in item:
        return "\n".join(str(turn["content"]) for turn in item["turns"])
    return str(item.get("scratchpad", ""))


def _when(fake: Faker) -> str:
    moment = fake.date_time_between_dates(datetime_start=_START, datetime_end=_END, tzinfo=UTC)
    return moment.isoformat()


def _document(fake: Faker, index: int) -> dict[str, Any]:
    paragraphs = fake.paragraphs(nb=fake.random_int(2, 12))
    return {
        "id": f"doc-{index:06d}",
        "title": fake.sentence(nb_words=fake.random_int(3, 9)).rstrip("."),
        "author": fake.name(),
        "created": _when(fake),
        "source": fake.uri(),
        "tags": fake.words(nb=fake.random_int(1, 5), unique=True),
        "body": "\n\n".join(paragraphs),
    }


def _conversation(fake: Faker, index: int) -> dict[str, Any]:
    turns = []
    for turn in range(fake.random_int(2, 16)):
        role = "user" if turn % 2 == 0 else "assistant"
        content = (
            fake.sentence(nb_words=fake.random_int(4, 20))
            if role == "user"
            else fake.paragraph(nb_sentences=fake.random_int(1, 6))
        )
        turns.append({"role": role, "content": content, "ts": _when(fake)})
    return {"id": f"conv-{index:06d}", "user": fake.user_name(), "turns": turns}


def _agent_state(fake: Faker, index: int) -> dict[str, Any]:
    return {
        "agent_id": f"agent-{index:06d}",
        "step": fake.random_int(0, 500),
        "goal": fake.sentence(nb_words=fake.random_int(5, 14)),
        "memory": [fake.sentence() for _ in range(fake.random_int(0, 12))],
        "tool_calls": [
            {
                "tool": fake.random_element(_TOOLS),
                "args": {"query": fake.sentence(nb_words=4)},
                "ok": fake.boolean(chance_of_getting_true=90),
                "latency_ms": fake.random_int(1, 2500),
            }
            for _ in range(fake.random_int(0, 6))
        ],
        "scratchpad": fake.paragraph(nb_sentences=fake.random_int(1, 8)),
        "updated": _when(fake),
    }


_MAKERS: dict[str, Callable[[Faker, int], dict[str, Any]]] = {
    "documents": _document,
    "conversations": _conversation,
    "agent_states": _agent_state,
}


class CorpusExtraMissingError(EdgeError, ImportError):
    """faker, which generates corpora, is an optional extra and is not installed."""


CORPUS_EXTRA_HINT = "pip install 'pytest-edge[corpus]'"


def _faker(locale: str) -> Faker:
    """A faker for `locale`; faker is imported here, only when a corpus is made."""
    try:
        from faker import Faker
    except ImportError as error:
        raise CorpusExtraMissingError(
            f"corpus generation (make_corpus, the edge_corpus fixture) needs faker, an "
            f"optional extra of pytest-edge: {CORPUS_EXTRA_HINT} ({error})"
        ) from None
    return Faker(locale)


def make_corpus(
    kind: str,
    *,
    count: int | None = None,
    mb: float | None = None,
    seed: int = 0,
    locale: str = "en_US",
) -> Corpus:
    """Generate ``count`` items, or items until their JSON reaches ``mb`` MiB (give one)."""
    maker = _MAKERS.get(kind)
    if maker is None:
        raise EdgeInputError(f"corpus kind {kind!r} is not one of {', '.join(KINDS)}")
    if (count is None) == (mb is None):
        raise EdgeInputError(
            f"corpus {kind!r}: give exactly one of count= or mb= (got {count=}, {mb=})"
        )
    if count is not None and (not is_whole(count) or count < 0):
        raise EdgeInputError(f"corpus {kind!r}: count must be a whole number >= 0, got {count!r}")
    if mb is not None and not (is_number(mb) and 0 < mb <= 4096):
        raise EdgeInputError(f"corpus {kind!r}: mb must be above 0 and at most 4096, got {mb!r}")
    fake = _faker(locale)
    fake.seed_instance(seed)
    items: list[dict[str, Any]] = []
    if count is not None:
        items = [maker(fake, i) for i in range(count)]
    else:
        budget, size = float(mb or 0) * MIB, 0
        while size < budget:
            item = maker(fake, len(items))
            items.append(item)
            size += len(_canonical(item)) + 1
    return Corpus(kind, seed, tuple(items), version("faker"), locale)


class CorpusFactory:
    """The ``edge_corpus`` fixture: `make_corpus` with a session cache and a default seed.

    Each call returns its own deep copy, so a test that mutates items cannot change another's.
    """

    def __init__(self, default_seed: int = 0) -> None:
        self.default_seed = default_seed
        self._cache: dict[tuple[str, int | None, float | None, int, str], Corpus] = {}

    def __call__(
        self,
        kind: str,
        *,
        count: int | None = None,
        mb: float | None = None,
        seed: int | None = None,
        locale: str = "en_US",
    ) -> Corpus:
        key = (kind, count, mb, self.default_seed if seed is None else seed, locale)
        if key not in self._cache:
            self._cache[key] = make_corpus(kind, count=count, mb=mb, seed=key[3], locale=locale)
        return copy.deepcopy(self._cache[key])
