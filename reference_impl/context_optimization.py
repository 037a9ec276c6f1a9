"""Three-tiered context management for a small on-device context window.

- Tier 1, the raw buffer: the most recent turns, verbatim, within ``buffer_tokens``.
- Tier 2, the summary chain: turns that leave the buffer are summarised (a pluggable
  `Summarizer`; the default is extractive and needs no model), and when the chain itself grows
  past its budget its oldest summaries are summarised again (summaries of summaries).
- Tier 3, semantic memory: every turn ever seen, searchable by relevance to the query (a
  pluggable `Embedder` from `reference_impl.embeddings`; the default is lexical and offline).

`get_final_prompt` assembles system prompt, query, recent turns, summaries and relevant
memories in that priority, and checks every addition with the configured token counter, so
the prompt never exceeds ``max_context_tokens`` as that counter measures it. The default
counter, `estimate_tokens`, is an estimate (no tokenizer): see its docstring.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from reference_impl.embeddings import BoundedVectorIndex, Embedder, FloatMatrix, tokenize

if TYPE_CHECKING:
    from reference_impl.memory_management import DeviceMemoryManager, ModelShape

TokenCounter = Callable[[str], int]

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
_WORDS = re.compile(r"[^\W_]+")
_PUNCT = re.compile(r"[^\w\s]|_")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def estimate_tokens(text: str) -> int:
    """Estimated token count without a tokenizer: an estimate, not a BPE count.

    ``max(chars / 4, words + punctuation)`` for non-CJK text, plus one token per CJK
    character. For English, code and JSON this lands within about ±20% of BPE tokenizers
    (see the project's edge-facts notes); plug in a real tokenizer's counter for exact budgets.
    """
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text) if cjk else text
    stripped = rest.strip()
    if not stripped:
        return cjk
    by_chars = math.ceil(len(stripped) / 4)
    by_words = len(_WORDS.findall(rest)) + len(_PUNCT.findall(rest))
    return cjk + max(by_chars, by_words)


def truncate_to_tokens(text: str, max_tokens: int, count: TokenCounter) -> str:
    """The longest prefix of `text` that `count` measures at most `max_tokens` ("" if none)."""
    if count(text) <= max_tokens:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if count(text[:mid]) <= max_tokens:
            low = mid
        else:
            high = mid - 1
    prefix = text[:low]
    mid_word = not prefix[-1:].isspace() and not text[low : low + 1].isspace()
    cut = prefix.rfind(" ")
    if mid_word and cut > 0:
        prefix = prefix[:cut]  # end on a word boundary rather than mid-word
    prefix = prefix.rstrip()
    return prefix if count(prefix) <= max_tokens else ""


class Summarizer(Protocol):
    """Summarise `texts` into at most `max_tokens` tokens as `count` measures them."""

    def __call__(self, texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str: ...


def extractive_summary(texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
    """Keep the most informative sentences, in their original order, within `max_tokens`.

    A sentence scores the summed frequency (within `texts`) of its distinct content words,
    divided by the square root of its length: words the passage keeps returning to mark its
    topic (Luhn's heuristic), and long sentences are not favoured just for being long.
    """
    sentences = [
        sentence.strip()
        for text in texts
        for sentence in _SENTENCE_END.split(text.strip())
        if sentence.strip()
    ]
    if not sentences or max_tokens <= 0:
        return ""
    frequency = Counter(word for sentence in sentences for word in tokenize(sentence))

    def score(sentence: str) -> float:
        words = tokenize(sentence)
        if not words:
            return 0.0
        return sum(frequency[word] for word in set(words)) / math.sqrt(len(words))

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    chosen: list[int] = []
    for i in ranked:
        candidate = " ".join(sentences[j] for j in sorted([*chosen, i]))
        if count(candidate) <= max_tokens:
            chosen.append(i)
    if not chosen:
        return truncate_to_tokens(sentences[ranked[0]], max_tokens, count)
    return " ".join(sentences[j] for j in sorted(chosen))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"ContextConfig.{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class ContextConfig:
    """Token budgets of the three tiers. `summary_tokens` defaults to half of what is left
    after the system prompt and the buffer; the rest goes to semantic memories and the query.

    `max_semantic_items` caps tier 3 in memory (older turns spill to SQLite or are dropped);
    `max_pending_chunks` is how far compression may fall behind before `add_message` waits.
    """

    max_context_tokens: int = 2048
    buffer_tokens: int = 500
    system_prompt_tokens: int = 100
    compression_threshold: float = 0.9
    summary_tokens: int | None = None
    semantic_top_k: int = 3
    system_prompt: str = (
        "You are a helpful assistant running on an edge device. Answer concisely, using the "
        "conversation summary and the relevant earlier context below."
    )
    max_semantic_items: int = 1024
    max_pending_chunks: int = 32

    def __post_init__(self) -> None:
        _check_int("max_context_tokens", self.max_context_tokens, 1)
        _check_int("max_semantic_items", self.max_semantic_items, 1)
        _check_int("max_pending_chunks", self.max_pending_chunks, 1)
        _check_int("buffer_tokens", self.buffer_tokens, 0)
        _check_int("system_prompt_tokens", self.system_prompt_tokens, 0)
        _check_int("semantic_top_k", self.semantic_top_k, 0)
        if self.buffer_tokens + self.system_prompt_tokens > self.max_context_tokens:
            raise ValueError(
                "ContextConfig.buffer_tokens + system_prompt_tokens must be <= "
                f"max_context_tokens ({self.max_context_tokens}), got "
                f"{self.buffer_tokens} + {self.system_prompt_tokens}"
            )
        threshold = self.compression_threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold <= 1
        ):
            raise ValueError(
                f"ContextConfig.compression_threshold must be in (0, 1], got {threshold!r}"
            )
        if self.summary_tokens is not None:
            _check_int("summary_tokens", self.summary_tokens, 0)
            room = self.max_context_tokens - self.buffer_tokens - self.system_prompt_tokens
            if self.summary_tokens > room:
                raise ValueError(
                    f"ContextConfig.summary_tokens must be <= {room} (max_context_tokens - "
                    f"buffer_tokens - system_prompt_tokens), got {self.summary_tokens}"
                )

    @property
    def summary_budget(self) -> int:
        if self.summary_tokens is not None:
            return self.summary_tokens
        return (self.max_context_tokens - self.buffer_tokens - self.system_prompt_tokens) // 2

    def with_window(self, max_context_tokens: int) -> ContextConfig:
        """This config for another window: token budgets keep their share of the window.

        `buffer_tokens`, `system_prompt_tokens` and an explicit `summary_tokens` are scaled by
        ``max_context_tokens / self.max_context_tokens`` and rounded down (so they still fit);
        a derived `summary_budget` follows by itself; other fields are kept.
        """
        _check_int("max_context_tokens", max_context_tokens, 1)
        scale = max_context_tokens / self.max_context_tokens
        summary = self.summary_tokens
        return replace(
            self,
            max_context_tokens=max_context_tokens,
            buffer_tokens=math.floor(self.buffer_tokens * scale),
            system_prompt_tokens=math.floor(self.system_prompt_tokens * scale),
            summary_tokens=None if summary is None else math.floor(summary * scale),
        )

    @classmethod
    def from_memory_manager(
        cls,
        manager: DeviceMemoryManager,
        model_size_mb: float,
        model: str | ModelShape | None = None,
        **overrides: Any,
    ) -> ContextConfig:
        """A config whose window is what the memory manager says this model can afford.

        The window is `manager.get_optimal_context_size(model_size_mb, model)`; the other
        budgets are the defaults scaled to that window (`with_window`), and `overrides` (any
        field but `max_context_tokens`) replace them. A model that does not fit raises
        `ValueError` with the weights, KV cache and limit in MB.
        """
        if "max_context_tokens" in overrides:
            raise TypeError(
                "ContextConfig.from_memory_manager takes the window from the memory manager; "
                f"max_context_tokens={overrides['max_context_tokens']!r} cannot be overridden"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"ContextConfig has no field(s) {unknown}; allowed: {sorted(known)}")
        window = manager.get_optimal_context_size(model_size_mb, model)
        if window < 1:
            fit = manager.check_fit(model_size_mb, model)
            raise ValueError(
                f"model {fit.model!r} does not fit this device: {fit.weights_mb:.1f} MB weights "
                f"+ {fit.kv_cache_mb:.1f} MB KV cache for {fit.context_tokens} tokens = "
                f"{fit.required_mb:.1f} MB > model memory limit {fit.limit_mb:.1f} MB"
            )
        return replace(cls().with_window(window), **overrides)


@dataclass(frozen=True)
class Message:
    """One conversation turn. `tokens` is the caller's count, or the counter's if omitted."""

    index: int
    role: str
    content: str
    tokens: int

    def render(self) -> str:
        return f"{self.role}: {self.content}"


class SemanticMatch(TypedDict):
    """An earlier turn relevant to a query: its text, cosine score, role and position."""

    content: str
    score: float
    role: str
    index: int


@dataclass(frozen=True)
class Summary:
    """A tier-2 node: level 0 summarises turns, level n > 0 summarises level n-1 summaries."""

    level: int
    text: str
    tokens: int
    first_message: int
    last_message: int


def render_prompt(
    system: str,
    summaries: Sequence[str],
    memories: Sequence[str],
    recent: Sequence[str],
    query: str,
) -> str:
    """The prompt layout: sections in a fixed order, empty sections left out."""
    sections: list[str] = []
    if system:
        sections.append(f"[System]\n{system}")
    if summaries:
        sections.append("[Conversation summary]\n" + "\n".join(summaries))
    if memories:
        sections.append("[Relevant earlier context]\n" + "\n".join(f"- {m}" for m in memories))
    if recent:
        sections.append("[Recent conversation]\n" + "\n".join(recent))
    sections.append(f"[Current query]\nuser: {query}")
    return "\n\n".join(sections)


class CompressionError(RuntimeError):
    """The summariser failed. The turns it was given stay pending and are shown raw."""


class ContextStateError(ValueError):
    """A saved context state (or spill database) that cannot be used; names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"context state file {path}: {reason}")
        self.path = path
        self.reason = reason


STATE_FORMAT = "pytest-edge/context-state"
STATE_VERSION = 1
_SPILL_APPLICATION_ID = 0x43545833  # "CTX3": marks a spill database as ours
_SPILL_SCHEMA_VERSION = 1
_WORKER_NAME = "ThreeTieredContextSystem-compressor"
_LINGER_S = 0.5  # an idle worker waits this long for more work before its thread ends
_QUERY_WORD = re.compile(r"[^\W_]+")
_ROLE_ONLY = re.compile(r"[^\s:]+:")  # a summary cut right after "user:" quotes no turn


class SpillStore:
    """Tier-3 turns evicted from memory, kept in SQLite and searchable through FTS5.

    One FTS5 table (porter stemming over unicode61, so "networks" finds "network"), rowid =
    turn index. WAL with ``synchronous=NORMAL``: a spill costs no fsync on the caller's path;
    `checkpoint()` (called by `save`) makes it durable. Like ``unicode61`` everywhere, CJK text
    is not split into words here. Callers serialise access (the context system's lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise ContextStateError(path, f"not a usable spill database: {error}") from error
        except BaseException:
            self._db.close()
            raise
        self.size = int(self._db.execute("SELECT count(*) FROM turns").fetchone()[0])

    def _open(self) -> None:
        db = self._db
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if tables and application_id != _SPILL_APPLICATION_ID:
            raise ContextStateError(
                self.path, f"not a context spill database (application_id {application_id})"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with db:
            db.execute("BEGIN")
            db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS turns USING fts5("
                "content, role UNINDEXED, tokens UNINDEXED, tokenize='porter unicode61')"
            )
            db.execute(f"PRAGMA application_id={_SPILL_APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={_SPILL_SCHEMA_VERSION}")

    def add(self, messages: Sequence[Message]) -> None:
        """Store `messages` in one transaction (a turn already stored is replaced)."""
        rows = [(m.index, m.content, m.role, m.tokens) for m in messages]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM turns WHERE rowid = ?", [(r[0],) for r in rows])
            self._db.executemany(
                "INSERT INTO turns(rowid, content, role, tokens) VALUES (?, ?, ?, ?)", rows
            )
        self.size = int(self._db.execute("SELECT count(*) FROM turns").fetchone()[0])

    def search(self, query: str, limit: int) -> list[Message]:
        """Up to `limit` stored turns sharing a content word with `query`, best BM25 first."""
        words = list(dict.fromkeys(w for w in _QUERY_WORD.findall(query.lower()) if tokenize(w)))
        if not words or limit <= 0:
            return []
        match = " OR ".join(f'"{word}"' for word in words[:32])
        rows = self._db.execute(
            "SELECT rowid, role, content, tokens FROM turns WHERE turns MATCH ? "
            "ORDER BY rank LIMIT ?",
            (match, limit),
        ).fetchall()
        return [Message(int(i), str(role), str(text), int(n)) for i, role, text, n in rows]

    def checkpoint(self) -> None:
        """Copy the WAL into the database file, synced: spilled turns survive power loss."""
        self._db.execute("PRAGMA wal_checkpoint(FULL)")

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class _Job:
    """One summariser call for the worker: a chunk of turns, or two summaries to merge."""

    texts: tuple[str, ...]
    budget: int
    chunk: list[Message] | None = None
    merge: tuple[Summary, ...] | None = None


def _encode_message(message: Message) -> list[object]:
    return [message.index, message.role, message.content, message.tokens]


def _decode_message(row: Sequence[object]) -> Message:
    index, role, content, tokens = row
    if not (
        isinstance(index, int)
        and isinstance(role, str)
        and isinstance(content, str)
        and isinstance(tokens, int)
    ):
        raise ValueError(f"bad message record {row!r}")
    return Message(index, role, content, tokens)


def _canonical(state: object) -> bytes:
    return json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read_state(path: Path) -> dict[str, Any]:
    """The checked state of a saved file, or `ContextStateError` saying what is wrong."""
    data = path.read_bytes()
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContextStateError(path, f"torn or not JSON ({error})") from error
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ContextStateError(path, f"not a pytest-edge context state (format {STATE_FORMAT!r})")
    if document.get("version") != STATE_VERSION:
        raise ContextStateError(
            path,
            f"state version {document.get('version')!r} is not supported "
            f"(this code reads version {STATE_VERSION})",
        )
    state = document.get("state")
    digest = hashlib.sha256(_canonical(state)).hexdigest()
    if not isinstance(state, dict) or digest != document.get("sha256"):
        raise ContextStateError(path, "checksum mismatch: the file was altered or damaged")
    return state


@dataclass
class _Draft:
    """A prompt being assembled; a piece is kept only if the whole prompt still fits."""

    system: str
    query: str
    limit: int
    count: TokenCounter
    recent: list[str] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    shown: set[int] = field(default_factory=set)  # turn indexes already in the prompt

    def fits(
        self,
        *,
        recent: list[str] | None = None,
        summaries: list[Summary] | None = None,
        memories: list[str] | None = None,
    ) -> bool:
        """Whether the prompt with these sections instead of the current ones fits."""
        return self.count(self.render(recent, summaries, memories)) <= self.limit

    def render(
        self,
        recent: list[str] | None = None,
        summaries: list[Summary] | None = None,
        memories: list[str] | None = None,
    ) -> str:
        return render_prompt(
            self.system,
            [s.text for s in (self.summaries if summaries is None else summaries)],
            self.memories if memories is None else memories,
            self.recent if recent is None else recent,
            self.query,
        )


class ThreeTieredContextSystem:
    """Raw buffer, summary chain and semantic memory behind one `get_final_prompt`.

    Compression runs on a worker thread owned by the system: started when a chunk is queued,
    gone when the queue is empty, joined by `close()` (or leaving a ``with`` block).
    `flush()` / `wait_for_compression()` wait for it. Thread-safe.
    """

    def __init__(
        self,
        config: ContextConfig | None = None,
        *,
        token_counter: TokenCounter = estimate_tokens,
        summarizer: Summarizer = extractive_summary,
        embedder: Embedder | None = None,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config if config is not None else ContextConfig()
        self._base_config = self.config
        self.count_tokens = token_counter
        self.summarizer = summarizer
        self.memory = BoundedVectorIndex(self.config.max_semantic_items, embedder)
        self.spill_path = None if spill_path is None else Path(spill_path)
        self._spill = None if self.spill_path is None else SpillStore(self.spill_path)
        self._spilled = 0 if self._spill is None else self._spill.size
        self.system_prompt = truncate_to_tokens(
            self.config.system_prompt, self.config.system_prompt_tokens, token_counter
        )
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._next_index = 0
        self._total_tokens = 0
        self._buffer: list[Message] = []
        self._pending: deque[list[Message]] = deque()
        self._summaries: list[Summary] = []
        self._tier3: dict[int, Message] = {}
        self._counts: Counter[str] = Counter()
        self._worker: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._closed = False
        self._joined = False  # close() has joined the worker: no thread starts any more

    def __enter__(self) -> ThreeTieredContextSystem:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- window --------------------------------------------------------------------------------

    def set_context_window(self, max_context_tokens: int) -> None:
        """Change the window at run time; the next `get_final_prompt` respects it.

        Budgets are rescaled from the config this system was created with
        (`ContextConfig.with_window`), so shrinking and growing back restores them exactly.
        Turns already recorded are kept; an over-full buffer or chain is compressed.
        """
        config = self._base_config.with_window(max_context_tokens)
        with self._lock:
            self.config = config
            self.system_prompt = truncate_to_tokens(
                config.system_prompt, config.system_prompt_tokens, self.count_tokens
            )
            self._cut_chunk()
            self._start_worker()

    # -- adding turns -------------------------------------------------------------------------

    def add_message(self, role: str, content: str, tokens: int | None = None) -> Message:
        """Record a turn in all tiers. When the buffer reaches the threshold, its oldest turns
        are queued as one chunk for the worker; the summariser never runs on this thread."""
        if not isinstance(role, str) or not role.strip():
            raise ValueError(f"role must be a non-empty string, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"content must be a string, got {type(content).__name__}")
        if tokens is None:
            tokens = self.count_tokens(content)
        elif isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be an integer >= 0 or None, got {tokens!r}")
        vector = self.memory.embedder.embed([content])  # outside the lock: the costly part
        with self._lock:
            if self._closed:
                raise RuntimeError("ThreeTieredContextSystem is closed: no new turns")
            message = Message(self._next_index, role, content, tokens)
            self._next_index += 1
            self._total_tokens += tokens
            self._buffer.append(message)
            self._remember(message, vector)
            if self._cut_chunk() or self._worker is None:
                self._start_worker()
            self._wait_for_room()
            return message

    def _remember(self, message: Message, vector: FloatMatrix) -> None:
        """Tier 3: keep the turn; what the cap pushes out spills to SQLite or is dropped."""
        self._tier3[message.index] = message
        evicted = [
            self._tier3.pop(item.key)
            for item in self.memory.add([message.index], [message.content], vector)
        ]
        if not evicted:
            return
        if self._spill is not None:
            self._spill.add(evicted)
            self._spilled = self._spill.size
        else:
            self._counts["semantic_dropped"] += len(evicted)

    def _cut_chunk(self) -> bool:
        """At the threshold, queue the oldest turns (never the newest) as one chunk, leaving
        the buffer at most half the threshold, so one summariser call covers many turns."""
        limit = self.config.compression_threshold * self.config.buffer_tokens
        buffered = sum(m.tokens for m in self._buffer)
        if buffered < limit or len(self._buffer) <= 1:
            return False
        chunk: list[Message] = []
        while len(self._buffer) > 1 and (not chunk or buffered > limit / 2):
            message = self._buffer.pop(0)
            chunk.append(message)
            buffered -= message.tokens
        self._pending.append(chunk)
        return True

    def _wait_for_room(self) -> None:
        """Back-pressure: past `max_pending_chunks`, wait for the worker (unless it failed)."""
        while len(self._pending) > self.config.max_pending_chunks and self._worker is not None:
            self._changed.wait()

    # -- the compression worker ----------------------------------------------------------------

    def _chain_over_threshold(self) -> bool:
        limit = self.config.compression_threshold * self.config.summary_budget
        return len(self._summaries) > 1 and self._summary_tokens() > limit

    def _has_work(self) -> bool:
        return bool(self._pending) or self._chain_over_threshold()

    def _start_worker(self) -> None:
        """Wake the worker if there is work, starting its thread if none is running."""
        if self._joined or not self._has_work():
            return
        if self._worker is not None:
            self._changed.notify_all()
            return
        self._threads = [t for t in self._threads if t.is_alive()]
        worker = threading.Thread(
            target=self._run_worker, name=f"{_WORKER_NAME}-{id(self):x}", daemon=False
        )
        self._worker = worker
        self._threads.append(worker)
        worker.start()

    def _next_job(self) -> _Job | None:
        budget = self.config.summary_budget
        if self._pending:
            chunk = self._pending[0]
            tokens = sum(m.tokens for m in chunk)
            # Half the chunk's tokens, at least enough for a sentence, at most half the chain.
            target = max(1, min(budget // 2, max(tokens // 2, 32)))
            return _Job(tuple(m.render() for m in chunk), target, chunk=chunk)
        if self._chain_over_threshold():
            # The oldest summaries that make up half the budget (at least two), in one call.
            oldest = self._summaries[:2]
            total = oldest[0].tokens + oldest[1].tokens
            for summary in self._summaries[2:]:
                if total + summary.tokens > budget // 2:
                    break
                oldest.append(summary)
                total += summary.tokens
            target = max(1, min(budget // 2, total // 2))
            return _Job(tuple(s.text for s in oldest), target, merge=tuple(oldest))
        return None

    def _run_worker(self) -> None:
        while True:
            with self._lock:
                job = self._next_job()
                if job is None and not self._closed:
                    # Linger briefly for the next chunk instead of a thread start per chunk.
                    self._changed.notify_all()
                    self._changed.wait_for(lambda: self._closed or self._has_work(), _LINGER_S)
                    job = self._next_job()
                if job is None:
                    self._worker = None
                    self._changed.notify_all()
                    return
                self._counts["summarizer_calls"] += 1
            try:
                text = self.summarizer(job.texts, job.budget, self.count_tokens)
                text = truncate_to_tokens(text, job.budget, self.count_tokens)
            except BaseException as error:  # recorded for flush(); the chunk stays pending
                with self._lock:
                    self._error = error
                    self._counts["compression_errors"] += 1
                    self._worker = None
                    self._changed.notify_all()
                return
            with self._lock:
                self._apply(job, text)
                self._changed.notify_all()

    def _apply(self, job: _Job, text: str) -> None:
        tokens = self.count_tokens(text)
        if job.chunk is not None and self._pending and self._pending[0] is job.chunk:
            self._pending.popleft()
            start, end = job.chunk[0].index, job.chunk[-1].index
            self._summaries.append(Summary(0, text, tokens, start, end))
            self._counts["compressions"] += 1
        elif job.merge is not None and tuple(self._summaries[: len(job.merge)]) == job.merge:
            level = max(s.level for s in job.merge) + 1
            start, end = job.merge[0].first_message, job.merge[-1].last_message
            self._summaries[0 : len(job.merge)] = [Summary(level, text, tokens, start, end)]
            self._counts["summary_merges"] += 1
        budget = self.config.summary_budget
        if len(self._summaries) == 1 and self._summaries[0].tokens > budget:
            only = self._summaries[0]
            cut = truncate_to_tokens(only.text, budget, self.count_tokens)
            self._summaries[0] = replace(only, text=cut, tokens=self.count_tokens(cut))

    def wait_for_compression(self, timeout: float | None = None) -> bool:
        """Wait until no compression work is left: True, or False after `timeout` seconds.

        Restarts a worker that stopped on a summariser error; if the summariser fails again,
        raises `CompressionError` (the turns stay pending, shown raw).
        """
        deadline = None if timeout is None else max(0.0, timeout)
        with self._lock:
            if self._joined:
                return not self._has_work()  # closed: nothing will run any more
            errors = self._counts["compression_errors"]
            self._start_worker()
            waited = self._changed.wait_for(
                lambda: not self._has_work() or self._counts["compression_errors"] != errors,
                deadline,
            )
            if self._counts["compression_errors"] != errors and self._has_work():
                raise CompressionError(f"summariser failed: {self._error!r}") from self._error
            return bool(waited)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for all queued compression; `TimeoutError` if it is not done in `timeout` s."""
        if not self.wait_for_compression(timeout):
            raise TimeoutError(f"ThreeTieredContextSystem still compressing after {timeout} s")

    def close(self, timeout: float | None = None) -> None:
        """Finish queued compression, join the worker and close the spill database.

        Idempotent. Afterwards `add_message` and prompts raise; statistics and `save` work.
        """
        with self._lock:
            self._closed = True
            self._start_worker()
            self._changed.notify_all()  # wakes a lingering worker
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"compression worker still running after {timeout} s")
        with self._lock:
            self._threads = []
            self._joined = True
            if self._spill is not None:
                self._spill.close()
                self._spill = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("ThreeTieredContextSystem is closed")

    # -- reading -------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """The turns held in memory (tier 3 up to its cap, plus buffer and pending), in order."""
        with self._lock:
            held = dict(self._tier3)
            for message in [*self._buffer, *(m for chunk in self._pending for m in chunk)]:
                held[message.index] = message
            return tuple(held[i] for i in sorted(held))

    @property
    def buffer(self) -> tuple[Message, ...]:
        with self._lock:
            return tuple(self._buffer)

    @property
    def summaries(self) -> tuple[Summary, ...]:
        with self._lock:
            return tuple(self._summaries)

    def _summary_tokens(self) -> int:
        return sum(s.tokens for s in self._summaries)

    def get_semantic_matches(self, query: str, top_k: int = 3) -> list[SemanticMatch]:
        """Earlier turns most relevant to `query`, best first (no shared word: left out).

        Searches tier 3 in memory and, with a spill database, the spilled turns (FTS5 finds
        candidates, the embedder scores them with the in-memory IDF weights).
        """
        with self._lock:
            self._check_open()
            return self._semantic_matches(query, top_k)

    def _semantic_matches(self, query: str, top_k: int) -> list[SemanticMatch]:
        matches: list[SemanticMatch] = [
            {
                "content": hit.text,
                "score": hit.score,
                "role": self._tier3[hit.position].role,
                "index": hit.position,
            }
            for hit in self.memory.search(query, top_k)
        ]
        if self._spill is not None and top_k > 0:
            spilled = [
                m for m in self._spill.search(query, 4 * top_k) if m.index not in self._tier3
            ]
            if spilled:
                scores = self.memory.score(
                    query, self.memory.embedder.embed([m.content for m in spilled])
                )
                matches += [
                    {"content": m.content, "score": float(s), "role": m.role, "index": m.index}
                    for m, s in zip(spilled, scores, strict=True)
                    if float(s) > 0.0
                ]
                matches.sort(key=lambda match: (-match["score"], match["index"]))
        return matches[:top_k]

    def get_statistics(self) -> dict[str, int]:
        """Counts per tier: buffer + pending + summarized = total messages (and tokens)."""
        with self._lock:
            return self._get_statistics()

    def _get_statistics(self) -> dict[str, int]:
        buffer_tokens = sum(m.tokens for m in self._buffer)
        pending = [m for chunk in self._pending for m in chunk]
        pending_tokens = sum(m.tokens for m in pending)
        spilled = self._spilled
        counts = self._counts
        return {
            "total_messages": self._next_index,
            "total_tokens": self._total_tokens,
            "buffer_messages": len(self._buffer),
            "buffer_tokens": buffer_tokens,
            "buffer_capacity": self.config.buffer_tokens,
            "pending_messages": len(pending),
            "pending_tokens": pending_tokens,
            "summarized_messages": self._next_index - len(self._buffer) - len(pending),
            "summarized_tokens": self._total_tokens - buffer_tokens - pending_tokens,
            "summary_count": len(self._summaries),
            "summary_tokens": self._summary_tokens(),
            "summary_levels": max((s.level for s in self._summaries), default=-1) + 1,
            "semantic_memory_size": len(self.memory) + spilled,
            "semantic_in_memory": len(self.memory),
            "semantic_spilled": spilled,
            "semantic_dropped": counts["semantic_dropped"],
            "compressions": counts["compressions"],
            "summary_merges": counts["summary_merges"],
            "summarizer_calls": counts["summarizer_calls"],
            "compression_errors": counts["compression_errors"],
            "truncated_queries": counts["truncated_queries"],
            "truncated_turns": counts["truncated_turns"],
        }

    # -- the prompt ----------------------------------------------------------------------------

    def get_final_prompt(self, query: str) -> str:
        """The prompt for `query`: always within `max_context_tokens` by the token counter.

        Priority: system prompt and query (truncated if alone they do not fit); the newest
        turn (cut to fit, with a ``[... N tokens truncated]`` marker, if it is larger than the
        room left); older buffered turns newest first within `buffer_tokens`; turns awaiting
        compression (raw) and then summaries, newest first within the summary budget; then
        semantic matches not already in the prompt. Each piece is kept only if the whole
        prompt with it still fits.

        One turn, one section: a semantic match is left out if its turn is shown raw, or if a
        sentence of a summary shown in the prompt occurs in it (the summary already quotes it).
        """
        with self._lock:
            self._check_open()
            return self._get_final_prompt(query)

    def _fit_query(self, system: str, query: str) -> tuple[str, str, str | None]:
        """(system, query, bare) where `bare` is the whole answer when no header fits."""
        limit, count = self.config.max_context_tokens, self.count_tokens
        if count(render_prompt(system, [], [], [], query)) <= limit:
            return system, query, None
        self._counts["truncated_queries"] += 1
        base = count(render_prompt(system, [], [], [], ""))
        if base > limit:
            system = ""
            base = count(render_prompt("", [], [], [], ""))
        if base > limit:
            # Not even the section headers fit such a tiny budget: the bare query.
            return system, query, truncate_to_tokens(query, limit, count)
        query = truncate_to_tokens(query, max(0, limit - base), count)
        while query and count(render_prompt(system, [], [], [], query)) > limit:
            query = query[:-1]
        return system, query, None

    def _cut_turn(self, message: Message, fits: Callable[[str], bool]) -> str | None:
        """The longest head of `message` that fits, with a marker naming what was cut."""
        count, content = self.count_tokens, message.content
        total = count(content)

        def line(head: str) -> str:
            if not head:
                return f"{message.role}: [... {total} tokens truncated]"
            return f"{message.role}: {head} [... {total - count(head)} tokens truncated]"

        low, high = 0, len(content)
        while low < high:
            mid = (low + high + 1) // 2
            if fits(line(content[:mid].rstrip())):
                low = mid
            else:
                high = mid - 1
        head = content[:low]
        if low < len(content) and not content[low].isspace() and " " in head.strip():
            head = head[: head.rstrip().rfind(" ")]  # end on a word boundary
        for candidate in (line(head.rstrip()), line("")):
            if fits(candidate):
                return candidate
        return None

    def _get_final_prompt(self, query: str) -> str:
        system, query, bare = self._fit_query(self.system_prompt, query)
        if bare is not None:
            return bare
        draft = _Draft(system, query, self.config.max_context_tokens, self.count_tokens)
        self._place_newest(draft)
        used = self._buffer[-1].tokens if draft.recent else 0
        self._place_turns(draft, self._buffer[:-1], self.config.buffer_tokens - used)
        pending = [m for chunk in self._pending for m in chunk]
        used = self._place_turns(draft, pending, self.config.summary_budget)
        self._place_summaries(draft, self.config.summary_budget - used)
        self._place_memories(draft)
        return draft.render()

    def _place_newest(self, draft: _Draft) -> None:
        """The newest turn, whole if it fits, else cut with a marker: never dropped silently."""
        if not self._buffer:
            return
        newest = self._buffer[-1]
        line: str | None = newest.render()
        if not draft.fits(recent=[newest.render()]):
            line = self._cut_turn(newest, lambda text: draft.fits(recent=[text]))
            self._counts["truncated_turns"] += 1
        if line is not None:
            draft.recent.insert(0, line)
            draft.shown.add(newest.index)

    @staticmethod
    def _place_turns(draft: _Draft, messages: Sequence[Message], budget: int) -> int:
        """Raw turns newest first, before those placed, while within `budget`; tokens used."""
        used = 0
        for message in reversed(messages):
            line = message.render()
            if used + message.tokens > budget or not draft.fits(recent=[line, *draft.recent]):
                break
            draft.recent.insert(0, line)
            draft.shown.add(message.index)
            used += message.tokens
        return used

    def _place_summaries(self, draft: _Draft, budget: int) -> None:
        used = 0
        for summary in reversed(self._summaries):
            if used + summary.tokens > budget:
                break
            if not summary.text.strip():
                continue  # a zero summary budget leaves empty summaries: no empty section
            if draft.fits(summaries=[summary, *draft.summaries]):
                draft.summaries.insert(0, summary)
                used += summary.tokens

    def _place_memories(self, draft: _Draft) -> None:
        """Semantic matches not already in the prompt: not shown raw, not quoted by a summary."""
        quoted = [
            fragment
            for summary in draft.summaries
            for fragment in (part.strip() for part in _SENTENCE_END.split(summary.text))
            if fragment and not _ROLE_ONLY.fullmatch(fragment)
        ]
        wanted = self.config.semantic_top_k
        for match in self._semantic_matches(draft.query, 2 * wanted + len(draft.shown)):
            if len(draft.memories) >= wanted:
                break
            text = f"{match['role']}: {match['content']}"
            if match["index"] in draft.shown or any(fragment in text for fragment in quoted):
                continue
            if draft.fits(memories=[*draft.memories, text]):
                draft.memories.append(text)
                draft.shown.add(match["index"])

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every tier to `path` atomically (temp file, fsync, rename, directory fsync).

        JSON data with a SHA-256 of the state, never code. Spilled turns live in the spill
        database, which is checkpointed first; the file records its path. Pending chunks are
        saved as raw turns and compressed again after `load`.
        """
        target = Path(path)
        with self._lock:
            if self._spill is not None:
                self._spill.checkpoint()
            state = self._state()
        document = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "sha256": hashlib.sha256(_canonical(state)).hexdigest(),
            "state": state,
        }
        _write_atomically(target, json.dumps(document, ensure_ascii=False, indent=1).encode())

    def _state(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "base_config": asdict(self._base_config),
            "next_index": self._next_index,
            "total_tokens": self._total_tokens,
            "counts": dict(self._counts),
            "buffer": [_encode_message(m) for m in self._buffer],
            "pending": [[_encode_message(m) for m in chunk] for chunk in self._pending],
            "summaries": [
                [s.level, s.text, s.tokens, s.first_message, s.last_message]
                for s in self._summaries
            ],
            "tier3": [_encode_message(self._tier3[key]) for key, _ in self.memory.items()],
            "spill_path": None if self.spill_path is None else str(self.spill_path),
            "spilled": self._spilled,
        }

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        token_counter: TokenCounter = estimate_tokens,
        summarizer: Summarizer = extractive_summary,
        embedder: Embedder | None = None,
        spill_path: str | os.PathLike[str] | None = None,
    ) -> ThreeTieredContextSystem:
        """A system restored from `save`'s file (spill database: `spill_path` or the saved one).

        A torn, foreign, altered or newer file raises `ContextStateError` naming it; the file
        is left as it is. Tier-3 vectors are recomputed with `embedder`.
        """
        source = Path(path)
        state = _read_state(source)
        try:
            saved_spill = state["spill_path"]
            spill = spill_path if spill_path is not None else saved_spill
            if state["spilled"] and spill is not None and not Path(spill).exists():
                raise ContextStateError(
                    Path(spill), f"missing: the saved state has {state['spilled']} spilled turns"
                )
            system = cls(
                ContextConfig(**state["base_config"]),
                token_counter=token_counter,
                summarizer=summarizer,
                embedder=embedder,
                spill_path=spill,
            )
        except ContextStateError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise ContextStateError(source, f"malformed state: {error!r}") from error
        try:
            system._restore(state)
            system._check_spill(int(state["spilled"]))
        except (KeyError, TypeError, ValueError) as error:
            system.close()
            if isinstance(error, ContextStateError):
                raise
            raise ContextStateError(source, f"malformed state: {error!r}") from error
        return system

    def _check_spill(self, saved: int) -> None:
        """The spill database must hold at least the turns the state says were spilled."""
        if self._spilled < saved:
            where = "no spill database" if self.spill_path is None else str(self.spill_path)
            raise ContextStateError(
                self.spill_path or Path("<none>"),
                f"the saved state has {saved} spilled turns, {where} holds {self._spilled}",
            )

    def _restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            config = ContextConfig(**state["config"])
            self.config = config
            self.system_prompt = truncate_to_tokens(
                config.system_prompt, config.system_prompt_tokens, self.count_tokens
            )
            self._next_index = int(state["next_index"])
            self._total_tokens = int(state["total_tokens"])
            self._counts = Counter({str(k): int(v) for k, v in state["counts"].items()})
            self._buffer = [_decode_message(row) for row in state["buffer"]]
            self._pending = deque(
                [_decode_message(row) for row in chunk] for chunk in state["pending"]
            )
            self._summaries = [Summary(*row) for row in state["summaries"]]
            tier3 = [_decode_message(row) for row in state["tier3"]]
            if tier3:
                self.memory.add([m.index for m in tier3], [m.content for m in tier3])
            self._tier3 = {m.index: m for m in tier3}
            self._start_worker()


def _demo() -> None:
    config = ContextConfig(
        max_context_tokens=200, buffer_tokens=40, system_prompt_tokens=40, summary_tokens=50
    )
    with ThreeTieredContextSystem(config) as system:
        _demo_run(system, config)


def _demo_run(system: ThreeTieredContextSystem, config: ContextConfig) -> None:
    turns = [
        ("user", "I am analysing monthly sales data with pandas."),
        ("assistant", "Group the sales by month and plot them with matplotlib."),
        ("user", "The warehouse in Lyon ships late every December."),
        ("assistant", "Seasonal delays in December can hide real demand trends."),
        ("user", "Now I want a forecast for next quarter."),
        ("assistant", "A rolling average or an exponential smoothing model is a good start."),
        ("user", "Smoothing sounds right. Which smoothing factor should I try first?"),
        ("assistant", "Start with alpha 0.3 and compare the forecast error on last year."),
    ]
    for role, content in turns:
        system.add_message(role, content)
    system.flush()  # compression runs on a worker thread; wait for it before the figures
    for key, value in system.get_statistics().items():
        print(f"{key}: {value}")
    query = "Which warehouse ships late in December?"
    print(f"\nsemantic matches for {query!r}:")
    for match in system.get_semantic_matches(query, top_k=2):
        print(f"  {match['score']:.3f}  {match['role']}: {match['content']}")
    prompt = system.get_final_prompt(query)
    print(
        f"\nfinal prompt ({estimate_tokens(prompt)} estimated tokens, "
        f"budget {config.max_context_tokens}):\n{prompt}"
    )


if __name__ == "__main__":
    _demo()
