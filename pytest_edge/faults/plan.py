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

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_edge.faults.declarations import FaultArgs, fault_args
from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.exceptions import (
    exception_from_data,
    exception_name,
    exception_to_data,
    register_exception,
)
from pytest_edge.faults.kinds import UNLIMITED
from pytest_edge.schema import Invalid, did_you_mean, join

__all__ = [
    "UNLIMITED",
    "FaultPlan",
    "FaultSpec",
    "exception_from_data",
    "exception_name",
    "exception_to_data",
    "register_exception",
]


def _args(kind: object, options: Mapping[str, Any], where: str) -> FaultArgs:
    """The checked record of one fault; errors carry the key path under `where`."""
    try:
        record = fault_args(kind)
    except Invalid as exc:
        raise exc.within(where) from None
    return record.from_data(options, where, owner=record.kind)


@dataclass(frozen=True, eq=False)
class FaultSpec:
    """One fault as data: `kind` and its options in data form (see the module docstring).

    `options` may be given in Python form too (an exception object, ``times=None``); they are
    checked against the kind's declaration and stored in data form, defaults left out.
    """

    kind: str
    options: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _args(self.kind, self.options, "fault").to_data())

    @classmethod
    def parse(cls, kind: object, options: Mapping[str, Any], where: str) -> FaultSpec:
        """`FaultSpec(kind, options)` whose errors carry the key path under `where`."""
        spec = cls.__new__(cls)
        object.__setattr__(spec, "kind", kind)
        object.__setattr__(spec, "options", _args(kind, options, where).to_data())
        return spec

    def record(self) -> FaultArgs:
        """The fault's checked record (its options in Python form)."""
        return fault_args(self.kind).from_data(self.options, "fault")

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for the `FaultInjector` method named by `kind`."""
        return self.record().options()

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
            hint = did_you_mean(extra[0], ["faults"]) if isinstance(extra, list) else ""
            raise FaultArgumentError(
                f"unexpected {extra!r}{hint}; a plan has only 'faults'", source
            )
        faults = data.get("faults", [])
        if not isinstance(faults, list):
            raise FaultArgumentError("expected a list of tables", join(source, "faults"))
        specs = []
        for i, item in enumerate(faults):
            where = join(source, f"faults[{i}]")
            if not isinstance(item, Mapping) or "kind" not in item:
                raise FaultArgumentError("expected a table with a 'kind'", where)
            options = {k: v for k, v in item.items() if k != "kind"}
            specs.append(FaultSpec.parse(item["kind"], options, where))
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
            raise FaultArgumentError(f"not valid TOML: {exc}", source) from None
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
