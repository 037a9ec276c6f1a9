"""Compute buffers in the fit, the boundaries enforced on load, UMA, and PSI in the profile."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pytest_edge.machine import Accelerator, HostMachine, PressureStall, use_machine
from pytest_edge.profiles.catalog import load_profile
from reference_impl.memory_management import (
    MIN_USEFUL_CONTEXT,
    DeviceMemoryManager,
    DeviceMemoryProfiler,
    ModelDoesNotFitError,
    WatermarkLevel,
    read_memory_pressure,
    resolve_model_shape,
)
from tests.reference_impl.fakes import FakeMachine

MIB = 1024 * 1024
# Qwen2.5-0.5B at Q4_K_M: 0.49e9 parameters x ~5 bits per weight (small models 5.0-5.2), an
# estimate of the weights as the edge facts list them.
QWEN_05B_Q4_MB = 0.49e9 * 5.0 / 8 / MIB


def _pi4_2gb(**kwargs: object) -> DeviceMemoryManager:
    """A manager bound to a simulated Pi 4 2 GB (headless, 1.9 GB available)."""
    device = load_profile("raspberry-pi-4-2gb")
    fake = FakeMachine(total_mb=2048, available_mb=1900, device=device)
    return DeviceMemoryManager(DeviceMemoryProfiler(fake), **kwargs)  # type: ignore[arg-type]


def test_kq_scratch_of_qwen_05b_at_32k_is_about_900_mb_without_flash_attention() -> None:
    manager = _pi4_2gb()
    qwen = resolve_model_shape("Qwen2.5-0.5B")
    at_32k = manager.compute_buffer_mb(32768, qwen)
    at_16k = manager.compute_buffer_mb(16384, qwen)
    # KQ is f32 [n_kv, n_ubatch, n_head] and the KQ mask f32 [n_kv, n_ubatch]: doubling n_ctx
    # adds 16384 x 512 x (14 + 1) x 4 bytes.
    assert at_32k - at_16k == pytest.approx(16384 * 512 * (14 + 1) * 4 / MIB)
    assert at_32k >= 32768 * 512 * 14 * 4 / MIB  # 896 MiB: the KQ scratch alone
    with_fa = manager.compute_buffer_mb(32768, qwen, flash_attention=True)
    assert with_fa < 0.4 * at_32k
    # logits: n_vocab x n_ubatch x 4 bytes is the largest part left with flash attention.
    assert with_fa >= 151936 * 512 * 4 / MIB


def test_a_pi4_2gb_is_not_told_qwen_05b_fits_32k_tokens() -> None:
    manager = _pi4_2gb()
    context = manager.get_optimal_context_size(QWEN_05B_Q4_MB, "Qwen2.5-0.5B")
    assert MIN_USEFUL_CONTEXT <= context < 32768
    fit = manager.check_fit(QWEN_05B_Q4_MB, "Qwen2.5-0.5B", context_tokens=context)
    assert fit.kv_cache_mb + fit.compute_buffer_mb <= manager.kv_cache_budget
    assert fit.required_mb == pytest.approx(
        fit.weights_mb + fit.kv_cache_mb + fit.compute_buffer_mb
    )
    full = manager.check_fit(QWEN_05B_Q4_MB, "Qwen2.5-0.5B", context_tokens=32768)
    assert full.compute_buffer_mb > 896


def test_flash_attention_and_a_smaller_ubatch_buy_context() -> None:
    plain = _pi4_2gb().get_optimal_context_size(QWEN_05B_Q4_MB, "Qwen2.5-0.5B")
    flash = _pi4_2gb(flash_attention=True).get_optimal_context_size(QWEN_05B_Q4_MB, "Qwen2.5-0.5B")
    small_ubatch = _pi4_2gb(n_ubatch=128).get_optimal_context_size(QWEN_05B_Q4_MB, "Qwen2.5-0.5B")
    assert flash >= plain
    assert small_ubatch > plain


def test_compute_buffer_scales_with_ubatch() -> None:
    qwen = resolve_model_shape("Qwen2.5-0.5B")
    big = _pi4_2gb(n_ubatch=512).compute_buffer_mb(8192, qwen)
    small = _pi4_2gb(n_ubatch=128).compute_buffer_mb(8192, qwen)
    assert small == pytest.approx(big / 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_ubatch": 0}, r"n_ubatch must be an integer in 1\.\.65536, got 0"),
        ({"n_ubatch": 1.5}, r"n_ubatch must be an integer"),
        ({"flash_attention": "yes"}, r"flash_attention must be True, False or None"),
        (
            {"kv_cache_type": "q8_0", "flash_attention": False},
            r"kv_cache_type='q8_0' quantises the V cache.*flash attention",
        ),
        ({"kv_cache_type": "q8_0", "kv_bytes_per_element": 1.0}, r"not both"),
        ({"kv_cache_type": 8}, r"kv_cache_type must be one of f32, f16.*got 8"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _pi4_2gb(**kwargs)


def test_a_quantised_kv_cache_implies_flash_attention() -> None:
    manager = _pi4_2gb(kv_cache_type="q8_0")
    assert manager.flash_attention is True
    assert manager.kv_bytes_per_element == 34 / 32


# --- the boundaries enforced --------------------------------------------------------------------


def test_a_load_past_the_limit_is_refused_with_the_numbers() -> None:
    manager = _pi4_2gb()
    with pytest.raises(ModelDoesNotFitError) as info:
        manager.reserve_model(1500, "Llama-3.2-3B", context_tokens=4096)
    error = info.value
    assert isinstance(error, MemoryError)
    message = str(error)
    for part in ("weights 1500.0 MB", "KV cache", "compute buffer", "estimate", "limit"):
        assert part in message
    assert f"safety margin {manager.safety_margin:.1f} MB" in message
    assert error.fit.required_mb > error.fit.limit_mb


def test_a_context_past_the_budget_is_refused_and_the_largest_that_fits_named() -> None:
    manager = _pi4_2gb()
    with pytest.raises(ModelDoesNotFitError, match=r"context budget .* at most \d+ tokens"):
        manager.reserve_model(QWEN_05B_Q4_MB, "Qwen2.5-0.5B", context_tokens=32768)


def test_a_reservation_holds_room_until_released() -> None:
    manager = _pi4_2gb()
    first = manager.reserve_model(500, "Qwen2.5-0.5B", context_tokens=1024)
    assert manager.reserved_mb == pytest.approx(first.fit.required_mb)
    with pytest.raises(ModelDoesNotFitError, match=r"already reserved"):
        manager.reserve_model(1000, "Qwen2.5-0.5B", context_tokens=1024)
    first.release()
    first.release()  # idempotent
    assert manager.reserved_mb == 0
    with manager.reserve_model(1000, "Qwen2.5-0.5B", context_tokens=1024) as second:
        assert second.fit.fits
    assert manager.reserved_mb == 0


def test_default_context_is_the_optimal_one() -> None:
    manager = _pi4_2gb()
    with manager.reserve_model(QWEN_05B_Q4_MB, "Qwen2.5-0.5B") as reservation:
        assert reservation.fit.context_tokens == manager.get_optimal_context_size(
            QWEN_05B_Q4_MB, "Qwen2.5-0.5B"
        )


def test_loads_are_refused_at_the_medium_watermark() -> None:
    fake = FakeMachine(total_mb=16384, available_mb=8000)
    manager = DeviceMemoryManager(DeviceMemoryProfiler(fake))
    fake.available_mb = 2000  # 88% used: MEDIUM
    with pytest.raises(ModelDoesNotFitError, match=r"watermark MEDIUM"):
        manager.reserve_model(10, "Qwen2.5-0.5B", context_tokens=512)
    assert manager.watermark_level is WatermarkLevel.MEDIUM


def test_concurrent_reservations_never_oversubscribe() -> None:
    manager = _pi4_2gb()
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            reservation = manager.reserve_model(300, "Qwen2.5-0.5B", context_tokens=512)
        except ModelDoesNotFitError:
            return
        with lock:
            granted.append(reservation.fit.required_mb)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted
    assert sum(granted) <= manager.model_memory_limit


# --- UMA ----------------------------------------------------------------------------------------


def _manager_with(accel: Accelerator) -> DeviceMemoryManager:
    fake = FakeMachine(total_mb=8192, available_mb=7000, accel=accel)
    return DeviceMemoryManager(DeviceMemoryProfiler(fake))


def test_on_uma_gpu_offloaded_weights_count_against_system_memory() -> None:
    jetson = _manager_with(Accelerator("tegra", True, True, "fake Jetson"))
    fit = jetson.check_fit(6000, "Llama-3.2-3B", context_tokens=4096, gpu_offload=True)
    assert fit.system_mb == pytest.approx(fit.required_mb)
    assert not fit.fits
    assert "unified memory" in fit.memory_pool
    with pytest.raises(ModelDoesNotFitError, match=r"unified memory"):
        jetson.reserve_model(6000, "Llama-3.2-3B", context_tokens=4096, gpu_offload=True)


def test_on_a_discrete_gpu_offloaded_weights_leave_system_memory() -> None:
    desktop = _manager_with(Accelerator("discrete", True, False, "fake NVIDIA"))
    fit = desktop.check_fit(6000, "Llama-3.2-3B", context_tokens=4096, gpu_offload=True)
    assert fit.system_mb < fit.weights_mb
    assert fit.fits
    assert "VRAM" in fit.memory_pool
    assert "not measured" in fit.memory_pool


def test_unknown_uma_is_counted_as_unified() -> None:
    unknown = _manager_with(Accelerator("unknown", None, None, "no evidence"))
    fit = unknown.check_fit(6000, "Llama-3.2-3B", context_tokens=4096, gpu_offload=True)
    assert fit.system_mb == pytest.approx(fit.required_mb)


# --- PSI ----------------------------------------------------------------------------------------

PSI_TEXT = (
    "some avg10=1.50 avg60=0.75 avg300=0.10 total=123456\n"
    "full avg10=0.50 avg60=0.25 avg300=0.00 total=6789\n"
)


def test_psi_is_in_the_profile_when_the_machine_has_it(tmp_path: Path) -> None:
    target = tmp_path / "proc" / "pressure" / "memory"
    target.parent.mkdir(parents=True)
    target.write_text(PSI_TEXT)
    with use_machine(HostMachine(tmp_path)):
        pressure = read_memory_pressure()
        profile = DeviceMemoryProfiler().get_profile()
    assert isinstance(pressure, PressureStall)
    assert pressure.some.avg10 == 1.5
    assert pressure.full is not None
    assert pressure.full.total_us == 6789
    assert profile.memory_pressure == pressure


def test_psi_is_none_where_absent(tmp_path: Path) -> None:
    with use_machine(HostMachine(tmp_path)):
        assert read_memory_pressure() is None
    with use_machine(FakeMachine()):
        assert read_memory_pressure() is None
        assert DeviceMemoryProfiler().get_profile().memory_pressure is None


def test_psi_on_this_host() -> None:
    pressure = read_memory_pressure()
    try:
        readable = bool(Path("/proc/pressure/memory").read_text())
    except OSError:
        readable = False
    if not readable:
        assert pressure is None
        pytest.skip("this kernel exposes no /proc/pressure/memory")
    assert pressure is not None
    assert pressure.some.total_us >= 0
    assert 0.0 <= pressure.some.avg10 <= 100.0


def test_print_profile_shows_psi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "proc" / "pressure" / "memory"
    target.parent.mkdir(parents=True)
    target.write_text(PSI_TEXT)
    with use_machine(HostMachine(tmp_path)):
        DeviceMemoryProfiler().print_profile()
    assert "Memory pressure:" in capsys.readouterr().out
