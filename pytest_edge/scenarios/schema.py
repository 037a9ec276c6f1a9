"""The scenario file format: TOML with a ``[scenario]`` table, checked key by key.

A scenario names a workload (a function of the user's), the device it is meant for, the
faults to arm, how to crash it, and what must hold afterwards. Every error names the file,
the key and what is allowed, so a typo never silently turns a check off.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_edge import callables
from pytest_edge.errors import EdgeInputError

CRASH_MODES = ("kill", "power-loss")
DEFAULT_TIMEOUT_S = 120.0


class ScenarioError(EdgeInputError):
    """A scenario file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Throughput:
    """A rate floor such as ``{ value = 200, unit = "docs/s" }``."""

    value: float
    unit: str


@dataclass(frozen=True)
class CrashSpec:
    cycles: int = 20
    mode: str = "kill"
    kill: str = "random"


@dataclass(frozen=True)
class Expectations:
    lost_acked_writes: int | None = None
    max_peak_memory_mb: float | None = None
    min_throughput: Throughput | None = None
    max_error_rate: float | None = None
    check: str | None = None  # "module:function" called with the outcome


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


class _Table:
    """Reads one TOML table, remembering which keys were used so leftovers are errors."""

    def __init__(self, path: Path, name: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: [{name}] must be a table, got {_type(data)}")
        self.path, self.name, self.data = path, name, data
        self._allowed: list[str] = []

    def _error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}: [{self.name}] {key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        self._allowed.append(key)
        if key not in self.data:
            if required:
                raise self._error(key, "is required")
            return None
        value = self.data[key]
        # TOML integers are acceptable where a float is expected; booleans never are numbers.
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self._error(key, f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self._error(key, f"expected {_names(kinds)}, got {_type(value)} {value!r}")
        return value

    def number(self, key: str, *, minimum: float, maximum: float = math.inf) -> float | None:
        value = self.get(key, float)
        if value is not None and not (minimum <= value <= maximum and math.isfinite(value)):
            bound = f"from {minimum:g} to {maximum:g}" if maximum < math.inf else f">= {minimum:g}"
            raise self._error(key, f"{value!r} is out of range; allowed: {bound}")
        return value  # type: ignore[no-any-return]

    def integer(self, key: str, *, minimum: int) -> int | None:
        value = self.get(key, int)
        if value is not None and value < minimum:
            raise self._error(key, f"{value!r} is out of range; allowed: >= {minimum}")
        return value  # type: ignore[no-any-return]

    def callable_ref(self, key: str, *, required: bool = False) -> str | None:
        ref = self.get(key, str, required=required)
        if ref is not None:
            try:
                resolve_callable(ref)
            except ScenarioError as exc:
                raise self._error(key, str(exc)) from None
        return ref  # type: ignore[no-any-return]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - set(self._allowed))
        if unknown:
            raise self._error(
                unknown[0], f"unknown key; allowed keys: {', '.join(sorted(self._allowed))}"
            )


def resolve_callable(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``; a ScenarioError says what could not be found."""
    try:
        return callables.resolve_callable(ref)
    except callables.NameLookupError as exc:
        raise ScenarioError(str(exc)) from None


_TOP_LEVEL = ("scenario", "params", "faults", "crash", "expect")


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise ScenarioError(
            f"{path}: unknown table or key {unknown[0]!r}; allowed: {', '.join(_TOP_LEVEL)}"
        )
    head = _Table(path, "scenario", data.get("scenario"))
    name = head.get("name", str) or path.stem
    description = head.get("description", str) or ""
    profile = head.get("profile", str)
    workload = head.callable_ref("workload", required=True)
    recover = head.callable_ref("recover")
    setup = head.callable_ref("setup")
    timeout = head.number("timeout", minimum=0.001) or DEFAULT_TIMEOUT_S
    head.finish()

    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ScenarioError(f"{path}: [params] must be a table, got {_type(params)}")

    faults = data.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
        raise ScenarioError(f"{path}: faults must be written as [[faults]] tables")
    for index, fault in enumerate(faults):
        if not isinstance(fault.get("kind"), str):
            raise ScenarioError(f"{path}: [[faults]] #{index + 1}: 'kind' (a string) is required")
    if faults:
        from pytest_edge.faults import FaultArgumentError, FaultPlan

        try:
            FaultPlan.from_dict({"faults": faults}, source="plan")
        except FaultArgumentError as exc:
            raise ScenarioError(f"{path}: [[faults]]: {exc}") from None

    crash = None
    if "crash" in data:
        table = _Table(path, "crash", data["crash"])
        defaults = CrashSpec()
        mode = table.get("mode", str) or defaults.mode
        if mode not in CRASH_MODES:
            raise table._error(
                "mode", f"{mode!r} is not allowed; allowed: {', '.join(CRASH_MODES)}"
            )
        crash = CrashSpec(
            cycles=table.integer("cycles", minimum=1) or defaults.cycles,
            mode=mode,
            kill=table.get("kill", str) or defaults.kill,
        )
        table.finish()
        if recover is None:
            raise ScenarioError(f"{path}: [crash] needs [scenario] recover = 'module:function'")

    expect = Expectations()
    if "expect" in data:
        table = _Table(path, "expect", data["expect"])
        floor = table.get("min_throughput", dict)
        throughput = None
        if floor is not None:
            rate = _Table(path, "expect.min_throughput", floor)
            value = rate.number("value", minimum=0.0)
            unit = rate.get("unit", str, required=True)
            rate.finish()
            if value is None:
                raise rate._error("value", "is required")
            throughput = Throughput(value, unit)
        expect = Expectations(
            lost_acked_writes=table.integer("lost_acked_writes", minimum=0),
            max_peak_memory_mb=table.number("max_peak_memory_mb", minimum=0.0),
            min_throughput=throughput,
            max_error_rate=table.number("max_error_rate", minimum=0.0, maximum=1.0),
            check=table.callable_ref("check"),
        )
        table.finish()
        if expect.lost_acked_writes is not None and crash is None:
            raise table._error("lost_acked_writes", "needs a [crash] table to count crashes")

    return Scenario(
        path=path,
        name=name,
        description=description,
        workload=workload,  # type: ignore[arg-type]
        profile=profile,
        recover=recover,
        setup=setup,
        timeout=timeout,
        params=params,
        faults=tuple(faults),
        crash=crash,
        expect=expect,
    )


_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "a table",
    list: "an array",
    bool: "a boolean",
}


def _type(value: object) -> str:
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds)
