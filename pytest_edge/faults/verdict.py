"""Whether each armed fault fired: the verdict, its wording, and its data form.

A fault armed for a test that never fired proves nothing about that test: the code never
reached it (a handle opened before arming, a reference bound at import, C code doing its own
I/O at the Python layer, a path that does not match) or its schedule never picked a call. The
verdict says which, with the numbers: calls that reached the fault, times it fired, the layer
that observed the I/O, and, for a fault that may legitimately not fire (``probability``,
``window``, an ``nth`` past the calls made), why.

Plain data, so it travels from xdist workers to the controller in ``user_properties``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from pytest_edge.errors import EdgeWarning
from pytest_edge.settings import one_of

#: Fault kinds that are in effect while armed rather than firing at calls.
ALWAYS_IN_EFFECT = frozenset({"memory_pressure"})
#: Filesystem fault kinds: the ones the syscall layer can take over.
FS_KINDS = frozenset({"disk_full", "io_error", "read_only", "slow_io"})
#: Values of ``--edge-unfired-faults``.
UNFIRED_MODES = ("warn", "error", "ignore")

PYTHON_LAYER_MISSES = (
    "at the python layer, I/O through a file opened before arming, a reference bound at "
    "import (from os import write) or C code (sqlite3, C extensions) does not reach it; the "
    "syscall layer does (pytest-edge run -- pytest ...)"
)


class UnfiredFaultWarning(EdgeWarning, pytest.PytestWarning):
    """A fault armed for a test never fired: the test did not exercise it."""


@dataclass(frozen=True)
class FaultVerdict:
    """One armed fault's outcome: `calls` that reached it and how many times it `fired`.

    `layer` is ``"python"`` or ``"syscall"``; `schedule` its options that pick calls (nth,
    probability, ...) as written; `maybe` why it may legitimately not fire (empty when a
    fault that never fired is plainly a test that missed it).
    """

    index: int
    kind: str
    target: str
    layer: str
    calls: int
    fired: int
    described: str
    maybe: str = ""
    test: str = ""

    @property
    def in_effect(self) -> bool:
        """A state-like fault (memory pressure) counts as fired while it is armed."""
        return self.kind in ALWAYS_IN_EFFECT

    @property
    def never_fired(self) -> bool:
        return not self.in_effect and self.fired == 0

    def line(self) -> str:
        """``#1 disk_full(path='/x', ...) [syscall layer]: 3 calls reached it, fired 1 time``."""
        if self.in_effect:
            outcome = "in effect while armed"
        else:
            outcome = (
                f"{_count(self.calls, 'call')} reached it, "
                f"fired {_count(self.fired, 'time') if self.fired else 'never'}"
            )
        return f"{self.described} [{self.layer} layer]: {outcome}"

    def message(self) -> str:
        """The warning / error text for a fault that never fired."""
        text = (
            f"{self.test + ': ' if self.test else ''}fault {self.described} on "
            f"{self.target!r} never fired: {_count(self.calls, 'call')} reached it "
            f"({self.layer} layer)"
        )
        if self.maybe:
            text += f"; it may legitimately not fire: {self.maybe}"
        elif self.calls == 0 and self.layer == "python" and self.kind in FS_KINDS:
            text += f"; {PYTHON_LAYER_MISSES}"
        elif self.calls == 0:
            text += "; the test never reached it: check the path/target it was armed on"
        return text

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> FaultVerdict:
        return cls(
            index=int(data["index"]),
            kind=str(data["kind"]),
            target=str(data["target"]),
            layer=str(data["layer"]),
            calls=int(data["calls"]),
            fired=int(data["fired"]),
            described=str(data["described"]),
            maybe=str(data.get("maybe", "")),
            test=str(data.get("test", "")),
        )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def may_not_fire(options: Mapping[str, Any], calls: int, fired: int) -> str:
    """Why a fault with these schedule options may legitimately not have fired; "" if none.

    `options` are the fault's options as armed (Python form); `calls` those that reached it.
    """
    if fired:
        return ""
    reasons: list[str] = []
    nth = options.get("nth")
    every = options.get("every")
    first = nth if nth is not None else every if every is not None else 1
    if (nth is not None or every is not None) and calls < first:
        reasons.append(
            f"its schedule picks call #{first} first and only {_count(calls, 'call')} came"
        )
    probability = options.get("probability")
    if probability is not None and calls >= first:
        eligible = _eligible(calls, first, every)
        chance = (1.0 - float(probability)) ** eligible
        reasons.append(
            f"probability={probability:g} over {_count(eligible, 'eligible call')}: it never "
            f"fires with a chance of {chance:.0%} (seeded: the same seed replays it)"
        )
    window = options.get("window")
    if window is not None:
        reasons.append(f"window={tuple(window)!r}: only calls in that span after arming can fire")
    return "; ".join(reasons)


def _eligible(calls: int, first: int, every: int | None) -> int:
    if calls < first:
        return 0
    return calls - first + 1 if every is None else (calls - first) // every + 1


def parse_unfired_mode(text: str) -> str:
    """``--edge-unfired-faults`` value: warn, error or ignore."""
    return one_of("--edge-unfired-faults", text, UNFIRED_MODES)
