"""Three-tiered context: budgets hold for any conversation, tiers behave, bad config is named."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.context_optimization import (
    ContextConfig,
    ThreeTieredContextSystem,
    estimate_tokens,
    extractive_summary,
    render_prompt,
    truncate_to_tokens,
)
from reference_impl.embeddings import FloatMatrix

# -- the token estimate -----------------------------------------------------------------------


def test_estimate_tokens_follows_the_documented_rule() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("   ") == 0
    assert estimate_tokens("hello") == 2  # 5 chars / 4 -> 2 beats 1 word
    assert estimate_tokens("a, b, c.") == 6  # 3 words + 3 punctuation beats 8 chars / 4
    assert estimate_tokens("日本語のテキスト") == 8  # one token per CJK character
    assert estimate_tokens("GPU 日本") == 2 + 1  # "GPU" + CJK 2 -> 1 word (chars/4 = 1) + 2


def test_truncate_to_tokens_ends_on_a_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon"
    short = truncate_to_tokens(text, 4, estimate_tokens)
    assert estimate_tokens(short) <= 4
    assert text.startswith(short)
    assert short.split() == text.split()[: len(short.split())]
    assert truncate_to_tokens(text, 100, estimate_tokens) == text
    assert truncate_to_tokens(text, 0, estimate_tokens) == ""


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_context_tokens": 0}, r"max_context_tokens must be an integer >= 1, got 0"),
        ({"buffer_tokens": -1}, r"buffer_tokens must be an integer >= 0, got -1"),
        ({"system_prompt_tokens": -5}, r"system_prompt_tokens must be an integer >= 0, got -5"),
        (
            {"max_context_tokens": 512, "buffer_tokens": 600},
            r"buffer_tokens \+ system_prompt_tokens must be <= max_context_tokens \(512\), "
            r"got 600 \+ 100",
        ),
        ({"compression_threshold": 1.5}, r"compression_threshold must be in \(0, 1\], got 1.5"),
        ({"compression_threshold": 0}, r"compression_threshold must be in \(0, 1\], got 0"),
        ({"compression_threshold": -0.1}, r"compression_threshold must be in \(0, 1\]"),
        ({"summary_tokens": 5000}, r"summary_tokens must be <= 1448"),
        ({"buffer_tokens": 1.5}, r"buffer_tokens must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_config_names_the_field_and_range(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContextConfig(**kwargs)


def test_bad_messages_are_rejected() -> None:
    system = ThreeTieredContextSystem(ContextConfig())
    with pytest.raises(ValueError, match="role must be a non-empty string"):
        system.add_message("", "hi")
    with pytest.raises(ValueError, match="tokens must be an integer >= 0 or None, got -3"):
        system.add_message("user", "hi", -3)


# -- tiers ------------------------------------------------------------------------------------


def _long_conversation(system: ThreeTieredContextSystem, turns: int) -> None:
    topics = ["battery", "thermal", "quantization", "cache", "latency", "storage", "network"]
    for n in range(turns):
        topic = topics[n % len(topics)]
        system.add_message(
            "user" if n % 2 == 0 else "assistant",
            f"Turn {n} is about {topic}. The {topic} budget on the device matters. "
            f"We measured {topic} number {n} twice.",
        )


def test_buffer_compresses_into_a_summary_chain_with_summaries_of_summaries() -> None:
    config = ContextConfig(max_context_tokens=400, buffer_tokens=100, summary_tokens=60)
    system = ThreeTieredContextSystem(config)
    _long_conversation(system, 60)
    system.flush()  # compression runs on the system's worker thread
    stats = system.get_statistics()
    assert stats["buffer_tokens"] < config.compression_threshold * config.buffer_tokens
    assert stats["compressions"] > 1
    assert stats["summary_merges"] > 0
    assert stats["summary_levels"] >= 2  # summaries of summaries
    assert stats["summary_tokens"] <= config.summary_budget
    assert stats["semantic_memory_size"] == 60
    covered = [(s.first_message, s.last_message) for s in system.summaries]
    assert covered[0][0] == 0
    assert covered[-1][1] == system.buffer[0].index - 1  # the chain ends where the buffer begins


def test_final_prompt_brings_back_an_old_relevant_turn_from_semantic_memory() -> None:
    config = ContextConfig(max_context_tokens=300, buffer_tokens=60, summary_tokens=40)
    system = ThreeTieredContextSystem(config)
    system.add_message("user", "My dog is called Biscuit and loves the beach.")
    _long_conversation(system, 30)
    assert system.buffer[0].index > 0  # the dog turn left the buffer
    prompt = system.get_final_prompt("What is my dog called?")
    assert "[Relevant earlier context]" in prompt
    assert "Biscuit" in prompt
    assert estimate_tokens(prompt) <= 300


def test_an_oversized_query_is_truncated_and_counted() -> None:
    system = ThreeTieredContextSystem(
        ContextConfig(max_context_tokens=50, buffer_tokens=10, system_prompt_tokens=10)
    )
    prompt = system.get_final_prompt("why " * 500)
    assert estimate_tokens(prompt) <= 50
    assert system.get_statistics()["truncated_queries"] == 1


def test_a_budget_too_small_for_the_headers_gets_the_bare_query() -> None:
    """Found by hypothesis: 8 characters cannot hold "[Current query]"."""
    config = ContextConfig(max_context_tokens=8, buffer_tokens=0, system_prompt_tokens=0)
    system = ThreeTieredContextSystem(config, token_counter=len)
    assert system.get_final_prompt("") == ""
    assert system.get_final_prompt("what is up?") == "what is"


def test_a_zero_summary_budget_leaves_no_empty_summary_section() -> None:
    config = ContextConfig(max_context_tokens=200, buffer_tokens=20, summary_tokens=0)
    system = ThreeTieredContextSystem(config)
    _long_conversation(system, 8)
    system.flush()
    assert system.get_statistics()["summarized_messages"] > 0
    assert "[Conversation summary]" not in system.get_final_prompt("what now?")


def test_pluggable_counter_summarizer_and_embedder_are_used() -> None:
    calls: list[str] = []

    def words(text: str) -> int:
        return len(text.split())

    def first_words(texts: Sequence[str], max_tokens: int, count: Any) -> str:
        calls.append("summarize")
        return " ".join(" ".join(texts).split()[:max_tokens])

    class Constant:
        dim = 2

        def embed(self, texts: Sequence[str]) -> FloatMatrix:
            calls.append("embed")
            return np.ones((len(texts), 2), dtype=np.float32)

    config = ContextConfig(max_context_tokens=120, buffer_tokens=20, system_prompt_tokens=10)
    system = ThreeTieredContextSystem(
        config, token_counter=words, summarizer=first_words, embedder=Constant()
    )
    _long_conversation(system, 10)
    system.flush()
    prompt = system.get_final_prompt("and now?")
    assert "summarize" in calls
    assert "embed" in calls
    assert words(prompt) <= 120
    assert system.messages[0].tokens == words(system.messages[0].content)


def test_extractive_summary_keeps_topical_sentences_in_order() -> None:
    texts = [
        "The battery drains fast. I had pizza for lunch.",
        "Battery life drops when the battery is cold.",
    ]
    assert extractive_summary(texts, 10, estimate_tokens) == "The battery drains fast."
    summary = extractive_summary(texts, 20, estimate_tokens)
    assert summary == "The battery drains fast. Battery life drops when the battery is cold."
    assert estimate_tokens(summary) <= 20
    assert extractive_summary([], 10, estimate_tokens) == ""


# -- properties -------------------------------------------------------------------------------

_roles = st.sampled_from(["user", "assistant", "tool"])
_content = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=300)
_messages = st.lists(
    st.tuples(_roles, _content, st.one_of(st.none(), st.integers(0, 400))), max_size=25
)
_configs = st.builds(
    lambda max_tokens, buffer_share, system_share, threshold: ContextConfig(
        max_context_tokens=max_tokens,
        buffer_tokens=int(max_tokens * buffer_share),
        system_prompt_tokens=int(max_tokens * system_share),
        compression_threshold=threshold,
    ),
    st.integers(8, 600),
    st.floats(0.0, 0.6),
    st.floats(0.0, 0.3),
    st.floats(0.05, 1.0),
)


def _words(text: str) -> int:
    return len(text.split())


# The budget holds under whichever counter is configured: the estimate, characters, words.
_counters = st.sampled_from([estimate_tokens, len, _words])


@given(config=_configs, messages=_messages, query=_content, count=_counters)
def test_final_prompt_fits_and_keeps_the_newest_turn(
    config: ContextConfig,
    messages: list[tuple[str, str, int | None]],
    query: str,
    count: Callable[[str], int],
) -> None:
    system = ThreeTieredContextSystem(config, token_counter=count)
    for role, content, tokens in messages:
        system.add_message(role, content, tokens)
    prompt = system.get_final_prompt(query)
    assert count(prompt) <= config.max_context_tokens
    if messages:
        newest = system.messages[-1]
        minimal = render_prompt(system.system_prompt, [], [], [newest.render()], query)
        if count(minimal) <= config.max_context_tokens:
            assert newest.render() in prompt


@given(config=_configs, messages=_messages)
def test_statistics_add_up(
    config: ContextConfig, messages: list[tuple[str, str, int | None]]
) -> None:
    with ThreeTieredContextSystem(config) as system:
        for role, content, tokens in messages:
            system.add_message(role, content, tokens)
        _check_sums(system.get_statistics(), len(messages))  # while the worker runs
        system.flush()
        stats = system.get_statistics()
        _check_sums(stats, len(messages))
        assert stats["pending_messages"] == 0
        assert stats["total_tokens"] == sum(m.tokens for m in system.messages)
        assert stats["semantic_memory_size"] == stats["total_messages"]  # under the default cap
        assert stats["summary_tokens"] == sum(s.tokens for s in system.summaries)
        assert stats["summary_tokens"] <= config.summary_budget
        assert stats["summary_count"] <= stats["compressions"]
        if stats["summarized_messages"]:
            assert stats["summary_count"] >= 1
            assert system.buffer  # the newest turn always stays in the raw buffer


def _check_sums(stats: dict[str, int], messages: int) -> None:
    """Compression is asynchronous; one statistics snapshot adds up at any moment."""
    assert stats["total_messages"] == messages
    tiers = ("buffer", "pending", "summarized")
    assert sum(stats[f"{tier}_messages"] for tier in tiers) == stats["total_messages"]
    assert sum(stats[f"{tier}_tokens"] for tier in tiers) == stats["total_tokens"]
