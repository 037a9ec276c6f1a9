"""`FaultPlan`: faults as plain data, so a failing plan can be printed, saved and replayed.

The data form (dict, JSON or TOML) is a list of faults, each a table with ``kind`` (the
`FaultInjector` method) and that method's options; options left at their default are omitted
(never null). Exceptions are ``{type = "OSError", args = [5, "Input/output error"]}``: `type`
names an exception class from an allow-list (the built-in exceptions, a few standard-library
ones, and classes added with `register_exception`); nothing is ever evaluated. ``times`` without
a limit is written ``times = "unlimited"``, as TOML has no null::

    [[faults]]
    kind = "fail"
    target = "os.fsync"
    exc = { type = "OSError", args = [5, "Input/output error"] }
    nth = 2
"""

from __future__ import annotations

import builtins
import inspect
import json
import math
import os
import socket
import sqlite3
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.injector import FaultInjector
from pytest_edge.faults.kinds import FAULT_KINDS

UNLIMITED = "unlimited"

_exceptions_lock = threading.Lock()
_EXCEPTIONS: dict[str, type[BaseException]] = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}
for _cls in (
    sqlite3.Error,
    sqlite3.DatabaseError,
    sqlite3.OperationalError,
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    socket.gaierror,
    socket.herror,
):
    _EXCEPTIONS[f"{_cls.__module__}.{_cls.__qualname__}"] = _cls


def exception_name(cls: type[BaseException]) -> str:
    """The name a class is stored under in a plan."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def register_exception(cls: type[BaseException]) -> type[BaseException]:
    """Allow plans to name `cls` (usable as a class decorator); returns `cls`."""
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise TypeError(f"register_exception({cls!r}): expected an exception class")
    with _exceptions_lock:
        _EXCEPTIONS[exception_name(cls)] = cls
    return cls


def exception_to_data(exc: BaseException | type[BaseException], where: str) -> dict[str, Any]:
    cls = exc if isinstance(exc, type) else type(exc)
    args = [] if isinstance(exc, type) else list(exc.args)
    name = exception_name(cls)
    if _EXCEPTIONS.get(name) is not cls:
        raise FaultArgumentError(
            f"{where}: exception class {name!r} is not allowed in a plan; "
            "register it with pytest_edge.faults.register_exception"
        )
    for arg in args:
        if not _is_scalar(arg):
            raise FaultArgumentError(
                f"{where}: {name} argument {arg!r} is not plain data "
                "(allowed: str, int, float, bool)"
            )
    return {"type": name, "args": args}


def exception_from_data(data: object, where: str) -> BaseException:
    if not isinstance(data, Mapping) or set(data) - {"type", "args"} or "type" not in data:
        raise FaultArgumentError(
            f'{where}: expected a table {{type = "OSError", args = [...]}}, got {data!r}'
        )
    name = data["type"]
    with _exceptions_lock:
        cls = _EXCEPTIONS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise FaultArgumentError(
            f"{where}.type={name!r}: not an allowed exception class; use a built-in exception "
            "name (e.g. 'OSError', 'TimeoutError'), 'sqlite3.OperationalError', or register "
            "your own with pytest_edge.faults.register_exception"
        )
    args = data.get("args", [])
    if not isinstance(args, list) or not all(_is_scalar(a) for a in args):
        raise FaultArgumentError(f"{where}.args={args!r}: expected a list of str/int/float/bool")
    return cls(*args)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _parameters(kind: str) -> dict[str, inspect.Parameter]:
    method = getattr(FaultInjector, kind)
    params = dict(inspect.signature(method).parameters)
    params.pop("self")
    return params


_STR = ("path", "db_path", "target", "on", "error", "deny", "table", "host")
_INT = ("free_bytes", "nth", "every", "extra_pages", "port")
_NUMBER = ("probability", "seconds", "busy_timeout", "mb")


def _check_value(name: str, value: object, where: str) -> None:
    ok = True
    if name in _STR:
        ok = isinstance(value, str)
    elif name in _INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif name in _NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif name == "times":
        ok = value == UNLIMITED or (isinstance(value, int) and not isinstance(value, bool))
    elif name == "hold":
        ok = isinstance(value, bool)
    elif name == "window":
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        )
    if not ok:
        raise FaultArgumentError(f"{where}.{name}={value!r}: wrong type for {name!r}")


def _normalise(kind: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The data form of one fault's options (checked names and types, defaults dropped)."""
    if kind not in FAULT_KINDS:
        raise FaultArgumentError(
            f"{where}.kind={kind!r}: unknown fault kind; use one of {', '.join(FAULT_KINDS)}"
        )
    params = _parameters(kind)
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in params:
            raise FaultArgumentError(
                f"{where}: {kind} has no option {name!r}; options: {', '.join(params)}"
            )
        if value is None and name == "times":
            value = UNLIMITED
        if value is None or (value == params[name].default and name != "times"):
            continue
        if name == "times" and value == 1:
            continue
        if name == "exc":
            if not isinstance(value, Mapping):
                value = exception_to_data(value, f"{where}.exc")
            else:
                exception_from_data(value, f"{where}.exc")  # validate
                value = {"type": value["type"], "args": list(value.get("args", []))}
        else:
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            if isinstance(value, tuple):
                value = list(value)
            _check_value(name, value, where)
        out[name] = value
    missing = [
        n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in out
    ]
    if missing:
        raise FaultArgumentError(f"{where}: {kind} needs option {missing[0]!r}")
    return out


@dataclass(frozen=True, eq=False)
class FaultSpec:
    """One fault as data: `kind` and its options in data form (see the module docstring)."""

    kind: str
    options: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _normalise(self.kind, self.options, "fault"))

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for the `FaultInjector` method named by `kind`."""
        args: dict[str, Any] = {}
        for name, value in self.options.items():
            if name == "exc":
                value = exception_from_data(value, "fault.exc")
            elif name == "window":
                value = tuple(value)
            elif name == "times" and value == UNLIMITED:
                value = None
            args[name] = value
        return args

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **json.loads(json.dumps(dict(self.options)))}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


@dataclass(frozen=True, eq=False)
class FaultPlan:
    """An ordered list of faults; compares equal to any plan with the same data form."""

    faults: tuple[FaultSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(self.faults))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultPlan) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __len__(self) -> int:
        return len(self.faults)

    def __repr__(self) -> str:
        return f"FaultPlan({[f.to_dict() for f in self.faults]!r})"

    # -- dict / JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"faults": [spec.to_dict() for spec in self.faults]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "plan") -> FaultPlan:
        """Build a plan from its data form; errors name `source` and the fault's index."""
        if not isinstance(data, Mapping) or set(data) - {"faults"}:
            extra = sorted(set(data) - {"faults"}) if isinstance(data, Mapping) else data
            raise FaultArgumentError(f"{source}: unexpected {extra!r}; a plan has only 'faults'")
        faults = data.get("faults", [])
        if not isinstance(faults, list):
            raise FaultArgumentError(f"{source}.faults: expected a list of tables")
        specs = []
        for i, item in enumerate(faults):
            where = f"{source}.faults[{i}]"
            if not isinstance(item, Mapping) or "kind" not in item:
                raise FaultArgumentError(f"{where}: expected a table with a 'kind'")
            options = {k: v for k, v in item.items() if k != "kind"}
            kind = item["kind"]
            try:
                specs.append(FaultSpec(kind, options))
            except FaultArgumentError as exc:
                raise FaultArgumentError(str(exc).replace("fault", where, 1)) from None
        return cls(tuple(specs))

    # -- TOML ----------------------------------------------------------------------------------

    def to_toml(self) -> str:
        chunks = []
        for spec in self.faults:
            lines = ["[[faults]]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in spec.to_dict().items()]
            chunks.append("\n".join(lines) + "\n")
        return "\n".join(chunks) if chunks else "faults = []\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "plan") -> FaultPlan:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FaultArgumentError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source)


# A writer for the plan's flat schema: strings, numbers, booleans, lists and inline tables.
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)  # "inf", "-inf" and repr's exponents are valid TOML
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")
