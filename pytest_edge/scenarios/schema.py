"""The scenario file format: TOML with a ``[scenario]`` table, checked key by key.

A scenario names a workload (a function of the user's), the device it is meant for, the
faults to arm, how to crash it, and what must hold afterwards. Every error names the file,
the key and what is allowed, so a typo never silently turns a check off.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pytest_edge import callables
from pytest_edge.schema import (
    Choice,
    Declared,
    Invalid,
    Number,
    Opt,
    Optional,
    Record,
    Seconds,
    Text,
    Whole,
    check_keys,
    type_word,
)

CRASH_MODES = ("kill", "power-loss")
DEFAULT_TIMEOUT_S = 120.0
_REF = Optional(Text("'module:function'"))


class ScenarioError(Invalid):
    """A scenario file that cannot be used; the message names the file and the key path."""


class _Table(Declared):
    error_type: ClassVar[type[Invalid]] = ScenarioError


@dataclass(frozen=True)
class Throughput(_Table):
    """A rate floor such as ``{ value = 200, unit = "docs/s" }``."""

    value: Annotated[float, Opt(Number(0.0), "items per second")]
    unit: Annotated[str, Opt(Text("a unit such as 'docs/s'"), "the workload's unit")]


@dataclass(frozen=True)
class CrashSpec(_Table):
    """``[crash]``: how the workload is killed and how often."""

    cycles: Annotated[int, Opt(Whole(1), "kill/recover cycles")] = 20
    mode: Annotated[str, Opt(Choice(CRASH_MODES), "kill -9, or power loss")] = "kill"
    kill: Annotated[str, Opt(Text("a kill point such as 'random' or 'acks:3'"))] = "random"


@dataclass(frozen=True)
class Expectations(_Table):
    """``[expect]``: what must hold after the run."""

    lost_acked_writes: Annotated[int | None, Opt(Optional(Whole(0)))] = None
    max_peak_memory_mb: Annotated[float | None, Opt(Optional(Number(0.0)))] = None
    min_throughput: Annotated[Throughput | None, Opt(Optional(Record(Throughput)))] = None
    max_error_rate: Annotated[float | None, Opt(Optional(Number(0.0, 1.0, what="a number")))] = None
    check: Annotated[str | None, Opt(_REF, "called with the outcome")] = None


@dataclass(frozen=True)
class Head(_Table):
    """``[scenario]``: what runs, on which device, for how long."""

    workload: Annotated[str, Opt(Text("'module:function'"), "the function run")]
    name: Annotated[str | None, Opt(Optional(Text(empty=True)))] = None
    description: Annotated[str, Opt(Text(empty=True))] = ""
    profile: Annotated[str | None, Opt(Optional(Text("a device profile name")))] = None
    recover: Annotated[str | None, Opt(_REF, "run after each crash")] = None
    setup: Annotated[str | None, Opt(_REF, "run before the faults are armed")] = None
    timeout: Annotated[float, Opt(Seconds(0.001), "seconds")] = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Scenario:
    """One scenario file, validated."""

    path: Path
    name: str
    description: str
    workload: str
    profile: str | None = None
    recover: str | None = None
    setup: str | None = None  # "module:function" run before the faults are armed
    timeout: float = DEFAULT_TIMEOUT_S
    params: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[Mapping[str, Any], ...] = ()
    crash: CrashSpec | None = None
    expect: Expectations = field(default_factory=Expectations)


def is_scenario_file(path: Path) -> bool:
    """True for a TOML file with a ``[scenario]`` table; other TOML files are not scenarios."""
    if path.suffix != ".toml":
        return False
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        # A broken file that mentions [scenario] is still reported, by load_scenario.
        try:
            return "[scenario]" in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return isinstance(data.get("scenario"), dict)


def resolve_callable(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``; a ScenarioError says what could not be found."""
    try:
        return callables.resolve_callable(ref)
    except callables.NameLookupError as exc:
        raise ScenarioError(str(exc)) from None


_TOP_LEVEL = ("scenario", "params", "faults", "crash", "expect")


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file; a `ScenarioError` names the file and key path."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _build(path, data)
    except Invalid as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _resolved(table: str, key: str, ref: str | None) -> None:
    """Import a ``module:function`` reference now, so a typo fails at collection."""
    if ref is not None:
        try:
            callables.resolve_callable(ref)
        except callables.NameLookupError as exc:
            raise ScenarioError(str(exc), f"{table}.{key}", ref) from None


def _build(path: Path, data: Mapping[str, Any]) -> Scenario:
    check_keys(data, _TOP_LEVEL)
    head = Head.from_data(data.get("scenario"), "scenario")
    for key in ("workload", "recover", "setup"):
        _resolved("scenario", key, getattr(head, key))

    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ScenarioError(f"must be a table, got {type_word(params)}", "params")

    faults = data.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
        raise ScenarioError("must be written as [[faults]] tables", "faults")
    if faults:
        from pytest_edge.faults.plan import FaultPlan  # only scenarios with faults pay for it

        FaultPlan.from_dict({"faults": faults}, source="")

    crash = CrashSpec.from_data(data["crash"], "crash") if "crash" in data else None
    if crash is not None and head.recover is None:
        raise ScenarioError("[crash] needs [scenario] recover = 'module:function'", "crash")

    expect = Expectations.from_data(data.get("expect", {}), "expect")
    _resolved("expect", "check", expect.check)
    if expect.lost_acked_writes is not None and crash is None:
        raise ScenarioError("needs a [crash] table to count crashes", "expect.lost_acked_writes")

    return Scenario(
        path=path,
        name=head.name or path.stem,
        description=head.description,
        workload=head.workload,
        profile=head.profile,
        recover=head.recover,
        setup=head.setup,
        timeout=head.timeout,
        params=params,
        faults=tuple(faults),
        crash=crash,
        expect=expect,
    )
