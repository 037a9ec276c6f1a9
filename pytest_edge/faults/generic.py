"""Generic faults on any importable callable: raise an exception or add latency.

Patched where the name is looked up, as `unittest.mock.patch` does. On a coroutine function the
exception is raised inside the coroutine and the delay is an ``asyncio.sleep``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from pytest_edge.faults.events import EventSink
from pytest_edge.faults.patching import caller_location
from pytest_edge.faults.schedule import Counter

ExceptionLike = BaseException | type[BaseException]


def fresh_exception(exc: ExceptionLike, note: str) -> BaseException:
    """A new exception to raise: a copy of the instance (so tracebacks do not pile up)."""
    if isinstance(exc, type):
        made = exc()
    else:
        try:
            made = copy.copy(exc)
        except Exception:  # exceptions whose __init__ cannot be replayed: raise the original
            made = exc
        made.__traceback__ = None
    made.add_note(note)
    return made


class CallFault:
    """A hook that raises `exc` or sleeps `seconds` on the calls its counter picks."""

    def __init__(
        self,
        kind: str,
        counter: Counter,
        log: EventSink,
        *,
        target: str,
        exc: ExceptionLike | None = None,
        seconds: float = 0.0,
    ) -> None:
        self.kind = kind
        self.target = target
        self.counter = counter
        self.log = log
        self.exc = exc
        self.seconds = seconds

    def _effect(self) -> str:
        if self.exc is not None:
            return f"raised {self.exc!r}"
        return f"delayed {self.seconds:g} s"

    def _fire(self, call: int) -> tuple[int, BaseException | None]:
        self.log.record(self.kind, self.target, call, caller_location(), self._effect())
        if self.exc is None:
            return call, None
        note = f"injected by pytest-edge: {self.kind}({self.target!r}) on call #{call}"
        return call, fresh_exception(self.exc, note)

    def __call__(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = self.counter.tick()
        if not call:
            return proceed(*args, **kwargs)
        call, error = self._fire(call)
        if error is not None:
            raise error
        if self.seconds:
            time.sleep(self.seconds)
        return proceed(*args, **kwargs)

    async def before_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        call = self.counter.tick()
        if not call:
            return
        call, error = self._fire(call)
        if error is not None:
            raise error
        if self.seconds:
            import asyncio  # only coroutine targets need it; keeps importing this module cheap

            await asyncio.sleep(self.seconds)
