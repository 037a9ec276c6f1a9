"""The context window sized from the memory manager and changed at run time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pytest_edge.machine import use_machine
from reference_impl.context_optimization import (
    ContextConfig,
    ThreeTieredContextSystem,
    estimate_tokens,
)
from reference_impl.memory_management import DeviceMemoryManager
from tests.reference_impl.fakes import FakeMachine


def _manager(total_mb: float = 4096, available_mb: float = 3000) -> DeviceMemoryManager:
    with use_machine(FakeMachine(total_mb=total_mb, available_mb=available_mb)):
        return DeviceMemoryManager()


def test_with_window_scales_budgets_and_keeps_them_valid() -> None:
    base = ContextConfig(max_context_tokens=2048, buffer_tokens=500, system_prompt_tokens=100)
    half = base.with_window(1024)
    assert (half.max_context_tokens, half.buffer_tokens, half.system_prompt_tokens) == (
        1024,
        250,
        50,
    )
    assert half.summary_budget == (1024 - 250 - 50) // 2
    explicit = ContextConfig(max_context_tokens=400, buffer_tokens=100, summary_tokens=60)
    assert explicit.with_window(200).summary_tokens == 30
    assert base.with_window(1).buffer_tokens == 0  # still a valid config
    with pytest.raises(ValueError, match="max_context_tokens must be an integer >= 1, got 0"):
        base.with_window(0)


def test_from_memory_manager_uses_the_optimal_context_size() -> None:
    manager = _manager()
    window = manager.get_optimal_context_size(700, "Llama-3.2-1B")
    assert window > 0
    config = ContextConfig.from_memory_manager(manager, 700, "Llama-3.2-1B")
    assert config.max_context_tokens == window
    assert config == ContextConfig().with_window(window)
    tuned = ContextConfig.from_memory_manager(
        manager, 700, "Llama-3.2-1B", buffer_tokens=256, semantic_top_k=5
    )
    assert (tuned.max_context_tokens, tuned.buffer_tokens, tuned.semantic_top_k) == (
        window,
        256,
        5,
    )


def test_a_model_that_does_not_fit_names_the_numbers() -> None:
    manager = _manager(total_mb=2048, available_mb=900)
    with pytest.raises(ValueError, match=r"does not fit .* MB weights .* MB > model memory limit"):
        ContextConfig.from_memory_manager(manager, 5000, "Llama-3.2-3B")


def test_from_memory_manager_rejects_a_window_override_and_unknown_fields() -> None:
    manager = _manager()
    with pytest.raises(TypeError, match="max_context_tokens=512 cannot be overridden"):
        ContextConfig.from_memory_manager(manager, 700, max_context_tokens=512)
    with pytest.raises(TypeError, match=r"no field\(s\) \['bufer_tokens'\]"):
        ContextConfig.from_memory_manager(manager, 700, bufer_tokens=10)


def _conversation(system: ThreeTieredContextSystem, turns: int, start: int = 0) -> None:
    for n in range(start, start + turns):
        system.add_message(
            "user" if n % 2 == 0 else "assistant",
            f"Turn {n} talks about the battery and the thermal budget of the device number {n}.",
        )


def test_set_context_window_applies_to_the_next_prompt_and_restores_exactly() -> None:
    config = ContextConfig(max_context_tokens=2048, buffer_tokens=500, system_prompt_tokens=100)
    system = ThreeTieredContextSystem(config)
    _conversation(system, 60)
    assert estimate_tokens(system.get_final_prompt("battery?")) > 256
    system.set_context_window(256)
    assert system.config.max_context_tokens == 256
    assert system.config.buffer_tokens == 62
    assert estimate_tokens(system.get_final_prompt("battery?")) <= 256
    system.set_context_window(2048)
    assert system.config == config  # rescaled from the original, no rounding drift
    with pytest.raises(ValueError, match="max_context_tokens must be an integer >= 1, got -4"):
        system.set_context_window(-4)
    assert system.config == config


def test_set_context_window_is_safe_beside_concurrent_turns_and_prompts() -> None:
    system = ThreeTieredContextSystem(ContextConfig(max_context_tokens=1024, buffer_tokens=200))
    windows = [1024, 300, 700, 128, 2048]
    errors: list[BaseException] = []
    oversize: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            system.add_message("user", f"Turn {n} about batteries, caches and thermal limits.")
            n += 1

    def reader() -> None:
        while not stop.is_set():
            with system._lock:  # the window and the prompt read together
                window = system.config.max_context_tokens
                prompt = system.get_final_prompt("what about batteries?")
            if estimate_tokens(prompt) > window:
                oversize.append(window)

    def guarded(target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as error:  # reported to the test thread
                errors.append(error)
                stop.set()

        return threading.Thread(target=run)

    threads = [guarded(writer), guarded(reader), guarded(reader)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(30):
            for window in windows:
                system.set_context_window(window)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert oversize == []
