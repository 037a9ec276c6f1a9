"""The newest turn is never dropped silently, and a turn shows in one prompt section only."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.context_optimization import (
    ContextConfig,
    ThreeTieredContextSystem,
    estimate_tokens,
)

_MARKER = re.compile(r"\[\.\.\. (\d+) tokens truncated\]")


def test_a_newest_turn_larger_than_the_window_is_kept_truncated_with_a_marker() -> None:
    """The issue's case: a 3,740-token reply used to vanish, leaving a 69-token prompt."""
    with ThreeTieredContextSystem(ContextConfig()) as system:
        system.add_message("user", "Please write the full deployment guide for the Pi.")
        reply = " ".join(f"step{n} configure the service carefully." for n in range(750))
        system.add_message("assistant", reply)
        assert system.messages[-1].tokens > 2048
        prompt = system.get_final_prompt("Summarise the guide?")
        assert estimate_tokens(prompt) <= 2048
        assert estimate_tokens(prompt) > 1500  # the window is used, not a 69-token stub
        assert "assistant: step0 configure the service carefully." in prompt
        marker = _MARKER.search(prompt)
        assert marker is not None
        kept = prompt.split("assistant: ", 1)[1].split(" [...", 1)[0]
        assert int(marker.group(1)) == estimate_tokens(reply) - estimate_tokens(kept)
        assert system.get_statistics()["truncated_turns"] == 1


def test_a_tiny_window_still_shows_that_the_newest_turn_was_cut() -> None:
    config = ContextConfig(max_context_tokens=60, buffer_tokens=20, system_prompt_tokens=0)
    with ThreeTieredContextSystem(config) as system:
        system.add_message("user", "alpha " * 400)
        prompt = system.get_final_prompt("ok?")
        assert estimate_tokens(prompt) <= 60
        assert _MARKER.search(prompt) is not None
        assert "user: alpha" in prompt


def _sections(prompt: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    for block in prompt.split("\n\n"):
        if block.startswith("[") and "]\n" in block:
            title, body = block.split("\n", 1)
            sections[title] = sections.get(title, "") + body
    return sections


def _turn_ids(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\bt(\d+)s\d+\b", text)}


def test_a_summarised_turn_is_not_repeated_as_relevant_earlier_context() -> None:
    """The issue's case: the same turn in the summary and in "relevant earlier context"."""
    config = ContextConfig(max_context_tokens=600, buffer_tokens=80, summary_tokens=200)
    with ThreeTieredContextSystem(config) as system:
        for n in range(12):
            system.add_message("user", f"t{n}s0 the battery of device {n} drains. t{n}s1 ok.")
        system.flush()
        sections = _sections(system.get_final_prompt("battery device drains?"))
        summary = _turn_ids(sections.get("[Conversation summary]", ""))
        memories = _turn_ids(sections.get("[Relevant earlier context]", ""))
        assert summary, sections
        assert summary.isdisjoint(memories)


_sentence_words = st.lists(
    st.sampled_from(
        ["battery", "thermal", "cache", "latency", "pandas", "sales", "device", "model"]
    ),
    min_size=1,
    max_size=8,
)
_turns = st.lists(st.lists(_sentence_words, min_size=1, max_size=4), min_size=1, max_size=30)


def _words(text: str) -> int:
    return len(text.split())


@settings(deadline=None, max_examples=60)
@given(
    turns=_turns,
    window=st.integers(40, 500),
    buffer_share=st.floats(0.05, 0.5),
    summary_share=st.floats(0.0, 0.4),
    threshold=st.floats(0.1, 1.0),
    flush=st.booleans(),
    count=st.sampled_from([estimate_tokens, _words]),
)
def test_no_turn_appears_in_two_sections_of_the_prompt(
    turns: list[list[list[str]]],
    window: int,
    buffer_share: float,
    summary_share: float,
    threshold: float,
    flush: bool,
    count: Callable[[str], int],
) -> None:
    buffer = int(window * buffer_share)
    config = ContextConfig(
        max_context_tokens=window,
        buffer_tokens=buffer,
        system_prompt_tokens=10,
        summary_tokens=int((window - buffer - 10) * summary_share),
        compression_threshold=threshold,
    )
    with ThreeTieredContextSystem(config, token_counter=count) as system:
        for n, sentences in enumerate(turns):
            # Every sentence starts with a unique id "t<turn>s<sentence>", so any piece of a
            # turn that reaches the prompt (a summary keeps sentences) names its turn.
            text = " ".join(f"t{n}s{i} {' '.join(words)}." for i, words in enumerate(sentences))
            system.add_message("user" if n % 2 == 0 else "assistant", text)
        if flush:
            system.flush()
        query = " ".join(turns[0][0])
        prompt = system.get_final_prompt(query)
        assert count(prompt) <= window
        seen: dict[int, str] = {}
        for title, body in _sections(prompt).items():
            if title == "[Current query]":
                continue
            for turn in _turn_ids(body):
                assert turn not in seen, f"turn {turn} in {seen.get(turn)} and {title}:\n{prompt}"
                seen[turn] = title
