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

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from reference_impl.embeddings import Embedder, VectorIndex, tokenize

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

    def __post_init__(self) -> None:
        _check_int("max_context_tokens", self.max_context_tokens, 1)
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


class ThreeTieredContextSystem:
    """Raw buffer, summary chain and semantic memory behind one `get_final_prompt`."""

    def __init__(
        self,
        config: ContextConfig | None = None,
        *,
        token_counter: TokenCounter = estimate_tokens,
        summarizer: Summarizer = extractive_summary,
        embedder: Embedder | None = None,
    ) -> None:
        self.config = config if config is not None else ContextConfig()
        self._base_config = self.config
        self.count_tokens = token_counter
        self.summarizer = summarizer
        self.memory = VectorIndex(embedder)
        self.system_prompt = truncate_to_tokens(
            self.config.system_prompt, self.config.system_prompt_tokens, token_counter
        )
        self._lock = threading.RLock()
        self._messages: list[Message] = []
        self._buffer: list[Message] = []
        self._summaries: list[Summary] = []
        self._compressions = 0
        self._summary_merges = 0
        self._truncated_queries = 0

    def set_context_window(self, max_context_tokens: int) -> None:
        """Change the window at run time; the next `get_final_prompt` respects it.

        Budgets are rescaled from the config this system was created with
        (`ContextConfig.with_window`), so shrinking and growing back restores them exactly.
        Turns already recorded are kept; an over-full buffer is compressed on the next turn.
        """
        config = self._base_config.with_window(max_context_tokens)
        with self._lock:
            self.config = config
            self.system_prompt = truncate_to_tokens(
                config.system_prompt, config.system_prompt_tokens, self.count_tokens
            )

    # -- adding turns -------------------------------------------------------------------------

    def add_message(self, role: str, content: str, tokens: int | None = None) -> Message:
        """Record a turn in all tiers; compress the buffer when it reaches the threshold."""
        with self._lock:
            return self._add_message(role, content, tokens)

    def _add_message(self, role: str, content: str, tokens: int | None) -> Message:
        if not isinstance(role, str) or not role.strip():
            raise ValueError(f"role must be a non-empty string, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"content must be a string, got {type(content).__name__}")
        if tokens is None:
            tokens = self.count_tokens(content)
        elif isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be an integer >= 0 or None, got {tokens!r}")
        message = Message(len(self._messages), role, content, tokens)
        self._messages.append(message)
        self._buffer.append(message)
        self.memory.add([content])
        self._compress_buffer()
        return message

    def _buffer_tokens(self) -> int:
        return sum(m.tokens for m in self._buffer)

    def _compress_buffer(self) -> None:
        """At the threshold, move the oldest turns (never the newest) into the summary chain."""
        limit = self.config.compression_threshold * self.config.buffer_tokens
        if self._buffer_tokens() < limit or len(self._buffer) <= 1:
            return
        evicted: list[Message] = []
        while len(self._buffer) > 1 and self._buffer_tokens() >= limit:
            evicted.append(self._buffer.pop(0))
        self._compressions += 1
        # Half the evicted tokens, at least enough for a sentence, at most half the chain.
        evicted_tokens = sum(m.tokens for m in evicted)
        budget = max(1, min(self.config.summary_budget // 2, max(evicted_tokens // 2, 32)))
        text = self.summarizer([m.render() for m in evicted], budget, self.count_tokens)
        text = truncate_to_tokens(text, budget, self.count_tokens)
        self._summaries.append(
            Summary(0, text, self.count_tokens(text), evicted[0].index, evicted[-1].index)
        )
        self._compress_summaries()

    def _summary_tokens(self) -> int:
        return sum(s.tokens for s in self._summaries)

    def _compress_summaries(self) -> None:
        """Summarise the two oldest summaries into one until the chain is under its threshold."""
        budget = self.config.summary_budget
        limit = self.config.compression_threshold * budget
        while self._summary_tokens() > limit and len(self._summaries) > 1:
            first, second = self._summaries[0], self._summaries[1]
            target = max(1, min(budget // 2, (first.tokens + second.tokens) // 2))
            text = self.summarizer([first.text, second.text], target, self.count_tokens)
            text = truncate_to_tokens(text, target, self.count_tokens)
            merged = Summary(
                max(first.level, second.level) + 1,
                text,
                self.count_tokens(text),
                first.first_message,
                second.last_message,
            )
            self._summaries[0:2] = [merged]
            self._summary_merges += 1
        if self._summaries and self._summary_tokens() > budget:
            only = self._summaries[0]
            text = truncate_to_tokens(only.text, budget, self.count_tokens)
            self._summaries[0] = Summary(
                only.level, text, self.count_tokens(text), only.first_message, only.last_message
            )

    # -- reading -------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        return tuple(self._messages)

    @property
    def buffer(self) -> tuple[Message, ...]:
        return tuple(self._buffer)

    @property
    def summaries(self) -> tuple[Summary, ...]:
        return tuple(self._summaries)

    def get_semantic_matches(self, query: str, top_k: int = 3) -> list[SemanticMatch]:
        """Earlier turns most relevant to `query`, best first (no shared word: left out)."""
        return [
            {
                "content": hit.text,
                "score": hit.score,
                "role": self._messages[hit.position].role,
                "index": hit.position,
            }
            for hit in self.memory.search(query, top_k)
        ]

    def get_statistics(self) -> dict[str, int]:
        """Counts per tier. buffer + summarized = total messages; likewise for tokens."""
        with self._lock:
            return self._get_statistics()

    def _get_statistics(self) -> dict[str, int]:
        buffer_tokens = self._buffer_tokens()
        total_tokens = sum(m.tokens for m in self._messages)
        return {
            "total_messages": len(self._messages),
            "total_tokens": total_tokens,
            "buffer_messages": len(self._buffer),
            "buffer_tokens": buffer_tokens,
            "buffer_capacity": self.config.buffer_tokens,
            "summarized_messages": len(self._messages) - len(self._buffer),
            "summarized_tokens": total_tokens - buffer_tokens,
            "summary_count": len(self._summaries),
            "summary_tokens": self._summary_tokens(),
            "summary_levels": max((s.level for s in self._summaries), default=-1) + 1,
            "semantic_memory_size": len(self.memory),
            "compressions": self._compressions,
            "summary_merges": self._summary_merges,
            "truncated_queries": self._truncated_queries,
        }

    def get_final_prompt(self, query: str) -> str:
        """The prompt for `query`: always within `max_context_tokens` by the token counter.

        Priority: system prompt and query (truncated if alone they do not fit), then the most
        recent turns newest first within `buffer_tokens`, then summaries newest first within
        the summary budget, then semantic matches not already present. Each piece is kept only
        if the whole prompt with it still fits.
        """
        with self._lock:
            return self._get_final_prompt(query)

    def _get_final_prompt(self, query: str) -> str:
        limit = self.config.max_context_tokens
        count = self.count_tokens
        system = self.system_prompt
        if count(render_prompt(system, [], [], [], query)) > limit:
            self._truncated_queries += 1
            base = count(render_prompt(system, [], [], [], ""))
            if base > limit:
                system = ""
                base = count(render_prompt("", [], [], [], ""))
            if base > limit:
                # Not even the section headers fit such a tiny budget: the bare query.
                return truncate_to_tokens(query, limit, count)
            query = truncate_to_tokens(query, max(0, limit - base), count)
            while query and count(render_prompt(system, [], [], [], query)) > limit:
                query = query[:-1]

        recent: list[Message] = []
        summaries: list[Summary] = []
        memories: list[str] = []

        def render(recent: list[Message], summaries: list[Summary], memories: list[str]) -> str:
            return render_prompt(
                system, [s.text for s in summaries], memories, [m.render() for m in recent], query
            )

        prompt = render(recent, summaries, memories)
        used = 0
        for message in reversed(self._buffer):
            if recent and used + message.tokens > self.config.buffer_tokens:
                break
            candidate = render([message, *recent], summaries, memories)
            if count(candidate) > limit:
                break
            recent.insert(0, message)
            prompt, used = candidate, used + message.tokens
        used = 0
        for summary in reversed(self._summaries):
            if used + summary.tokens > self.config.summary_budget:
                break
            if not summary.text.strip():
                continue  # a zero summary budget leaves empty summaries: no empty section
            candidate = render(recent, [summary, *summaries], memories)
            if count(candidate) <= limit:
                summaries.insert(0, summary)
                prompt, used = candidate, used + summary.tokens
        shown = {m.index for m in recent}
        for match in self.get_semantic_matches(query, self.config.semantic_top_k + len(shown)):
            if len(memories) >= self.config.semantic_top_k:
                break
            if match["index"] in shown:
                continue
            candidate = render(
                recent, summaries, [*memories, f"{match['role']}: {match['content']}"]
            )
            if count(candidate) <= limit:
                memories.append(f"{match['role']}: {match['content']}")
                prompt = candidate
        return prompt


def _demo() -> None:
    config = ContextConfig(
        max_context_tokens=200, buffer_tokens=40, system_prompt_tokens=40, summary_tokens=50
    )
    system = ThreeTieredContextSystem(config)
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
