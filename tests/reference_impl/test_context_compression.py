"""Compression runs in chunks on the system's own worker thread, never on the caller's."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from reference_impl.context_optimization import (
    CompressionError,
    ContextConfig,
    ThreeTieredContextSystem,
    TokenCounter,
    extractive_summary,
)

_WORKER = "ThreeTieredContextSystem-compressor"


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(_WORKER)]


@pytest.fixture
def no_worker_left() -> Iterator[None]:
    before = set(_workers())
    yield
    left = [t for t in _workers() if t not in before]
    for thread in left:
        thread.join(timeout=10)
    assert not [t for t in left if t.is_alive()], "a compression worker outlived its system"


def _turn(n: int) -> tuple[str, str]:
    return (
        "user" if n % 2 == 0 else "assistant",
        f"Turn {n} is about the battery. The battery budget on device {n} matters a lot.",
    )


class RecordingSummarizer:
    """Counts calls and records their threads; optionally waits on a gate (a slow model)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.threads: list[threading.Thread] = []
        self.calls = 0
        self.running = threading.Event()
        self.caller: threading.Thread | None = None

    def __call__(self, texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
        self.calls += 1
        self.threads.append(threading.current_thread())
        if self.gate is not None and threading.current_thread() is not self.caller:
            self.running.set()
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        return extractive_summary(texts, max_tokens, count)


def test_add_message_never_calls_the_summarizer_on_the_callers_thread(
    no_worker_left: None,
) -> None:
    summarizer = RecordingSummarizer()
    config = ContextConfig(max_context_tokens=400, buffer_tokens=100, summary_tokens=60)
    with ThreeTieredContextSystem(config, summarizer=summarizer) as system:
        for n in range(80):
            system.add_message(*_turn(n))
        system.flush()
        assert summarizer.calls > 0
        assert threading.current_thread() not in summarizer.threads
        assert {t.name for t in summarizer.threads} == {f"{_WORKER}-{id(system):x}"}


def test_whole_chunks_are_summarised_with_one_call_each(no_worker_left: None) -> None:
    summarizer = RecordingSummarizer()
    with ThreeTieredContextSystem(summarizer=summarizer) as system:
        for n in range(300):
            system.add_message(*_turn(n))
        system.flush()
        stats = system.get_statistics()
        assert stats["summarized_messages"] > 200
        # One call per chunk (many turns) plus the chain's merges: was ~1.6-2 calls per turn.
        assert stats["summarizer_calls"] == summarizer.calls
        assert summarizer.calls == stats["compressions"] + stats["summary_merges"]
        assert summarizer.calls / 300 < 0.35
        assert stats["summarized_messages"] / stats["compressions"] >= 4


def test_a_slow_summarizer_does_not_hold_up_add_message_and_turns_show_once(
    no_worker_left: None,
) -> None:
    gate = threading.Event()
    summarizer = RecordingSummarizer(gate)
    summarizer.caller = threading.current_thread()
    config = ContextConfig(max_context_tokens=4000, buffer_tokens=100, summary_tokens=2000)
    system = ThreeTieredContextSystem(config, summarizer=summarizer)
    try:
        for n in range(40):
            system.add_message(*_turn(n))
        assert summarizer.running.wait(timeout=30)
        # The worker is stuck in the first chunk; every turn was still recorded at once.
        assert summarizer.threads
        assert threading.current_thread() not in summarizer.threads
        stats = system.get_statistics()
        assert stats["total_messages"] == 40
        assert stats["pending_messages"] > 0
        assert stats["compressions"] == 0
        prompt = system.get_final_prompt("battery budget?")
        for n in range(40):
            line = "{}: {}".format(*_turn(n))
            assert prompt.count(line) == 1, f"turn {n} shown {prompt.count(line)} times"
        gate.set()
        system.flush(timeout=30)
        stats = system.get_statistics()
        assert stats["pending_messages"] == 0
        assert stats["compressions"] >= 1
        assert stats["buffer_messages"] + stats["summarized_messages"] == 40
    finally:
        gate.set()
        system.close()


def test_close_joins_the_worker_and_refuses_new_turns(no_worker_left: None) -> None:
    system = ThreeTieredContextSystem(ContextConfig(max_context_tokens=300, buffer_tokens=40))
    for n in range(30):
        system.add_message(*_turn(n))
    system.close()
    assert not [t for t in _workers() if t.name.endswith(f"{id(system):x}")]
    stats = system.get_statistics()
    assert stats["pending_messages"] == 0  # close finished the queued compression
    with pytest.raises(RuntimeError, match="closed"):
        system.add_message("user", "late")
    system.close()  # idempotent
    assert system.get_statistics()["total_messages"] == 30  # still readable
    with pytest.raises(RuntimeError, match="closed"):
        system.get_final_prompt("battery?")


def test_a_failing_summarizer_loses_nothing_and_flush_says_why(no_worker_left: None) -> None:
    def broken(texts: Sequence[str], max_tokens: int, count: TokenCounter) -> str:
        raise OSError("model runtime went away")

    config = ContextConfig(max_context_tokens=4000, buffer_tokens=60, summary_tokens=2000)
    with ThreeTieredContextSystem(config, summarizer=broken) as system:
        for n in range(12):
            system.add_message(*_turn(n))
        with pytest.raises(CompressionError, match="model runtime went away"):
            system.flush(timeout=30)
        stats = system.get_statistics()
        assert stats["compression_errors"] >= 1
        assert stats["pending_messages"] + stats["buffer_messages"] == 12
        prompt = system.get_final_prompt("battery?")
        for n in range(12):
            assert "{}: {}".format(*_turn(n)) in prompt  # shown raw, nothing lost


def test_wait_for_compression_reports_a_timeout(no_worker_left: None) -> None:
    gate = threading.Event()
    summarizer = RecordingSummarizer(gate)
    system = ThreeTieredContextSystem(
        ContextConfig(max_context_tokens=400, buffer_tokens=40), summarizer=summarizer
    )
    try:
        for n in range(10):
            system.add_message(*_turn(n))
        assert summarizer.running.wait(timeout=30)
        assert system.wait_for_compression(timeout=0.05) is False
        with pytest.raises(TimeoutError, match=r"still compressing after 0\.05 s"):
            system.flush(timeout=0.05)
        gate.set()
        assert system.wait_for_compression(timeout=30) is True
    finally:
        gate.set()
        system.close()


def test_after_close_nothing_starts_a_thread(no_worker_left: None) -> None:
    system = ThreeTieredContextSystem(ContextConfig(max_context_tokens=300, buffer_tokens=40))
    for n in range(30):
        system.add_message(*_turn(n))
    system.close()
    system.set_context_window(60)  # would queue compression on an open system
    assert system.wait_for_compression(timeout=0) in (True, False)
    assert not [t for t in _workers() if t.name.endswith(f"{id(system):x}")]
