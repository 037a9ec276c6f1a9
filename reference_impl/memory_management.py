"""Device memory management for on-device LLMs: profile, watermarks, model fit.

Follows the book chapter's notebook API (`DeviceMemoryProfiler`, `WatermarkConfig`,
`WatermarkLevel`, `DeviceMemoryManager`) and adds what shipping to a Pi or a Jetson needs:

- every machine fact comes from `pytest_edge.machine.current_machine()`, so the real host
  (psutil, ``MemAvailable``, cgroup v1/v2 limits) and a simulated device (``--edge-profile``)
  answer through the same path;
  cgroup limits are counted as the kernel counts them (working set, whole hierarchy) and
  memory PSI is read where the kernel has it (`read_memory_pressure`);
- watermark levels with hysteresis and thread-safe callbacks on level changes;
- model fit from weights + KV cache (f16 or quantised, `KV_CACHE_TYPES`) + llama.cpp's
  compute buffer (an estimate, `compute_buffer_bytes`), with model shapes from a GGUF file's
  metadata, from each tabled model's ``config.json`` (`MODEL_SHAPES`, found by hub id, GGUF
  file name or ollama tag) or a documented default for unknown models (with a warning);
- the boundaries enforced: `DeviceMemoryManager.reserve_model` refuses a load past them with
  `ModelDoesNotFitError` carrying the numbers; on unified memory GPU-offloaded weights count
  against the same RAM.

All sizes are MiB ("MB" in names, as in the notebook).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from pytest_edge.machine import Machine, PressureRecord, PressureStall, current_machine
from reference_impl.gguf_metadata import GGUFArray, GGUFError, GGUFHeader, read_gguf_header

__all__ = [
    "DEFAULT_MODEL_SHAPE",
    "DEFAULT_N_UBATCH",
    "KV_CACHE_TYPES",
    "MIN_USEFUL_CONTEXT",
    "MODEL_SHAPES",
    "DeviceMemoryManager",
    "DeviceMemoryProfiler",
    "GGUFError",
    "MemoryProfile",
    "ModelDoesNotFitError",
    "ModelFit",
    "ModelReservation",
    "ModelShape",
    "PressureStall",
    "WatermarkCallback",
    "WatermarkConfig",
    "WatermarkLevel",
    "WatermarkMonitor",
    "compute_buffer_bytes",
    "friendly_context_size",
    "level_for_usage",
    "model_shape_from_gguf",
    "next_level",
    "read_memory_pressure",
    "resolve_model_shape",
]

logger = logging.getLogger(__name__)
# A library does not configure logging: the application decides where records go.
logger.addHandler(logging.NullHandler())

MIB = 1024 * 1024


def _check_number(name: str, value: object, low: float, high: float, allowed: str) -> float:
    """Return `value` as float if it is a finite number in [low, high]; else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number ({allowed}), got {value!r}")
    number = float(value)
    if math.isnan(number) or not low <= number <= high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


# --- profile ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryProfile:
    """One snapshot of the machine's memory and compute, as the notebook's `get_profile()`.

    `is_uma` and `gpu_available` are ``None`` when unknown (no evidence either way).
    `os_reserved_mb` is the simulated device's OS reservation; ``None`` on a real host,
    where `available_memory_mb` already reflects what the OS uses. `memory_pressure` is the
    kernel's memory PSI where the machine has it (`read_memory_pressure`).
    """

    total_memory_mb: float
    available_memory_mb: float
    cpu_count: int
    is_uma: bool | None
    gpu_available: bool | None
    accelerator: str
    accelerator_evidence: str
    available_bounded_by: str
    cgroup_limit_mb: float | None
    os_reserved_mb: float | None
    machine_name: str
    simulated: bool
    memory_pressure: PressureStall | None = None

    @property
    def used_fraction(self) -> float:
        """Share of total memory not available, in 0..1."""
        if self.total_memory_mb <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - self.available_memory_mb / self.total_memory_mb))


def _fmt_unknown(value: bool | None) -> str:
    return "unknown" if value is None else str(value)


def _machine_pressure(machine: Machine) -> PressureStall | None:
    # Not part of the Machine protocol: a simulated device has no kernel to stall.
    reader = getattr(machine, "memory_pressure", None)
    if reader is None:
        return None
    pressure = reader()
    return pressure if isinstance(pressure, PressureStall) else None


def read_memory_pressure() -> PressureStall | None:
    """Memory pressure stall information of `current_machine()`; None where absent.

    On a real Linux host: ``/proc/pressure/memory`` (kernel >= 4.20 with PSI enabled),
    https://docs.kernel.org/accounting/psi.html. ``some avg10`` is the share of the last 10 s
    in which at least one task waited for memory (reclaim, refaults, swap-in): it rises before
    an OOM kill, while MemAvailable can still look fine. None on a simulated device.
    """
    return _machine_pressure(current_machine())


def _fmt_pressure(record: PressureRecord) -> str:
    return f"avg10 {record.avg10:.2f}% avg60 {record.avg60:.2f}% avg300 {record.avg300:.2f}%"


class DeviceMemoryProfiler:
    """Reads memory and compute facts through `current_machine()`.

    Without an explicit `machine`, every call asks `current_machine()` afresh, so a simulated
    device installed later (``use_machine``) is what the next reading sees.
    """

    def __init__(self, machine: Machine | None = None) -> None:
        self._machine = machine

    @property
    def machine(self) -> Machine:
        return self._machine if self._machine is not None else current_machine()

    def get_profile(self) -> MemoryProfile:
        machine = self.machine
        reading = machine.memory()
        accel = machine.accelerator()
        device = machine.profile
        return MemoryProfile(
            total_memory_mb=reading.total_bytes / MIB,
            available_memory_mb=reading.available_bytes / MIB,
            cpu_count=machine.cpu_count(),
            is_uma=accel.uma,
            gpu_available=accel.gpu,
            accelerator=accel.kind,
            accelerator_evidence=accel.evidence,
            available_bounded_by=reading.bounded_by,
            cgroup_limit_mb=(
                None if reading.cgroup_limit_bytes is None else reading.cgroup_limit_bytes / MIB
            ),
            os_reserved_mb=None if device is None else float(device.os_reserved_mb),
            machine_name=machine.name,
            simulated=machine.simulated,
            memory_pressure=_machine_pressure(machine),
        )

    def used_fraction(self) -> float:
        """Current memory usage in 0..1 (what the watermarks compare against)."""
        return self.machine.memory().used_fraction

    def print_profile(self) -> None:
        p = self.get_profile()
        kind = "simulated device" if p.simulated else "real host"
        print(f"Machine: {p.machine_name} ({kind})")
        print(f"  Total memory:     {p.total_memory_mb:10.1f} MB")
        print(
            f"  Available memory: {p.available_memory_mb:10.1f} MB "
            f"(bounded by {p.available_bounded_by})"
        )
        if p.cgroup_limit_mb is not None:
            print(f"  Container limit:  {p.cgroup_limit_mb:10.1f} MB")
        if p.os_reserved_mb is not None:
            print(f"  OS reserved:      {p.os_reserved_mb:10.1f} MB")
        print(f"  Memory in use:    {p.used_fraction:10.1%}")
        print(f"  CPU cores:        {p.cpu_count:10d}")
        print(f"  Accelerator:      {p.accelerator} ({p.accelerator_evidence})")
        print(f"  UMA:              {_fmt_unknown(p.is_uma)}")
        print(f"  GPU available:    {_fmt_unknown(p.gpu_available)}")
        if p.memory_pressure is not None:
            print(f"  Memory pressure:  some {_fmt_pressure(p.memory_pressure.some)}")


# --- watermarks ---------------------------------------------------------------------------------


class WatermarkLevel(IntEnum):
    """How close memory is to exhausted. Ordered: NORMAL < LOW < MEDIUM < HIGH.

    LOW means usage reached the low watermark (start trimming caches), MEDIUM the medium one
    (shrink context, refuse new loads), HIGH the high one (shed work now).
    """

    NORMAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


@dataclass(frozen=True)
class WatermarkConfig:
    """Usage thresholds (fractions of total memory) and the hysteresis band.

    Allowed: 0 < low < medium < high <= 1 and 0 <= hysteresis < low. A level is entered when
    usage reaches its threshold and left only when usage falls below threshold - hysteresis.
    """

    low_threshold: float = 0.70
    medium_threshold: float = 0.85
    high_threshold: float = 0.95
    hysteresis: float = 0.03

    def __post_init__(self) -> None:
        for name in ("low_threshold", "medium_threshold", "high_threshold"):
            value = _check_number(name, getattr(self, name), 0.0, 1.0, "in 0..1")
            if value == 0.0:
                raise ValueError(f"{name} must be in 0..1 and above 0, got {value!r}")
        if not self.low_threshold < self.medium_threshold < self.high_threshold:
            raise ValueError(
                "thresholds must satisfy 0 < low_threshold < medium_threshold < high_threshold"
                f" <= 1, got low={self.low_threshold!r}, medium={self.medium_threshold!r},"
                f" high={self.high_threshold!r}"
            )
        _check_number(
            "hysteresis",
            self.hysteresis,
            0.0,
            self.low_threshold,
            f"in 0..low_threshold ({self.low_threshold}) exclusive",
        )
        if self.hysteresis >= self.low_threshold:
            raise ValueError(
                f"hysteresis must be in 0..low_threshold ({self.low_threshold}) exclusive,"
                f" got {self.hysteresis!r}"
            )

    def threshold(self, level: WatermarkLevel) -> float:
        """Usage at which `level` is entered (0 for NORMAL)."""
        return {
            WatermarkLevel.NORMAL: 0.0,
            WatermarkLevel.LOW: self.low_threshold,
            WatermarkLevel.MEDIUM: self.medium_threshold,
            WatermarkLevel.HIGH: self.high_threshold,
        }[level]


def _check_usage(usage: float) -> float:
    return _check_number("usage", usage, 0.0, 1.0, "a fraction in 0..1")


def level_for_usage(usage: float, config: WatermarkConfig) -> WatermarkLevel:
    """The level for `usage` without history (monotonic non-decreasing in usage)."""
    usage = _check_usage(usage)
    if usage >= config.high_threshold:
        return WatermarkLevel.HIGH
    if usage >= config.medium_threshold:
        return WatermarkLevel.MEDIUM
    if usage >= config.low_threshold:
        return WatermarkLevel.LOW
    return WatermarkLevel.NORMAL


def next_level(current: WatermarkLevel, usage: float, config: WatermarkConfig) -> WatermarkLevel:
    """The level after observing `usage` while at `current`, with hysteresis.

    Rising is immediate; falling needs usage below the level's threshold minus the
    hysteresis. For a fixed `current` the result is monotonic non-decreasing in usage.
    """
    usage = _check_usage(usage)
    raw = level_for_usage(usage, config)
    if raw >= current:
        return raw
    sticky = level_for_usage(min(1.0, usage + config.hysteresis), config)
    return max(raw, min(current, sticky))


class WatermarkCallback(Protocol):
    """Called once per level change, in order, with the usage that caused it."""

    def __call__(self, old: WatermarkLevel, new: WatermarkLevel, usage: float) -> None: ...


class WatermarkMonitor:
    """Tracks the watermark level of a usage source and notifies callbacks on changes.

    Thread-safe: `update` may be called from any thread; transitions are computed and
    dispatched under one re-entrant lock, so callbacks see changes in order and never two at
    once. A callback that raises is logged and does not stop the others. Callbacks run under
    that lock: keep them short and never wait in one for another thread that updates the
    monitor.
    """

    def __init__(self, config: WatermarkConfig, usage_source: Callable[[], float]) -> None:
        self.config = config
        self._usage_source = usage_source
        self._level = WatermarkLevel.NORMAL
        self._callbacks: list[WatermarkCallback] = []
        self._lock = threading.RLock()

    @property
    def level(self) -> WatermarkLevel:
        with self._lock:
            return self._level

    def add_callback(self, callback: WatermarkCallback) -> Callable[[], None]:
        """Register `callback`; returns a function that unregisters it."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def update(self, usage: float | None = None) -> WatermarkLevel:
        """Observe `usage` (read from the source when None) and return the new level."""
        with self._lock:
            observed = self._usage_source() if usage is None else usage
            old = self._level
            new = next_level(old, observed, self.config)
            if new == old:
                return new
            self._level = new
            for callback in list(self._callbacks):
                try:
                    callback(old, new, float(observed))
                except Exception:
                    logger.exception("watermark callback %r failed", callback)
            return new


# --- model shapes -------------------------------------------------------------------------------

# Bytes per cached element by llama.cpp cache type (--cache-type-k / --cache-type-v). Quantised
# types store blocks of 32 values with one fp16 scale (ggml/src/ggml-common.h,
# https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-common.h):
# block_q8_0 = ggml_half d + int8_t qs[32] = 34 bytes; block_q4_0 = ggml_half d + uint8_t
# qs[16] = 18 bytes; block_q4_1 adds a ggml_half m (20); q5_0 adds uint8_t qh[4] (22); q5_1
# both (24).
KV_CACHE_TYPES: dict[str, float] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
}
_UNQUANTISED_KV = ("f32", "f16", "bf16")


def _bytes_per_element(cache: float | str) -> float:
    if isinstance(cache, str):
        if cache not in KV_CACHE_TYPES:
            raise ValueError(
                f"kv_cache_type must be one of {', '.join(KV_CACHE_TYPES)}, got {cache!r}"
            )
        return KV_CACHE_TYPES[cache]
    return _check_number("bytes_per_element", cache, 0.125, 8.0, "in 0.125..8 bytes")


@dataclass(frozen=True)
class ModelShape:
    """The shape that sizes a model's KV cache and compute buffer, from its ``config.json``.

    `n_head` (query heads), `n_embd` (hidden size) and `n_vocab` size the compute buffer;
    None where unknown (the estimate then uses kv_heads, n_head x head_dim and no logits: a
    lower bound).
    """

    name: str
    layers: int
    kv_heads: int
    head_dim: int
    max_context: int
    source: str
    aliases: tuple[str, ...] = ()
    note: str = ""
    n_head: int | None = None
    n_embd: int | None = None
    n_vocab: int | None = None

    def kv_bytes_per_token(self, bytes_per_element: float | str = 2.0) -> float:
        """Keys and values for one token over all layers: 2 x layers x kv_heads x head_dim x b.

        `bytes_per_element` is a number or a llama.cpp cache type name (`KV_CACHE_TYPES`).
        """
        per_element = _bytes_per_element(bytes_per_element)
        return 2 * self.layers * self.kv_heads * self.head_dim * per_element


_HF = "https://huggingface.co/{}/blob/main/config.json"

# Shapes from each model's config.json: num_hidden_layers, num_key_value_heads, head_dim (or
# hidden_size / num_attention_heads), max_position_embeddings; num_attention_heads,
# hidden_size and vocab_size for the compute buffer.
MODEL_SHAPES: tuple[ModelShape, ...] = (
    ModelShape(
        "Llama-3.2-1B", 16, 8, 64, 131072, _HF.format("meta-llama/Llama-3.2-1B"),
        aliases=("llama3.2:1b",), n_head=32, n_embd=2048, n_vocab=128256,
    ),
    ModelShape(
        "Llama-3.2-3B", 28, 8, 128, 131072, _HF.format("meta-llama/Llama-3.2-3B"),
        aliases=("llama3.2:3b", "llama3.2"), n_head=24, n_embd=3072, n_vocab=128256,
    ),
    ModelShape(
        "Qwen2.5-0.5B-Instruct", 24, 2, 64, 32768, _HF.format("Qwen/Qwen2.5-0.5B-Instruct"),
        aliases=("Qwen2.5-0.5B", "qwen2.5:0.5b"), n_head=14, n_embd=896, n_vocab=151936,
    ),
    ModelShape(
        "Qwen2.5-1.5B-Instruct", 28, 2, 128, 32768, _HF.format("Qwen/Qwen2.5-1.5B-Instruct"),
        aliases=("Qwen2.5-1.5B", "qwen2.5:1.5b"), n_head=12, n_embd=1536, n_vocab=151936,
    ),
    ModelShape(
        "Phi-3-mini-4k-instruct", 32, 32, 96, 4096, _HF.format("microsoft/Phi-3-mini-4k-instruct"),
        aliases=("Phi-3-mini", "phi3:mini", "phi3:3.8b", "phi3"),
        n_head=32, n_embd=3072, n_vocab=32064,
    ),
    ModelShape(
        "gemma-2-2b", 26, 4, 256, 8192, _HF.format("google/gemma-2-2b"),
        aliases=("gemma-2-2b-it", "gemma2:2b"),
        note="every other layer uses a 4096-token sliding window: this estimate is an upper bound",
        n_head=8, n_embd=2304, n_vocab=256000,
    ),
    ModelShape(
        "SmolLM2-1.7B-Instruct", 24, 32, 64, 8192,
        _HF.format("HuggingFaceTB/SmolLM2-1.7B-Instruct"),
        aliases=("SmolLM2-1.7B", "smollm2:1.7b", "smollm2"),
        n_head=32, n_embd=2048, n_vocab=49152,
    ),
)  # fmt: skip

# Unknown models: a policy default, not a fact about any one model. It takes Llama-3.2-3B's
# shape (a typical 1-3B grouped-query model, 112 KiB per token in fp16) and caps the context
# at 8192 tokens, the trained context of the table's smaller-context models.
DEFAULT_MODEL_SHAPE = ModelShape(
    name="unknown (default: Llama-3.2-3B shape, 8192-token cap)",
    layers=28,
    kv_heads=8,
    head_dim=128,
    max_context=8192,
    source="policy default; shape from " + _HF.format("meta-llama/Llama-3.2-3B"),
    n_head=24,
    n_embd=3072,
    n_vocab=128256,
)

# Below this many tokens a chat model is of little use; fit checks require room for it.
MIN_USEFUL_CONTEXT = 512


def _normalise(name: str) -> str:
    name = name.rsplit("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9.]", "", name).replace("instruct", "")


_SHAPE_INDEX: dict[str, ModelShape] = {
    _normalise(alias): shape for shape in MODEL_SHAPES for alias in (shape.name, *shape.aliases)
}

# llama.cpp quantisation and precision names as they end GGUF file names and ollama tags:
# Q4_K_M, Q8_0, IQ4_XS, Q4_0_4_4, f16, bf16, fp16.
_QUANT = r"(?:i?q\d(?:_[a-z0-9]+)*|f16|f32|bf16|fp16|fp32)"
_QUANT_SUFFIX = re.compile(rf"[-._]{_QUANT}$|[-._]gguf$", re.IGNORECASE)
_QUANT_WORD = re.compile(rf"{_QUANT}", re.IGNORECASE)
_SIZE_WORD = re.compile(r"\d+(?:\.\d+)?[bm]", re.IGNORECASE)
_TAG_FILLER = {"instruct", "chat", "it", "latest", "text"}


def _strip_quant(name: str) -> str:
    while True:
        stripped = _QUANT_SUFFIX.sub("", name)
        if stripped == name:
            return name
        name = stripped


def _candidate_names(model: str) -> list[str]:
    """Names to look up for a hub id, GGUF file name or ollama tag, most specific first.

    ``phi3:3.8b-mini-4k-instruct-q4_K_M`` tries ``phi3:3.8b-mini-4k``, ``phi3:3.8b-mini``,
    ``phi3:3.8b``; a tag naming a size never falls back to the bare family (``phi3:14b`` is
    not ``phi3``), a tag with only quantisation and filler words does (``phi3:latest``).
    """
    base = model.strip().replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    base = re.sub(r"-\d{5}-of-\d{5}$", "", base)  # split GGUF shards
    family, _, tag = base.partition(":")
    family = _strip_quant(family)
    words = [
        word
        for word in tag.split("-")
        if word and not _QUANT_WORD.fullmatch(word) and word.lower() not in _TAG_FILLER
    ]
    if not words:
        return [family]
    sized = any(_SIZE_WORD.fullmatch(word) for word in words)
    candidates = []
    for end in range(len(words), 0, -1):
        kept = words[:end]
        if sized and not any(_SIZE_WORD.fullmatch(word) for word in kept):
            break
        candidates.append(f"{family}:{'-'.join(kept)}")
    return candidates


def _lookup_name(model: str) -> ModelShape | None:
    for candidate in _candidate_names(model):
        shape = _SHAPE_INDEX.get(_normalise(candidate))
        if shape is not None:
            return shape
    return None


_warned_lock = threading.Lock()
_warned_names: set[str] = set()


def _warn_fallback(model: str) -> None:
    """Warn once per name that `model` got the default shape (a wrong shape misjudges fit)."""
    with _warned_lock:
        if model in _warned_names:
            return
        _warned_names.add(model)
    logger.warning(
        "model %r is not in MODEL_SHAPES and is not a GGUF file: using the fallback shape"
        " %s (%d layers x %d KV heads x %d head_dim, %.0f KiB per token in f16); pass a GGUF"
        " path or a ModelShape for an exact estimate",
        model,
        DEFAULT_MODEL_SHAPE.name,
        DEFAULT_MODEL_SHAPE.layers,
        DEFAULT_MODEL_SHAPE.kv_heads,
        DEFAULT_MODEL_SHAPE.head_dim,
        DEFAULT_MODEL_SHAPE.kv_bytes_per_token() / 1024,
    )


def _gguf_int(header: GGUFHeader, key: str, *, required: bool = True) -> int | None:
    """A positive integer metadata value; per-layer arrays give their largest entry."""
    value = header.metadata.get(key)
    if value is None:
        if required:
            raise GGUFError(header.path, key, None, "missing (needed for the model shape)")
        return None
    if isinstance(value, GGUFArray) and value.values:
        value = max(value.values)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GGUFError(header.path, key, None, f"must be a positive integer, got {value!r}")
    return value


def model_shape_from_gguf(path: str | os.PathLike[str]) -> ModelShape:
    """The model shape from a GGUF file's metadata (header only, tensors never read).

    Keys as llama.cpp writes them (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md,
    "LLM" section): ``general.architecture``, ``{arch}.block_count``,
    ``{arch}.attention.head_count``, ``{arch}.attention.head_count_kv`` (default: head_count),
    ``{arch}.attention.key_length`` / ``value_length`` (default: embedding_length /
    head_count), ``{arch}.context_length``; vocabulary size from ``tokenizer.ggml.tokens``.
    Raises `GGUFError` (a ValueError) naming the file and key when one is missing or bad.
    """
    header = read_gguf_header(path)
    arch = header.metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GGUFError(header.path, "general.architecture", None, f"missing or empty: {arch!r}")
    layers = _gguf_int(header, f"{arch}.block_count")
    n_head = _gguf_int(header, f"{arch}.attention.head_count")
    n_embd = _gguf_int(header, f"{arch}.embedding_length")
    max_context = _gguf_int(header, f"{arch}.context_length")
    assert layers
    assert n_head
    assert n_embd
    assert max_context
    kv_heads = _gguf_int(header, f"{arch}.attention.head_count_kv", required=False) or n_head
    key_length = _gguf_int(header, f"{arch}.attention.key_length", required=False)
    value_length = _gguf_int(header, f"{arch}.attention.value_length", required=False)
    head_dim = max(key_length or n_embd // n_head, value_length or 0)
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    n_vocab = tokens.length if isinstance(tokens, GGUFArray) else None
    n_vocab = n_vocab or _gguf_int(header, f"{arch}.vocab_size", required=False)
    name = header.metadata.get("general.name")
    return ModelShape(
        name=name if isinstance(name, str) and name else Path(path).stem,
        layers=layers,
        kv_heads=kv_heads,
        head_dim=head_dim,
        max_context=max_context,
        source=f"GGUF metadata of {header.path}",
        n_head=n_head,
        n_embd=n_embd,
        n_vocab=n_vocab,
    )


@functools.lru_cache(maxsize=32)
def _cached_gguf_shape(path: str, mtime_ns: int, size: int) -> ModelShape:
    return model_shape_from_gguf(path)


def resolve_model_shape(model: str | os.PathLike[str] | ModelShape | None) -> ModelShape:
    """The shape for a model: a `ModelShape`, a GGUF file (read from its metadata), or a name.

    Names are hub ids, plain names, GGUF file names (quantisation suffixes are ignored) and
    ollama tags. A name that matches nothing gets `DEFAULT_MODEL_SHAPE` and a WARNING naming
    the model and the fallback (once per name); ``None`` (no model named) gets the default
    silently. A GGUF file that exists but is malformed raises `GGUFError`.
    """
    if isinstance(model, ModelShape):
        return model
    if model is None:
        return DEFAULT_MODEL_SHAPE
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise TypeError(
            f"model must be a model name, a GGUF path, a ModelShape or None, got {model!r}"
        )
    if not model.strip():
        raise ValueError(f"model must be a non-empty name or GGUF path, got {model!r}")
    if model.lower().endswith(".gguf"):
        try:
            stat = os.stat(model)
        except OSError:
            stat = None
        if stat is not None:
            return _cached_gguf_shape(model, stat.st_mtime_ns, stat.st_size)
    shape = _lookup_name(model)
    if shape is None:
        _warn_fallback(model)
        return DEFAULT_MODEL_SHAPE
    return shape


def friendly_context_size(tokens: int) -> int:
    """Round down to 2^k or 1.5 x 2^k (512, 768, 1024, 1536, ...): sizes kernels like."""
    if tokens < 1:
        return 0
    power = 1 << (tokens.bit_length() - 1)
    three_halves = power + power // 2
    return three_halves if power >= 2 and three_halves <= tokens else power


# --- compute buffer -----------------------------------------------------------------------------

# llama.cpp's default micro-batch (llama_context_default_params: n_ubatch = 512).
DEFAULT_N_UBATCH = 512


def compute_buffer_bytes(
    shape: ModelShape, context_tokens: int, *, flash_attention: bool, n_ubatch: int
) -> int:
    """An ESTIMATE of llama.cpp's compute buffer for a context of `context_tokens`.

    llama.cpp sizes its compute buffer by reserving the worst-case graph: a micro-batch of
    n = min(n_ubatch, n_ctx) tokens against a full KV cache, all n outputs requested
    (``graph_reserve(n_tokens, n_seqs, n_tokens, ...)`` in src/llama-context.cpp,
    https://github.com/ggml-org/llama.cpp/blob/master/src/llama-context.cpp). The graph
    allocator reuses memory between ops, so the peak is the largest phase plus what lives
    through all of them:

    - attention without flash attention: ``kq = ggml_mul_mat(k, q)`` at GGML_PREC_F32 is
      f32 [n_ctx, n, n_head] (build_attn_mha in src/llama-graph.cpp,
      https://github.com/ggml-org/llama.cpp/blob/master/src/llama-graph.cpp); the softmax
      runs in place. With flash attention (``ggml_flash_attn_ext``) KQ is never materialised;
    - output: logits f32 [n_vocab, n];
    - throughout: the KQ mask [n_ctx, n] (f32, f16 with flash attention) and about two
      hidden-state tensors f32 [n_embd, n].

    Backends add their own scratch; treat the result as an estimate, not a measurement.
    """
    n = min(n_ubatch, context_tokens)
    n_head = shape.n_head or shape.kv_heads
    n_embd = shape.n_embd or n_head * shape.head_dim
    kq = 0 if flash_attention else context_tokens * n * n_head * 4
    logits = (shape.n_vocab or 0) * n * 4
    mask = context_tokens * n * (2 if flash_attention else 4)
    hidden = 2 * n * n_embd * 4
    return max(kq, logits) + mask + hidden


# --- fit ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFit:
    """Whether a model's weights, KV cache and compute buffer fit the model memory limit.

    `required_mb` = weights + KV cache + compute buffer (an estimate); `system_mb` is the part
    of it that counts against system RAM (all of it, except GPU-offloaded parts on a discrete
    GPU); `memory_pool` says which memory that is. `limit_mb` is the model memory limit less
    what other reservations hold.
    """

    model: str
    weights_mb: float
    context_tokens: int
    kv_cache_mb: float
    required_mb: float
    limit_mb: float
    fits: bool
    compute_buffer_mb: float = 0.0
    system_mb: float = 0.0
    memory_pool: str = "system RAM"
    kv_cache_type: str = "f16"
    flash_attention: bool = False
    n_ubatch: int = DEFAULT_N_UBATCH

    @property
    def context_mb(self) -> float:
        """KV cache plus compute buffer: what the context costs beyond the weights."""
        return self.kv_cache_mb + self.compute_buffer_mb

    @property
    def headroom_fraction(self) -> float:
        """Share of the limit left after loading; negative when it does not fit."""
        return 1.0 - self.system_mb / self.limit_mb if self.limit_mb > 0 else -math.inf

    @property
    def comfortable(self) -> bool:
        """At least 20% headroom, the margin fit tools call comfortable."""
        return self.fits and self.headroom_fraction >= 0.20

    def describe(self) -> str:
        """The numbers, in one line."""
        attention = "flash attention" if self.flash_attention else "no flash attention"
        return (
            f"weights {self.weights_mb:.1f} MB + KV cache {self.kv_cache_mb:.1f} MB"
            f" ({self.context_tokens} tokens, {self.kv_cache_type}) + compute buffer"
            f" {self.compute_buffer_mb:.1f} MB (estimate: {attention}, n_ubatch {self.n_ubatch})"
            f" = {self.required_mb:.1f} MB, {self.system_mb:.1f} MB of it in {self.memory_pool}"
        )


class ModelDoesNotFitError(MemoryError):
    """A model load refused by the memory boundaries; the message carries the numbers."""

    def __init__(self, reason: str, fit: ModelFit, boundaries: str) -> None:
        super().__init__(f"model {fit.model!r} refused: {reason}: {fit.describe()}; {boundaries}")
        self.reason = reason
        self.fit = fit


class ModelReservation:
    """Memory held for a model load until `release()` (or the end of a ``with`` block).

    Hold it from the fit check until the runtime has allocated the model (then the machine's
    reading shows the memory) or the load failed, so two loads cannot both pass the check.
    """

    def __init__(self, manager: DeviceMemoryManager, fit: ModelFit) -> None:
        self._manager = manager
        self.fit = fit
        self._released = False
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the reserved memory back (idempotent)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._manager._release(self.fit.system_mb)

    def __enter__(self) -> ModelReservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _check_context_tokens(context_tokens: object) -> int:
    if isinstance(context_tokens, bool) or not isinstance(context_tokens, int):
        raise ValueError(f"context_tokens must be an integer >= 0, got {context_tokens!r}")
    if context_tokens < 0:
        raise ValueError(f"context_tokens must be an integer >= 0, got {context_tokens!r}")
    return context_tokens


def _check_n_ubatch(n_ubatch: object) -> int:
    if isinstance(n_ubatch, bool) or not isinstance(n_ubatch, int) or not 1 <= n_ubatch <= 65536:
        raise ValueError(f"n_ubatch must be an integer in 1..65536, got {n_ubatch!r}")
    return n_ubatch


def _check_flash_attention(flash_attention: object) -> bool | None:
    if flash_attention is not None and not isinstance(flash_attention, bool):
        raise ValueError(f"flash_attention must be True, False or None, got {flash_attention!r}")
    return flash_attention


class DeviceMemoryManager:
    """Memory boundaries for a model on this machine, enforced on load, and the watermarks.

    From one profile snapshot (`refresh()` takes a new one):
    - usable = min(available, total - OS reservation of a simulated device);
    - `safety_margin` = 10% of total memory, at least 64 MB and at most 2048 MB, never more
      than usable;
    - `model_memory_limit` = usable - safety margin: weights, KV cache and compute buffer
      must fit in it;
    - `kv_cache_budget` = `kv_cache_fraction` (default 25%) of the limit: what the context
      (KV cache + compute buffer) may take, so the rest of the program keeps room.

    `reserve_model` enforces the three: it refuses, with `ModelDoesNotFitError` carrying the
    numbers, a load whose memory exceeds the limit (less other reservations), whose context
    exceeds the context budget, or that starts at or above the MEDIUM watermark.

    The KV cache is `kv_cache_type` (llama.cpp ``--cache-type-k/-v``, default f16; quantised
    V caches need flash attention in llama.cpp, so `flash_attention` defaults to on for them
    and off otherwise, the larger, safe estimate). `kv_bytes_per_element` is the older way to
    give the element size as a number.
    """

    def __init__(
        self,
        profiler: DeviceMemoryProfiler | None = None,
        config: WatermarkConfig | None = None,
        *,
        kv_cache_fraction: float = 0.25,
        kv_bytes_per_element: float | None = None,
        kv_cache_type: str | None = None,
        flash_attention: bool | None = None,
        n_ubatch: int = DEFAULT_N_UBATCH,
    ) -> None:
        self.profiler = profiler if profiler is not None else DeviceMemoryProfiler()
        self.config = config if config is not None else WatermarkConfig()
        self.kv_cache_fraction = _check_number(
            "kv_cache_fraction", kv_cache_fraction, 0.0, 1.0, "a fraction in 0..1"
        )
        self.kv_cache_type, self.kv_bytes_per_element = self._kv_cache(
            kv_cache_type, kv_bytes_per_element
        )
        self.flash_attention = self._flash(_check_flash_attention(flash_attention))
        self.n_ubatch = _check_n_ubatch(n_ubatch)
        # Re-entrant: reserve_model checks and reserves under it, and the checks read it.
        self._reserved_lock = threading.RLock()
        self._reserved_mb = 0.0
        self.monitor = WatermarkMonitor(self.config, self.profiler.used_fraction)
        self.refresh()

    @staticmethod
    def _kv_cache(cache_type: str | None, bytes_per_element: float | None) -> tuple[str, float]:
        if cache_type is not None and bytes_per_element is not None:
            raise ValueError(
                "give kv_cache_type or kv_bytes_per_element, not both"
                f" (got {cache_type!r} and {bytes_per_element!r})"
            )
        if cache_type is not None:
            if not isinstance(cache_type, str) or cache_type not in KV_CACHE_TYPES:
                raise ValueError(
                    f"kv_cache_type must be one of {', '.join(KV_CACHE_TYPES)}, got {cache_type!r}"
                )
            return cache_type, KV_CACHE_TYPES[cache_type]
        if bytes_per_element is None:
            return "f16", KV_CACHE_TYPES["f16"]
        value = _check_number(
            "kv_bytes_per_element", bytes_per_element, 0.125, 8.0, "in 0.125..8 bytes"
        )
        return f"{value:g} bytes/element", value

    def _flash(self, flash_attention: bool | None) -> bool:
        quantised = self.kv_cache_type in KV_CACHE_TYPES and (
            self.kv_cache_type not in _UNQUANTISED_KV
        )
        if flash_attention is None:
            return quantised
        if quantised and not flash_attention:
            # llama.cpp refuses a quantised V cache without flash attention (llama_init_from_model:
            # "V cache quantization requires flash_attn").
            raise ValueError(
                f"kv_cache_type={self.kv_cache_type!r} quantises the V cache, which llama.cpp"
                " allows only with flash attention: pass flash_attention=True (or None)"
            )
        return flash_attention

    def refresh(self) -> MemoryProfile:
        """Read the machine again and recompute the boundaries."""
        profile = self.profiler.get_profile()
        reserved = profile.os_reserved_mb or 0.0
        usable = max(0.0, min(profile.available_memory_mb, profile.total_memory_mb - reserved))
        margin = min(usable, max(64.0, min(2048.0, 0.10 * profile.total_memory_mb)))
        self.profile = profile
        self.usable_memory_mb = usable
        self.safety_margin = margin
        self.model_memory_limit = usable - margin
        self.kv_cache_budget = self.model_memory_limit * self.kv_cache_fraction
        return profile

    @property
    def reserved_mb(self) -> float:
        """Memory held by live `reserve_model` reservations."""
        with self._reserved_lock:
            return self._reserved_mb

    def _release(self, mb: float) -> None:
        with self._reserved_lock:
            self._reserved_mb = max(0.0, self._reserved_mb - mb)

    # -- estimates ----------------------------------------------------------------------------

    def kv_cache_mb(self, context_tokens: int, model: str | ModelShape | None = None) -> float:
        """KV cache size for `context_tokens` tokens of `model` (default shape if unknown)."""
        tokens = _check_context_tokens(context_tokens)
        shape = resolve_model_shape(model)
        return tokens * shape.kv_bytes_per_token(self.kv_bytes_per_element) / MIB

    def compute_buffer_mb(
        self,
        context_tokens: int,
        model: str | ModelShape | None = None,
        *,
        flash_attention: bool | None = None,
        n_ubatch: int | None = None,
    ) -> float:
        """Compute buffer ESTIMATE for a context (see `compute_buffer_bytes` for its source)."""
        tokens = _check_context_tokens(context_tokens)
        flash = self.flash_attention if flash_attention is None else flash_attention
        ubatch = self.n_ubatch if n_ubatch is None else _check_n_ubatch(n_ubatch)
        shape = resolve_model_shape(model)
        return (
            compute_buffer_bytes(shape, tokens, flash_attention=flash, n_ubatch=ubatch) / MIB
            if tokens
            else 0.0
        )

    def context_mb(self, context_tokens: int, model: str | ModelShape | None = None) -> float:
        """KV cache plus compute buffer for a context of `context_tokens` tokens."""
        shape = resolve_model_shape(model)
        return self.kv_cache_mb(context_tokens, shape) + self.compute_buffer_mb(
            context_tokens, shape
        )

    # -- fit ----------------------------------------------------------------------------------

    def _memory_pool(self, gpu_offload: bool, required: float, host: float) -> tuple[str, float]:
        """Which memory the model's bytes count against, and how many of them."""
        if not gpu_offload:
            return "system RAM", required
        if self.profile.gpu_available is False:
            raise ValueError(
                f"gpu_offload=True but this machine has no GPU LLM runtimes use"
                f" ({self.profile.accelerator}: {self.profile.accelerator_evidence})"
            )
        if self.profile.is_uma is False:
            # Offloaded weights, KV cache and compute buffer live in VRAM, which is not read
            # here; only the host-side buffers stay in system RAM.
            return "system RAM; the GPU-offloaded rest in discrete GPU VRAM (not measured)", host
        unknown = " (UMA unknown: counted as unified)" if self.profile.is_uma is None else ""
        return f"unified memory shared by CPU and GPU{unknown}", required

    def check_fit(
        self,
        model_size_mb: float,
        model: str | ModelShape | None = None,
        context_tokens: int = MIN_USEFUL_CONTEXT,
        *,
        gpu_offload: bool = False,
    ) -> ModelFit:
        """Weights + KV cache + compute buffer for `context_tokens` against the limit.

        On unified memory (Jetson, Apple silicon, a Pi; unknown counts as unified) GPU-offloaded
        weights and KV cache are in the same RAM, so `gpu_offload` changes nothing: all of it
        counts. On a discrete GPU the offloaded part leaves system RAM (its VRAM is not checked).
        """
        weights = _check_number(
            "model_size_mb", model_size_mb, 0.0, math.inf, "a finite number >= 0 MB"
        )
        if math.isinf(weights):
            raise ValueError(f"model_size_mb must be a finite number >= 0 MB, got {weights!r}")
        shape = resolve_model_shape(model)
        kv = self.kv_cache_mb(context_tokens, shape)
        compute = self.compute_buffer_mb(context_tokens, shape)
        required = weights + kv + compute
        host = 2 * min(self.n_ubatch, context_tokens) * (shape.n_embd or 0) * 4 / MIB
        pool, system = self._memory_pool(gpu_offload, required, host)
        limit = self.model_memory_limit - self.reserved_mb
        return ModelFit(
            model=shape.name,
            weights_mb=weights,
            context_tokens=context_tokens,
            kv_cache_mb=kv,
            required_mb=required,
            limit_mb=limit,
            fits=system <= limit,
            compute_buffer_mb=compute,
            system_mb=system,
            memory_pool=pool,
            kv_cache_type=self.kv_cache_type,
            flash_attention=self.flash_attention,
            n_ubatch=self.n_ubatch,
        )

    def can_load_model(self, model_size_mb: float, model: str | ModelShape | None = None) -> bool:
        """True if the weights plus the memory of a `MIN_USEFUL_CONTEXT` context fit."""
        return self.check_fit(model_size_mb, model).fits

    def _context_room_mb(self, weights_mb: float, shape: ModelShape) -> float:
        """What the context may take: the budget (at least a minimal context), within the limit."""
        minimum = self.context_mb(MIN_USEFUL_CONTEXT, shape)
        room_left = self.model_memory_limit - self.reserved_mb - weights_mb
        return min(max(self.kv_cache_budget, minimum), room_left)

    def get_optimal_context_size(
        self, model_size_mb: float, model: str | ModelShape | None = None
    ) -> int:
        """The largest kernel-friendly context whose memory fits, or 0 if the model does not.

        The context's memory (KV cache + compute buffer estimate) may use the larger of
        `kv_cache_budget` and what the minimum useful context needs, never more than is left
        of the limit after the weights; the result is clamped to the model's maximum context.
        """
        shape = resolve_model_shape(model)
        if not self.check_fit(model_size_mb, shape).fits:
            return 0
        room = self._context_room_mb(float(model_size_mb), shape)
        if self.context_mb(shape.max_context, shape) <= room:
            return shape.max_context
        low, high = MIN_USEFUL_CONTEXT, shape.max_context  # context_mb(low) fits, (high) not
        while high - low > 1:
            middle = (low + high) // 2
            if self.context_mb(middle, shape) <= room:
                low = middle
            else:
                high = middle
        return friendly_context_size(low)

    # -- enforcement --------------------------------------------------------------------------

    def _boundaries(self) -> str:
        return (
            f"limit {self.model_memory_limit - self.reserved_mb:.1f} MB = usable"
            f" {self.usable_memory_mb:.1f} MB - safety margin {self.safety_margin:.1f} MB"
            f" - already reserved {self.reserved_mb:.1f} MB; context budget"
            f" {self.kv_cache_budget:.1f} MB"
        )

    def reserve_model(
        self,
        model_size_mb: float,
        model: str | ModelShape | None = None,
        context_tokens: int | None = None,
        *,
        gpu_offload: bool = False,
    ) -> ModelReservation:
        """Check a model load against the three boundaries now and hold its memory.

        Reads the machine again first. `context_tokens` defaults to
        `get_optimal_context_size`. Refused with `ModelDoesNotFitError` (a MemoryError whose
        message has weights, KV cache, compute buffer, limit, margin and budget) when the
        watermark is MEDIUM or higher, the memory exceeds the limit less other reservations,
        or the context exceeds the context budget.
        """
        level = self.check_watermark()
        shape = resolve_model_shape(model)
        with self._reserved_lock:
            # Reading, checking and reserving happen under one lock: concurrent loads cannot
            # both pass against the same free memory.
            self.refresh()
            if context_tokens is None:
                context_tokens = max(
                    MIN_USEFUL_CONTEXT, self.get_optimal_context_size(model_size_mb, shape)
                )
            fit = self.check_fit(model_size_mb, shape, context_tokens, gpu_offload=gpu_offload)
            reason = self._refusal(level, fit, shape)
            if reason is not None:
                raise ModelDoesNotFitError(reason, fit, self._boundaries())
            self._reserved_mb += fit.system_mb
        return ModelReservation(self, fit)

    def _refusal(self, level: WatermarkLevel, fit: ModelFit, shape: ModelShape) -> str | None:
        if level >= WatermarkLevel.MEDIUM:
            return (
                f"memory watermark {level.name} (usage {self.profile.used_fraction:.0%})"
                " refuses new loads"
            )
        if not fit.fits:
            return f"{fit.system_mb:.1f} MB exceeds the limit {fit.limit_mb:.1f} MB"
        budget = max(self.kv_cache_budget, self.context_mb(MIN_USEFUL_CONTEXT, shape))
        if fit.context_mb > budget:
            best = self.get_optimal_context_size(fit.weights_mb, shape)
            return (
                f"the context (KV cache + compute buffer, {fit.context_mb:.1f} MB) exceeds the"
                f" context budget {budget:.1f} MB; at most {best} tokens fit"
            )
        return None

    # -- watermarks ---------------------------------------------------------------------------

    def check_watermark(self, usage: float | None = None) -> WatermarkLevel:
        """Observe memory usage now (or `usage`) and return the level, firing callbacks."""
        return self.monitor.update(usage)

    @property
    def watermark_level(self) -> WatermarkLevel:
        return self.monitor.level

    def on_level_change(self, callback: WatermarkCallback) -> Callable[[], None]:
        """Register a level-change callback; returns its unregister function."""
        return self.monitor.add_callback(callback)


def _demo() -> None:
    profiler = DeviceMemoryProfiler()
    profiler.print_profile()
    manager = DeviceMemoryManager(profiler, WatermarkConfig(0.7, 0.85, 0.95))
    print(f"\nModel memory limit: {manager.model_memory_limit:.1f} MB")
    print(f"Safety margin:      {manager.safety_margin:.1f} MB")
    print(f"KV cache budget:    {manager.kv_cache_budget:.1f} MB (KV cache + compute buffer)")
    manager.on_level_change(
        lambda old, new, usage: print(f"Watermark: {old.name} -> {new.name} at {usage:.1%}")
    )
    level = manager.check_watermark()
    print(f"Watermark level now: {level.name}")
    print("\nModel fit (Q4_K_M weights, f16 KV cache, compute buffer estimated, no flash attn):")
    # Weight sizes: parameters x ~4.9 bits (Q4_K_M), an estimate.
    for name, params_b in (("Qwen2.5-0.5B", 0.49), ("Llama-3.2-1B", 1.24), ("Llama-3.2-3B", 3.21)):
        weights = params_b * 1e9 * 4.9 / 8 / MIB
        fit = manager.check_fit(weights, name)
        context = manager.get_optimal_context_size(weights, name)
        mark = "fits" if fit.fits else "does not fit"
        print(f"  {name:14s} ~{weights:6.0f} MB weights: {mark}, {context} tokens context")


if __name__ == "__main__":
    _demo()
