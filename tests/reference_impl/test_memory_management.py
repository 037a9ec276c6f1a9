"""memory_management: machine facts via current_machine, watermarks, model fit, bad input."""

from __future__ import annotations

import itertools
import math
import random
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.machine import Accelerator, Machine, use_machine
from pytest_edge.profiles.model import DeviceProfile
from reference_impl.memory_management import (
    DEFAULT_MODEL_SHAPE,
    MIN_USEFUL_CONTEXT,
    MODEL_SHAPES,
    DeviceMemoryManager,
    DeviceMemoryProfiler,
    WatermarkConfig,
    WatermarkLevel,
    WatermarkMonitor,
    friendly_context_size,
    level_for_usage,
    next_level,
    resolve_model_shape,
)
from tests.reference_impl.fakes import FakeMachine
from tests.reference_impl.notebook import run_cells

KIB = 1024
MIB = 1024 * 1024


def test_fake_machine_satisfies_the_protocol() -> None:
    assert isinstance(FakeMachine(), Machine)


# --- profile ------------------------------------------------------------------------------------


def test_profile_reads_the_installed_machine() -> None:
    profiler = DeviceMemoryProfiler()
    fake = FakeMachine(total_mb=2048, available_mb=1500, cores=4)
    with use_machine(fake):
        profile = profiler.get_profile()
    assert profile.total_memory_mb == pytest.approx(2048)
    assert profile.available_memory_mb == pytest.approx(1500)
    assert profile.cpu_count == 4
    assert profile.is_uma is True
    assert profile.gpu_available is False
    assert profile.simulated
    # Outside the block the profiler reads the host again.
    assert not profiler.get_profile().simulated


def test_unknown_accelerator_prints_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeMachine(accel=Accelerator("unknown", None, None, "no evidence"))
    with use_machine(fake):
        profile = DeviceMemoryProfiler().get_profile()
        DeviceMemoryProfiler().print_profile()
    assert profile.is_uma is None
    assert profile.gpu_available is None
    out = capsys.readouterr().out
    assert "UMA:              unknown" in out
    assert "GPU available:    unknown" in out
    assert "simulated device" in out


def test_os_reservation_of_a_simulated_device_limits_usable_memory() -> None:
    device = DeviceProfile(name="pi-like", memory_mb=4096, cpu_cores=4, os_reserved_mb=600)
    fake = FakeMachine(total_mb=4096, available_mb=4000, device=device)
    with use_machine(fake):
        manager = DeviceMemoryManager(DeviceMemoryProfiler(), WatermarkConfig())
    assert manager.profile.os_reserved_mb == 600
    assert manager.usable_memory_mb == pytest.approx(4096 - 600)
    assert manager.safety_margin == pytest.approx(409.6)
    assert manager.model_memory_limit == pytest.approx(4096 - 600 - 409.6)
    assert manager.kv_cache_budget == pytest.approx((4096 - 600 - 409.6) * 0.25)


def test_safety_margin_bounds() -> None:
    with use_machine(FakeMachine(total_mb=512, available_mb=300)):
        small = DeviceMemoryManager()
    with use_machine(FakeMachine(total_mb=65536, available_mb=60000)):
        large = DeviceMemoryManager()
    with use_machine(FakeMachine(total_mb=4096, available_mb=30)):
        starved = DeviceMemoryManager()
    assert small.safety_margin == 64.0
    assert large.safety_margin == 2048.0
    assert starved.safety_margin == pytest.approx(30)
    assert starved.model_memory_limit == pytest.approx(0)


# --- model fit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kib_per_token"),
    [
        ("Llama-3.2-1B", 32),
        ("Llama-3.2-3B", 112),
        ("Qwen2.5-0.5B", 12),
        ("Qwen2.5-1.5B", 28),
        ("Phi-3-mini", 384),
        ("gemma-2-2b", 104),
        ("SmolLM2-1.7B", 192),
    ],
)
def test_kv_bytes_per_token_match_the_published_shapes(name: str, kib_per_token: int) -> None:
    shape = resolve_model_shape(name)
    assert shape is not DEFAULT_MODEL_SHAPE
    assert shape.kv_bytes_per_token() == kib_per_token * KIB


def test_every_shape_cites_its_config_json() -> None:
    for shape in MODEL_SHAPES:
        assert shape.source.startswith("https://huggingface.co/")
        assert shape.source.endswith("/config.json")


@pytest.mark.parametrize(
    "alias", ["meta-llama/Llama-3.2-1B", "llama3.2:1b", "Llama-3.2-1B-Instruct", "LLAMA-3.2-1b"]
)
def test_model_names_resolve_loosely(alias: str) -> None:
    assert resolve_model_shape(alias).name == "Llama-3.2-1B"


def test_unknown_model_gets_the_documented_default() -> None:
    shape = resolve_model_shape("my-private-model-7b")
    assert shape is DEFAULT_MODEL_SHAPE
    assert shape.kv_bytes_per_token() == 112 * KIB
    assert shape.max_context == 8192


def _manager(total_mb: float = 4096, available_mb: float = 3000) -> DeviceMemoryManager:
    with use_machine(FakeMachine(total_mb=total_mb, available_mb=available_mb)):
        return DeviceMemoryManager()


def test_fit_counts_weights_plus_kv_cache_plus_compute_buffer() -> None:
    manager = _manager()  # limit = 3000 - 409.6 = 2590.4 MB
    fit = manager.check_fit(1000, "Llama-3.2-1B", context_tokens=8192)
    assert fit.kv_cache_mb == pytest.approx(8192 * 32 * KIB / MIB)  # 256 MB
    compute = manager.compute_buffer_mb(8192, "Llama-3.2-1B")
    assert fit.compute_buffer_mb == pytest.approx(compute)
    # Without flash attention the f32 KQ scratch [8192, 512, 32 heads] is 512 MB.
    assert compute >= 8192 * 512 * 32 * 4 / MIB
    assert fit.required_mb == pytest.approx(1000 + 256 + compute)
    assert fit.fits
    assert fit.comfortable
    assert not manager.check_fit(2000, "Llama-3.2-1B", context_tokens=8192).fits
    minimal = manager.context_mb(MIN_USEFUL_CONTEXT, "Llama-3.2-1B")
    assert manager.can_load_model(2590 - minimal, "Llama-3.2-1B")
    assert not manager.can_load_model(2591 - minimal, "Llama-3.2-1B")


def test_context_follows_the_budget_and_is_kernel_friendly() -> None:
    manager = _manager()  # context budget = 647.6 MB
    context = manager.get_optimal_context_size(1000, "Qwen2.5-1.5B")
    assert context in {2**k for k in range(20)} | {3 * 2**k for k in range(20)}
    # The context's KV cache and compute buffer fit the budget; the next friendly size does not
    # fit whatever rounding left.
    assert manager.context_mb(context, "Qwen2.5-1.5B") <= manager.kv_cache_budget
    largest = context
    while manager.context_mb(largest + 1, "Qwen2.5-1.5B") <= manager.kv_cache_budget:
        largest += 1
    assert context == friendly_context_size(largest)


def test_context_is_clamped_to_the_models_maximum() -> None:
    manager = _manager(total_mb=65536, available_mb=60000)
    assert manager.get_optimal_context_size(2000, "Phi-3-mini") == 4096
    assert manager.get_optimal_context_size(500, "Qwen2.5-0.5B") == 32768


def test_context_is_zero_when_the_model_does_not_fit() -> None:
    manager = _manager()
    assert manager.get_optimal_context_size(8000) == 0
    assert not manager.can_load_model(8000)


def test_context_never_exceeds_what_is_left_after_the_weights() -> None:
    manager = _manager()
    left = manager.context_mb(MIN_USEFUL_CONTEXT, "Llama-3.2-1B") + 50  # less than the budget
    weights = manager.model_memory_limit - left
    context = manager.get_optimal_context_size(weights, "Llama-3.2-1B")
    assert context >= MIN_USEFUL_CONTEXT
    assert manager.context_mb(context, "Llama-3.2-1B") <= left


@given(st.integers(min_value=0, max_value=10**7))
def test_friendly_context_size_rounds_down_to_power_of_two_or_one_and_a_half(n: int) -> None:
    result = friendly_context_size(n)
    assert result <= n
    if n >= 1:
        assert result > n // 2
        friendly = {2**k for k in range(25)} | {3 * 2**k for k in range(25)}
        assert result in friendly


@pytest.mark.parametrize(
    ("size", "match"),
    [
        (-1, r"model_size_mb must be a finite number >= 0 MB, got -1"),
        (math.nan, r"model_size_mb must be a finite number >= 0 MB, got nan"),
        (math.inf, r"model_size_mb must be a finite number >= 0 MB, got inf"),
        ("500", r"model_size_mb must be a number .*got '500'"),
        (True, r"model_size_mb must be a number"),
    ],
)
def test_bad_model_sizes_are_rejected(size: object, match: str) -> None:
    manager = _manager()
    with pytest.raises(ValueError, match=match):
        manager.can_load_model(size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        manager.get_optimal_context_size(size)  # type: ignore[arg-type]


def test_bad_context_tokens_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"context_tokens must be an integer >= 0, got -5"):
        _manager().check_fit(100, context_tokens=-5)


# --- watermark config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low_threshold": 0.9}, r"0 < low_threshold < medium_threshold < high_threshold <= 1"),
        ({"high_threshold": 1.5}, r"high_threshold must be in 0\.\.1, got 1\.5"),
        ({"low_threshold": -0.1}, r"low_threshold must be in 0\.\.1, got -0\.1"),
        ({"low_threshold": 0}, r"low_threshold must be in 0\.\.1 and above 0"),
        ({"medium_threshold": math.nan}, r"medium_threshold must be in 0\.\.1, got nan"),
        ({"hysteresis": 0.8}, r"hysteresis must be in 0\.\.low_threshold \(0\.7\)"),
        ({"hysteresis": -0.01}, r"hysteresis must be in 0\.\.low_threshold"),
    ],
)
def test_bad_watermark_config_is_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WatermarkConfig(**kwargs)


@pytest.mark.parametrize("usage", [-0.1, 1.1, math.nan])
def test_bad_usage_is_rejected(usage: float) -> None:
    with pytest.raises(ValueError, match=r"usage must be a fraction in 0\.\.1"):
        level_for_usage(usage, WatermarkConfig())


# --- watermark levels ---------------------------------------------------------------------------

usages = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
configs = st.tuples(
    st.floats(0.05, 0.6), st.floats(0.01, 0.2), st.floats(0.01, 0.2), st.floats(0.0, 0.04)
).map(lambda t: WatermarkConfig(t[0], t[0] + t[1], min(1.0, t[0] + t[1] + t[2]), t[3]))
levels = st.sampled_from(list(WatermarkLevel))


@given(configs, usages, usages)
def test_level_is_monotonic_in_usage(config: WatermarkConfig, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert level_for_usage(low, config) <= level_for_usage(high, config)


@given(configs, levels, usages, usages)
def test_level_with_hysteresis_is_monotonic_in_usage(
    config: WatermarkConfig, current: WatermarkLevel, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert next_level(current, low, config) <= next_level(current, high, config)


@given(configs, levels, usages)
def test_hysteresis_only_delays_falling(
    config: WatermarkConfig, current: WatermarkLevel, usage: float
) -> None:
    raw = level_for_usage(usage, config)
    new = next_level(current, usage, config)
    assert raw <= new <= max(raw, current)
    if new > raw:  # held up by hysteresis: usage is within the band below new's threshold
        # Same arithmetic as next_level (usage + h >= t): t - h can round above usage.
        assert min(1.0, usage + config.hysteresis) >= config.threshold(new)


def test_hysteresis_holds_a_level_until_usage_falls_below_the_band() -> None:
    config = WatermarkConfig(0.7, 0.85, 0.95, hysteresis=0.03)
    level = next_level(WatermarkLevel.NORMAL, 0.86, config)
    assert level is WatermarkLevel.MEDIUM
    assert next_level(level, 0.83, config) is WatermarkLevel.MEDIUM
    assert next_level(level, 0.81, config) is WatermarkLevel.LOW
    assert next_level(level, 0.5, config) is WatermarkLevel.NORMAL


def test_callbacks_fire_once_per_change_with_old_and_new() -> None:
    seen: list[tuple[WatermarkLevel, WatermarkLevel, float]] = []
    monitor = WatermarkMonitor(WatermarkConfig(), lambda: 0.0)
    remove = monitor.add_callback(lambda old, new, usage: seen.append((old, new, usage)))
    for usage in (0.5, 0.72, 0.73, 0.96, 0.94, 0.5):
        monitor.update(usage)
    assert seen == [
        (WatermarkLevel.NORMAL, WatermarkLevel.LOW, 0.72),
        (WatermarkLevel.LOW, WatermarkLevel.HIGH, 0.96),
        (WatermarkLevel.HIGH, WatermarkLevel.NORMAL, 0.5),
    ]
    remove()
    monitor.update(0.99)
    assert len(seen) == 3


def test_a_failing_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[WatermarkLevel] = []

    def broken(old: WatermarkLevel, new: WatermarkLevel, usage: float) -> None:
        raise RuntimeError("boom")

    monitor = WatermarkMonitor(WatermarkConfig(), lambda: 0.0)
    monitor.add_callback(broken)
    monitor.add_callback(lambda old, new, usage: seen.append(new))
    monitor.update(0.9)
    assert seen == [WatermarkLevel.MEDIUM]
    assert "watermark callback" in caplog.text


def test_callbacks_are_serialised_and_ordered_across_threads() -> None:
    transitions: list[tuple[WatermarkLevel, WatermarkLevel]] = []
    inside = threading.Semaphore(1)
    overlaps: list[bool] = []

    def record(old: WatermarkLevel, new: WatermarkLevel, usage: float) -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(True)
            return
        try:
            transitions.append((old, new))
        finally:
            inside.release()

    monitor = WatermarkMonitor(WatermarkConfig(), lambda: 0.0)
    monitor.add_callback(record)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(500):
            monitor.update(rng.random())

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps
    assert transitions, "random usage over 2000 updates must change level"
    assert transitions[0][0] is WatermarkLevel.NORMAL
    for (_, previous_new), (next_old, _) in itertools.pairwise(transitions):
        assert previous_new is next_old
    assert transitions[-1][1] is monitor.level


def test_manager_watermark_reads_usage_from_the_machine() -> None:
    fake = FakeMachine(total_mb=1000, available_mb=900)
    seen: list[WatermarkLevel] = []
    with use_machine(fake):
        manager = DeviceMemoryManager(DeviceMemoryProfiler(), WatermarkConfig(0.7, 0.85, 0.95))
        manager.on_level_change(lambda old, new, usage: seen.append(new))
        assert manager.check_watermark() is WatermarkLevel.NORMAL
        fake.available_mb = 100  # 90% used
        assert manager.check_watermark() is WatermarkLevel.MEDIUM
        fake.available_mb = 120  # 88%: inside the hysteresis band
        assert manager.check_watermark() is WatermarkLevel.MEDIUM
    assert seen == [WatermarkLevel.MEDIUM]
    assert manager.watermark_level is WatermarkLevel.MEDIUM


# --- the notebook -------------------------------------------------------------------------------


def test_notebook_cells_1_and_2_run_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_cells([1, 2], tmp_path)
    out = capsys.readouterr().out
    assert "Device Profile Summary" in out
    assert "Model Memory Limit:" in out
    assert "8000MB model:" in out
    assert namespace["profile"].total_memory_mb > 0
    assert namespace["memory_manager"].model_memory_limit >= 0


def test_notebook_cells_1_and_2_on_a_simulated_pi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = DeviceProfile(name="pi-4gb-like", memory_mb=4096, cpu_cores=4, os_reserved_mb=300)
    with use_machine(FakeMachine(total_mb=4096, available_mb=3500, device=device)):
        run_cells([1, 2], tmp_path)
    out = capsys.readouterr().out
    assert "Total Memory: 4096.0 MB" in out
    assert "CPU Cores: 4" in out
    assert "Safety Margin: 409.6 MB" in out
    assert "8000MB model: ❌ Loadable, 0 tokens context" in out
    assert " 500MB model: ✅ Loadable," in out


def test_nothing_reads_the_host_directly_while_a_device_is_simulated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    import psutil

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the host directly instead of current_machine()")

    for name in ("virtual_memory", "swap_memory", "cpu_count"):
        monkeypatch.setattr(psutil, name, forbidden)
    monkeypatch.setattr(os, "cpu_count", forbidden)
    with use_machine(FakeMachine(total_mb=2048, available_mb=1024, cores=2)):
        profiler = DeviceMemoryProfiler()
        profiler.print_profile()
        manager = DeviceMemoryManager(profiler)
        manager.check_watermark()
        assert manager.get_optimal_context_size(300, "Qwen2.5-0.5B") > 0
    assert manager.profile.cpu_count == 2
