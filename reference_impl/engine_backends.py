"""Generate backends for `ThreadSafeEngine`: the protocols and a labelled stand-in model.

`DeviceRateBackend` is not a model: it returns deterministic made-up words at a modelled
device token rate, so the engine can be exercised, measured and demonstrated without one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol


class GenerateBackend(Protocol):
    """Produces the completion of `prompt`, at most `max_tokens` tokens. May raise."""

    def generate(self, prompt: str, max_tokens: int) -> str: ...


class StreamingBackend(GenerateBackend, Protocol):
    """A backend that can also yield its completion chunk by chunk (tokens, or words).

    Joined, the chunks are what `generate` returns. The engine stops a stream between chunks
    (cancel, deadline) by closing the iterator, so a generator's ``finally`` runs.
    """

    def stream(self, prompt: str, max_tokens: int) -> Iterator[str]: ...


_STAND_IN_WORDS = (
    "model device memory token context latency quantized weights cache batch core thread "
    "inference edge local response request queue worker throughput budget layer attention "
    "embedding vector search summary prompt energy thermal"
)
_STAND_IN_VOCABULARY = _STAND_IN_WORDS.split()


class DeviceRateBackend:
    """A deterministic stand-in for a language model, not a model: it returns the same
    made-up words for the same prompt and emits them at a modelled device token rate.

    Each request yields ``min(max_tokens, reply_tokens)`` tokens. Token ``i`` of a stream is
    released no earlier than ``start + i / tokens_per_second`` on `clock`: this is real waiting
    that models a device's decode rate, not work. With `device_tokens_per_second` set, all
    streams also share that aggregate rate (one accelerator serving every worker), which is
    what a single model on a single device does; unset, streams are independent (one model
    instance per worker). The default rate of 400 tokens/s is chosen to keep demos quick and
    is not a device figure: pass a measured rate to model a device (e.g.
    ``tokens_per_second=4.6`` for llama3.2:3b Q4 on a Raspberry Pi 5 as reported in the
    project's edge-facts notes).
    """

    def __init__(
        self,
        tokens_per_second: float | None = 400.0,
        *,
        reply_tokens: int = 48,
        device_tokens_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, rate in (
            ("tokens_per_second", tokens_per_second),
            ("device_tokens_per_second", device_tokens_per_second),
        ):
            if rate is not None and not rate > 0:
                raise ValueError(f"DeviceRateBackend {name} must be > 0 or None, got {rate!r}")
        if reply_tokens < 1:
            raise ValueError(f"DeviceRateBackend reply_tokens must be >= 1, got {reply_tokens}")
        self.tokens_per_second = tokens_per_second
        self.device_tokens_per_second = device_tokens_per_second
        self.reply_tokens = reply_tokens
        self._clock = clock
        self._sleep = sleep
        self._device_lock = threading.Lock()
        self._device_free_at = 0.0

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            self._sleep(delay)

    def _device_slot(self) -> float:
        """Reserve the next free slot on the shared device clock."""
        assert self.device_tokens_per_second is not None
        with self._device_lock:
            slot = max(self._clock(), self._device_free_at)
            self._device_free_at = slot + 1.0 / self.device_tokens_per_second
        return slot

    def stream(self, prompt: str, max_tokens: int) -> Iterator[str]:
        """The reply chunk by chunk, each token released at the modelled rate: the first chunk
        is the ``[stand-in reply to ...]`` label with the first word, then `` word`` each."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        return self._tokens(prompt, min(max_tokens, self.reply_tokens))

    def _tokens(self, prompt: str, count: int) -> Iterator[str]:
        digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=64).digest()
        start = self._clock()
        for i in range(count):
            if self.tokens_per_second is not None:
                self._wait_until(start + (i + 1) / self.tokens_per_second)
            if self.device_tokens_per_second is not None:
                self._wait_until(self._device_slot())
            word = _STAND_IN_VOCABULARY[digest[i % len(digest)] % len(_STAND_IN_VOCABULARY)]
            yield f"[stand-in reply to {prompt!r}] {word}" if i == 0 else f" {word}"

    def generate(self, prompt: str, max_tokens: int) -> str:
        return "".join(self.stream(prompt, max_tokens))
