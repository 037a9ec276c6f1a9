"""Model names (ollama tags, GGUF file names) resolve to their shapes; misses warn; KV types."""

from __future__ import annotations

import logging
import uuid

import pytest

from pytest_edge.machine import use_machine
from reference_impl.memory_management import (
    DEFAULT_MODEL_SHAPE,
    KV_CACHE_TYPES,
    MODEL_SHAPES,
    DeviceMemoryManager,
    ModelShape,
    resolve_model_shape,
)
from tests.reference_impl.fakes import FakeMachine

KIB = 1024
MIB = 1024 * 1024

# The published config.json numbers of each tabled model: num_hidden_layers,
# num_key_value_heads, head_dim (or hidden_size / num_attention_heads). Sources: the URLs in
# MODEL_SHAPES (huggingface.co/<repo>/blob/main/config.json).
PUBLISHED = {
    "Llama-3.2-1B": (16, 8, 2048 // 32),
    "Llama-3.2-3B": (28, 8, 3072 // 24),
    "Qwen2.5-0.5B-Instruct": (24, 2, 896 // 14),
    "Qwen2.5-1.5B-Instruct": (28, 2, 1536 // 12),
    "Phi-3-mini-4k-instruct": (32, 32, 3072 // 32),
    "gemma-2-2b": (26, 4, 256),  # head_dim is given explicitly (2304 / 8 would be 288)
    "SmolLM2-1.7B-Instruct": (24, 32, 2048 // 32),
}


@pytest.mark.parametrize("shape", MODEL_SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize(
    ("cache_type", "bytes_per_element"),
    [("f16", 2.0), ("q8_0", 34 / 32), ("q4_0", 18 / 32), ("f32", 4.0)],
)
def test_kv_bytes_per_token_by_cache_type_match_the_published_configs(
    shape: ModelShape, cache_type: str, bytes_per_element: float
) -> None:
    layers, kv_heads, head_dim = PUBLISHED[shape.name]
    expected = 2 * layers * kv_heads * head_dim * bytes_per_element
    assert shape.kv_bytes_per_token(cache_type) == expected
    manager = _manager(kv_cache_type=cache_type)
    assert manager.kv_cache_mb(4096, shape) == pytest.approx(4096 * expected / MIB)


def test_q8_0_is_34_bytes_per_32_elements_not_one() -> None:
    # ggml-common.h: block_q8_0 = ggml_half d + int8_t qs[32] = 34 bytes per 32 values.
    assert KV_CACHE_TYPES["q8_0"] == 34 / 32
    assert KV_CACHE_TYPES["q4_0"] == 18 / 32
    qwen = resolve_model_shape("Qwen2.5-0.5B")
    assert qwen.kv_bytes_per_token("q8_0") == 12 * KIB / 2 * 34 / 32  # 6528 bytes, not 6144


def test_unknown_cache_type_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"kv_cache_type must be one of .*f16.*q8_0.*got 'q3'"):
        _manager(kv_cache_type="q3")


def _manager(**kwargs: object) -> DeviceMemoryManager:
    with use_machine(FakeMachine(total_mb=4096, available_mb=3000)):
        return DeviceMemoryManager(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("phi3:3.8b", "Phi-3-mini-4k-instruct"),
        ("phi3:latest", "Phi-3-mini-4k-instruct"),
        ("phi3:3.8b-mini-4k-instruct-q4_K_M", "Phi-3-mini-4k-instruct"),
        ("phi3:mini-4k", "Phi-3-mini-4k-instruct"),
        ("qwen2.5:0.5b-instruct-q4_K_M", "Qwen2.5-0.5B-Instruct"),
        ("qwen2.5:1.5b-instruct", "Qwen2.5-1.5B-Instruct"),
        ("llama3.2:1b-instruct-q8_0", "Llama-3.2-1B"),
        ("llama3.2:latest", "Llama-3.2-3B"),
        ("gemma2:2b-instruct-q4_0", "gemma-2-2b"),
        ("smollm2:1.7b-instruct-fp16", "SmolLM2-1.7B-Instruct"),
        ("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", "Qwen2.5-0.5B-Instruct"),
        ("qwen2.5-1.5b-instruct-q4_k_m.gguf", "Qwen2.5-1.5B-Instruct"),
        ("/models/Llama-3.2-3B-Instruct-Q4_K_M.gguf", "Llama-3.2-3B"),
        ("Llama-3.2-1B-Instruct.Q8_0.gguf", "Llama-3.2-1B"),
        ("Phi-3-mini-4k-instruct-q4.gguf", "Phi-3-mini-4k-instruct"),
        ("gemma-2-2b-it-IQ4_XS.gguf", "gemma-2-2b"),
        ("SmolLM2-1.7B-Instruct-f16.gguf", "SmolLM2-1.7B-Instruct"),
        ("bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B"),
        ("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", "Llama-3.2-3B"),
        ("Qwen2.5-0.5B-Instruct-Q4_K_M-00001-of-00002.gguf", "Qwen2.5-0.5B-Instruct"),
    ],
)
def test_ollama_tags_and_gguf_file_names_resolve(name: str, expected: str) -> None:
    assert resolve_model_shape(name).name == expected


def test_phi3_kv_is_no_longer_underestimated() -> None:
    phi3 = resolve_model_shape("phi3:3.8b")
    assert phi3.kv_bytes_per_token() == 384 * KIB  # 3.4x the 112 KiB fallback


@pytest.mark.parametrize("name", ["phi3:14b", "phi3:medium", "qwen2.5:7b", "gemma2:latest"])
def test_other_sizes_of_a_family_do_not_borrow_its_shape(name: str) -> None:
    assert resolve_model_shape(name) is DEFAULT_MODEL_SHAPE


def test_an_unknown_name_logs_a_warning_naming_the_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"private-model-{uuid.uuid4().hex[:8]}:7b-q4_K_M"
    with caplog.at_level(logging.WARNING, logger="reference_impl.memory_management"):
        shape = resolve_model_shape(name)
    assert shape is DEFAULT_MODEL_SHAPE
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert name in warnings[0].getMessage()
    assert DEFAULT_MODEL_SHAPE.name in warnings[0].getMessage()


def test_the_warning_is_logged_once_per_name(caplog: pytest.LogCaptureFixture) -> None:
    name = f"private-model-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="reference_impl.memory_management"):
        manager = _manager()
        manager.get_optimal_context_size(100, name)
        manager.check_fit(100, name)
    assert sum(name in r.getMessage() for r in caplog.records) == 1


def test_no_model_named_is_the_silent_documented_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="reference_impl.memory_management"):
        assert resolve_model_shape(None) is DEFAULT_MODEL_SHAPE
    assert not caplog.records


@pytest.mark.parametrize("bad", [42, b"phi3", ""])
def test_bad_model_names_are_rejected(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match=r"model must be"):
        resolve_model_shape(bad)  # type: ignore[arg-type]
