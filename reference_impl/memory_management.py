"""Device memory management for on-device LLMs: profile, watermarks, model fit.

Follows the book chapter's notebook API (`DeviceMemoryProfiler`, `WatermarkConfig`,
`WatermarkLevel`, `DeviceMemoryManager`) and adds what shipping to a Pi or a Jetson needs:

- every machine fact comes from `pytest_edge.machine.current_machine()`, so the real host
  (psutil, ``MemAvailable``, cgroup v1/v2 limits) and a simulated device (``--edge-profile``)
  answer through the same path;
- watermark levels with hysteresis and thread-safe callbacks on level changes;
- model fit from weight size plus KV cache, using real model shapes from each model's
  ``config.json`` (`MODEL_SHAPES`), with a documented default for unknown models.

All sizes are MiB ("MB" in names, as in the notebook).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from pytest_edge.machine import Machine, current_machine

__all__ = [
    "DEFAULT_MODEL_SHAPE",
    "MIN_USEFUL_CONTEXT",
    "MODEL_SHAPES",
    "DeviceMemoryManager",
    "DeviceMemoryProfiler",
    "MemoryProfile",
    "ModelFit",
    "ModelShape",
    "WatermarkCallback",
    "WatermarkConfig",
    "WatermarkLevel",
    "WatermarkMonitor",
    "friendly_context_size",
    "level_for_usage",
    "next_level",
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
    where `available_memory_mb` already reflects what the OS uses.
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

    @property
    def used_fraction(self) -> float:
        """Share of total memory not available, in 0..1."""
        if self.total_memory_mb <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - self.available_memory_mb / self.total_memory_mb))


def _fmt_unknown(value: bool | None) -> str:
    return "unknown" if value is None else str(value)


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


# --- model shapes and fit -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """The attention shape that sizes a model's KV cache, from its ``config.json``."""

    name: str
    layers: int
    kv_heads: int
    head_dim: int
    max_context: int
    source: str
    aliases: tuple[str, ...] = ()
    note: str = ""

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """Keys and values for one token over all layers: 2 x layers x kv_heads x head_dim x b."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_element


_HF = "https://huggingface.co/{}/blob/main/config.json"

# Shapes from each model's config.json: num_hidden_layers, num_key_value_heads, head_dim (or
# hidden_size / num_attention_heads), max_position_embeddings.
MODEL_SHAPES: tuple[ModelShape, ...] = (
    ModelShape(
        "Llama-3.2-1B", 16, 8, 64, 131072, _HF.format("meta-llama/Llama-3.2-1B"),
        aliases=("llama3.2:1b",),
    ),
    ModelShape(
        "Llama-3.2-3B", 28, 8, 128, 131072, _HF.format("meta-llama/Llama-3.2-3B"),
        aliases=("llama3.2:3b", "llama3.2"),
    ),
    ModelShape(
        "Qwen2.5-0.5B-Instruct", 24, 2, 64, 32768, _HF.format("Qwen/Qwen2.5-0.5B-Instruct"),
        aliases=("Qwen2.5-0.5B", "qwen2.5:0.5b"),
    ),
    ModelShape(
        "Qwen2.5-1.5B-Instruct", 28, 2, 128, 32768, _HF.format("Qwen/Qwen2.5-1.5B-Instruct"),
        aliases=("Qwen2.5-1.5B", "qwen2.5:1.5b"),
    ),
    ModelShape(
        "Phi-3-mini-4k-instruct", 32, 32, 96, 4096, _HF.format("microsoft/Phi-3-mini-4k-instruct"),
        aliases=("Phi-3-mini", "phi3:mini", "phi3"),
    ),
    ModelShape(
        "gemma-2-2b", 26, 4, 256, 8192, _HF.format("google/gemma-2-2b"),
        aliases=("gemma-2-2b-it", "gemma2:2b"),
        note="every other layer uses a 4096-token sliding window: this estimate is an upper bound",
    ),
    ModelShape(
        "SmolLM2-1.7B-Instruct", 24, 32, 64, 8192,
        _HF.format("HuggingFaceTB/SmolLM2-1.7B-Instruct"),
        aliases=("SmolLM2-1.7B", "smollm2:1.7b", "smollm2"),
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
)

# Below this many tokens a chat model is of little use; fit checks require room for it.
MIN_USEFUL_CONTEXT = 512


def _normalise(name: str) -> str:
    name = name.rsplit("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9.]", "", name).replace("instruct", "")


_SHAPE_INDEX: dict[str, ModelShape] = {
    _normalise(alias): shape for shape in MODEL_SHAPES for alias in (shape.name, *shape.aliases)
}


def resolve_model_shape(model: str | ModelShape | None) -> ModelShape:
    """The shape for a model name (hub id, plain name or ollama tag); the default if unknown."""
    if isinstance(model, ModelShape):
        return model
    if model is None:
        return DEFAULT_MODEL_SHAPE
    return _SHAPE_INDEX.get(_normalise(model), DEFAULT_MODEL_SHAPE)


def friendly_context_size(tokens: int) -> int:
    """Round down to 2^k or 1.5 x 2^k (512, 768, 1024, 1536, ...): sizes kernels like."""
    if tokens < 1:
        return 0
    power = 1 << (tokens.bit_length() - 1)
    three_halves = power + power // 2
    return three_halves if power >= 2 and three_halves <= tokens else power


@dataclass(frozen=True)
class ModelFit:
    """Whether a model's weights plus a KV cache for `context_tokens` fit the model budget."""

    model: str
    weights_mb: float
    context_tokens: int
    kv_cache_mb: float
    required_mb: float
    limit_mb: float
    fits: bool

    @property
    def headroom_fraction(self) -> float:
        """Share of the limit left after loading; negative when it does not fit."""
        return 1.0 - self.required_mb / self.limit_mb if self.limit_mb > 0 else -math.inf

    @property
    def comfortable(self) -> bool:
        """At least 20% headroom, the margin fit tools call comfortable."""
        return self.fits and self.headroom_fraction >= 0.20


class DeviceMemoryManager:
    """Memory boundaries for a model on this machine, and the watermark monitor.

    From one profile snapshot (`refresh()` takes a new one):
    - usable = min(available, total - OS reservation of a simulated device);
    - `safety_margin` = 10% of total memory, at least 64 MB and at most 2048 MB, never more
      than usable;
    - `model_memory_limit` = usable - safety margin: weights plus KV cache must fit in it;
    - `kv_cache_budget` = `kv_cache_fraction` (default 25%) of the limit: the KV cache
      `get_optimal_context_size` aims for, so the rest of the program keeps room.
    """

    def __init__(
        self,
        profiler: DeviceMemoryProfiler | None = None,
        config: WatermarkConfig | None = None,
        *,
        kv_cache_fraction: float = 0.25,
        kv_bytes_per_element: float = 2.0,
    ) -> None:
        self.profiler = profiler if profiler is not None else DeviceMemoryProfiler()
        self.config = config if config is not None else WatermarkConfig()
        self.kv_cache_fraction = _check_number(
            "kv_cache_fraction", kv_cache_fraction, 0.0, 1.0, "a fraction in 0..1"
        )
        self.kv_bytes_per_element = _check_number(
            "kv_bytes_per_element", kv_bytes_per_element, 0.125, 8.0, "in 0.125..8 bytes"
        )
        self.monitor = WatermarkMonitor(self.config, self.profiler.used_fraction)
        self.refresh()

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

    # -- fit ----------------------------------------------------------------------------------

    def kv_cache_mb(self, context_tokens: int, model: str | ModelShape | None = None) -> float:
        """KV cache size for `context_tokens` tokens of `model` (default shape if unknown)."""
        if isinstance(context_tokens, bool) or not isinstance(context_tokens, int):
            raise ValueError(f"context_tokens must be an integer >= 0, got {context_tokens!r}")
        if context_tokens < 0:
            raise ValueError(f"context_tokens must be an integer >= 0, got {context_tokens!r}")
        shape = resolve_model_shape(model)
        return context_tokens * shape.kv_bytes_per_token(self.kv_bytes_per_element) / MIB

    def check_fit(
        self,
        model_size_mb: float,
        model: str | ModelShape | None = None,
        context_tokens: int = MIN_USEFUL_CONTEXT,
    ) -> ModelFit:
        """Weights plus the KV cache for `context_tokens` against `model_memory_limit`."""
        weights = _check_number(
            "model_size_mb", model_size_mb, 0.0, math.inf, "a finite number >= 0 MB"
        )
        if math.isinf(weights):
            raise ValueError(f"model_size_mb must be a finite number >= 0 MB, got {weights!r}")
        kv = self.kv_cache_mb(context_tokens, model)
        required = weights + kv
        return ModelFit(
            model=resolve_model_shape(model).name,
            weights_mb=weights,
            context_tokens=context_tokens,
            kv_cache_mb=kv,
            required_mb=required,
            limit_mb=self.model_memory_limit,
            fits=required <= self.model_memory_limit,
        )

    def can_load_model(self, model_size_mb: float, model: str | ModelShape | None = None) -> bool:
        """True if the weights plus a KV cache of `MIN_USEFUL_CONTEXT` tokens fit."""
        return self.check_fit(model_size_mb, model).fits

    def get_optimal_context_size(
        self, model_size_mb: float, model: str | ModelShape | None = None
    ) -> int:
        """The largest kernel-friendly context whose KV cache fits, or 0 if the model does not.

        The KV cache may use the larger of `kv_cache_budget` and the minimum useful context,
        but never more than is left of the limit after the weights; the result is clamped to
        the model's maximum context.
        """
        shape = resolve_model_shape(model)
        fit = self.check_fit(model_size_mb, shape)
        if not fit.fits:
            return 0
        room_mb = min(
            max(self.kv_cache_budget, fit.kv_cache_mb), self.model_memory_limit - fit.weights_mb
        )
        tokens = int(room_mb * MIB // shape.kv_bytes_per_token(self.kv_bytes_per_element))
        if tokens >= shape.max_context:
            return shape.max_context
        return friendly_context_size(tokens)

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
    print(f"KV cache budget:    {manager.kv_cache_budget:.1f} MB")
    manager.on_level_change(
        lambda old, new, usage: print(f"Watermark: {old.name} -> {new.name} at {usage:.1%}")
    )
    level = manager.check_watermark()
    print(f"Watermark level now: {level.name}")
    print("\nModel fit (Q4_K_M weights, fp16 KV cache):")
    # Weight sizes: parameters x ~4.9 bits (Q4_K_M), an estimate.
    for name, params_b in (("Qwen2.5-0.5B", 0.49), ("Llama-3.2-1B", 1.24), ("Llama-3.2-3B", 3.21)):
        weights = params_b * 1e9 * 4.9 / 8 / MIB
        fit = manager.check_fit(weights, name)
        context = manager.get_optimal_context_size(weights, name)
        mark = "fits" if fit.fits else "does not fit"
        print(f"  {name:14s} ~{weights:6.0f} MB weights: {mark}, {context} tokens context")


if __name__ == "__main__":
    _demo()
