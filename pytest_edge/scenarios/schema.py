"""The scenario file format: TOML with a ``[scenario]`` table, checked key by key.

A scenario names a workload (a function of the user's), the device it is meant for, the
faults to arm, how to crash it, and what must hold afterwards. Every error names the file,
the key and what is allowed, so a typo never silently turns a check off.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pytest_edge import callables
from pytest_edge.errors import EdgeWarning
from pytest_edge.schema import (
    MAX_SECONDS,
    SECONDS_NOTE,
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


#: How much of a ``.toml`` file is read to tell whether it is a scenario: the ``[scenario]``
#: header is near the top, and a data file of hundreds of MB must cost no more than this.
SNIFF_BYTES = 64 * 1024
#: A scenario file larger than this is not collected unless it is under a configured
#: scenario path (`edge_scenario_paths`): it is a data file with a ``[scenario]`` table.
MAX_SCENARIO_BYTES = 1 << 20

_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*([^\]\n#]+?)[ \t]*\]", re.MULTILINE)
_DOTTED = re.compile(r"^[ \t]*scenario[ \t]*[.=]", re.MULTILINE)


class ScenarioFileWarning(EdgeWarning):
    """A ``.toml`` file that looks meant as a scenario but is not collected: why, and the fix."""


@dataclass(frozen=True)
class Sniff:
    """What the first `SNIFF_BYTES` of a TOML file say, without parsing it."""

    scenario: bool  # a [scenario] table (or scenario.key / scenario = {...}) is there
    near: str | None  # a table name that looks like a misspelled "scenario"
    size: int
    line: int = 1  # where `near` is (1-based), for the warning's location


def sniff_toml(path: Path) -> Sniff:
    """Look for a ``[scenario]`` header in the first `SNIFF_BYTES` only (cheap for any size)."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return Sniff(False, None, 0)
    headers = [(m.group(1).strip(), m.start()) for m in _HEADER.finditer(head)]
    if any(name == "scenario" for name, _ in headers) or _DOTTED.search(head):
        return Sniff(True, None, size)
    for name, start in headers:
        if _looks_like_scenario(name):
            return Sniff(False, name, size, head.count("\n", 0, start) + 1)
    return Sniff(False, None, size)


def _looks_like_scenario(name: str) -> bool:
    first = name.split(".")[0].strip().strip("\"'")
    return first.lower() == "scenario" or bool(
        difflib.get_close_matches(first.lower(), ["scenario"], n=1, cutoff=0.8)
    )


def is_scenario_file(path: Path) -> bool:
    """True for a ``.toml`` file of at most `MAX_SCENARIO_BYTES` with a ``[scenario]`` table
    in its first `SNIFF_BYTES`; other TOML files (data, config) are never parsed."""
    if path.suffix != ".toml":
        return False
    sniff = sniff_toml(path)
    return sniff.scenario and sniff.size <= MAX_SCENARIO_BYTES


def skipped_reason(path: Path, sniff: Sniff) -> str | None:
    """Why a ``.toml`` file that looks meant as a scenario is not collected, or None."""
    if sniff.scenario and sniff.size > MAX_SCENARIO_BYTES:
        return (
            f"{path}: has a [scenario] table but is {sniff.size / (1 << 20):.1f} MB, over the "
            f"{MAX_SCENARIO_BYTES >> 20} MB a scenario file may have; not collected (add its "
            "directory to the edge_scenario_paths ini key to collect it)"
        )
    if not sniff.scenario and sniff.near is not None:
        return (
            f"{path}: table [{sniff.near}] looks like a misspelled [scenario] (did you mean "
            "[scenario]?); the file is not collected as a scenario"
        )
    return None


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
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise ScenarioError(
            f"{path}: not UTF-8 text (byte 0x{bad} at offset {exc.start}); TOML files are UTF-8"
        ) from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
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


def _kill_point(crash: CrashSpec) -> None:
    """Check ``[crash] kill`` now (the harness reads it only after the measured run)."""
    from pytest_edge.crash.harness import KillSpec  # only scenarios with [crash] pay for it
    from pytest_edge.errors import EdgeInputError

    try:
        spec = KillSpec.parse(crash.kill)
    except EdgeInputError as exc:
        rule = str(exc).removeprefix(f"kill={crash.kill!r}").lstrip(": ")
        raise ScenarioError(rule, "crash.kill", crash.kill) from None
    if spec.kind == "time" and spec.seconds > MAX_SECONDS:
        raise ScenarioError(
            f"SECONDS in 'random-time:SECONDS' must be at most {MAX_SECONDS} ({SECONDS_NOTE})",
            "crash.kill",
            crash.kill,
        )


def _build(path: Path, data: Mapping[str, Any]) -> Scenario:
    check_keys(data, _TOP_LEVEL)
    if "scenario" not in data:
        raise ScenarioError(
            "is required: a scenario file has a [scenario] table with workload = 'module:function'",
            "scenario",
        )
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
        from pytest_edge.faults.patching import resolve_target
        from pytest_edge.faults.plan import FaultPlan  # only scenarios with faults pay for it

        FaultPlan.from_dict({"faults": faults}, source="")
        for i, fault in enumerate(faults):
            if "target" in fault:  # imported now, as workload is: a typo fails at collection
                resolve_target(fault["target"], f"faults[{i}].target")

    crash = CrashSpec.from_data(data["crash"], "crash") if "crash" in data else None
    if crash is not None:
        _kill_point(crash)
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
