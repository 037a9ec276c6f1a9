"""One small validator for pytest-edge's declared schemas (fault options, plans, scenario and
profile files).

A schema is data: a value type (`Text`, `Whole`, `Number`, `Flag`, `Choice`, ...) checks and
normalises one value and says what it allows; `check_keys` finds unknown keys (with "did you
mean") and missing ones. Errors are `Invalid`: the key path, the bad value and the rule, e.g.
``faults[0].nth=0: must be a whole number >= 1``; `Invalid.within` prefixes a path as an error
travels up (``plan.faults[0]``), so no caller rewrites message strings.

Why our own and not msgspec/pydantic/cattrs: the messages must name the value and what is
allowed and suggest the nearest key, which none of them does (msgspec: "Expected `int` >= 1 -
at `$.faults[0].nth`"); checking a three-fault plan takes ~70 us here (tomllib's parse of it
~80 us); and importing this module costs ~2 ms against ~40 ms (msgspec) to ~190 ms (pydantic,
with its first model) for a dependency every pytest start would pay.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, fields
from typing import Any, ClassVar, Final, Self, TypeGuard, get_type_hints

from pytest_edge.errors import EdgeInputError

_NO_VALUE: Any = object()


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float that is not a bool (``True`` is an int to Python, never to a schema)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_whole(value: object) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


class Invalid(EdgeInputError):
    """A value a schema does not allow: where (`key`), what (`value`), and the `rule`.

    Built with only a message (`rule`) it reads as that message.
    """

    def __init__(self, rule: str, key: str = "", value: object = _NO_VALUE) -> None:
        self.rule = rule
        self.key = key
        self.value = value
        super().__init__(self._text())

    def _text(self) -> str:
        if self.value is not _NO_VALUE:
            return f"{self.key}={self.value!r}: {self.rule}"
        return f"{self.key}: {self.rule}" if self.key else self.rule

    def within(self, prefix: str) -> Invalid:
        """The same error, its key path under `prefix` (``nth`` → ``plan.faults[0].nth``)."""
        if not prefix:
            return self
        key = join(prefix, self.key)
        made = type(self).__new__(type(self))
        Invalid.__init__(made, self.rule, key, self.value)
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.rule, self.key, self.value))


def _rebuild(cls: type[Invalid], rule: str, key: str, value: object) -> Invalid:
    made = cls.__new__(cls)
    Invalid.__init__(made, rule, key, value)
    return made


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """`` (did you mean 'path'?)`` for the nearest allowed name, or ``""``."""
    near = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def check_keys(
    data: Mapping[str, Any],
    allowed: Sequence[str],
    required: Iterable[str] = (),
    *,
    owner: str = "",
) -> None:
    """Raise `Invalid` for the first unknown key (nearest name suggested) or missing one.

    With `owner` (a fault kind) the words are "disk_full has no option 'x'" and "fail needs
    option 'exc'"; without, the error is keyed by the name ("x: unknown key", "x: is required").
    """
    for name in sorted(set(data) - set(allowed), key=str):
        hint = did_you_mean(str(name), allowed)
        if owner:
            raise Invalid(f"{owner} has no option {name!r}{hint}; allowed: {', '.join(allowed)}")
        raise Invalid(f"unknown key{hint}; allowed keys: {', '.join(sorted(allowed))}", str(name))
    for name in required:
        if name not in data:
            raise (
                Invalid(f"{owner} needs option {name!r}") if owner else Invalid("is required", name)
            )


def join(prefix: str, key: str) -> str:
    """``plan`` + ``faults[0]`` → ``plan.faults[0]``; either may be empty."""
    return f"{prefix}.{key}" if prefix and key else prefix or key


class ValueType:
    """Checks and normalises one value; `rule` says what is allowed."""

    rule: ClassVar[str] = "not allowed"

    def convert(self, value: Any) -> Any:
        """The normalised value, or `Invalid` with this type's rule."""
        if not self.accepts(value):
            raise Invalid(self.describe())
        return self.normalise(value)

    def accepts(self, value: Any) -> bool:
        return True

    def normalise(self, value: Any) -> Any:
        return value

    def to_data(self, value: Any) -> Any:
        """The plain-data (JSON/TOML) form of a normalised value."""
        return value

    def describe(self) -> str:
        return self.rule


class Optional(ValueType):
    """`inner`, or None meaning `none_means` (written `none_word` in data, TOML has no null)."""

    def __init__(self, inner: ValueType, none_means: str = "", none_word: str | None = None):
        self.inner = inner
        self.none_means = none_means
        self.none_word = none_word

    def convert(self, value: Any) -> Any:
        if value is None or (self.none_word is not None and value == self.none_word):
            return None
        try:
            return self.inner.convert(value)
        except Invalid as exc:
            if exc.key:  # a nested table's own error: keep its key path
                raise
            raise Invalid(self.describe()) from None

    def to_data(self, value: Any) -> Any:
        if value is None:
            return self.none_word
        return self.inner.to_data(value)

    def describe(self) -> str:
        if not self.none_means:  # None is only the default (files cannot write it)
            return self.inner.describe()
        return f"{self.inner.describe()}, or None for {self.none_means}"


#: The longest wait any timer takes: a 32-bit ``time_t`` (Raspberry Pi OS 32-bit and other
#: 32-bit boards) ends in 2038; past it ``setitimer`` (pytest-timeout's signal method) and
#: thread waits raise OverflowError (on 64-bit hosts from ~9.2e9 s), which kills the session.
MAX_SECONDS: Final = 2**31 - 1
SECONDS_NOTE: Final = "the longest timer a 32-bit OS clock takes, about 68 years"


def _num(value: float) -> str:
    """``2147483647`` (not ``2.14748e+09``) for whole bounds, ``0.001`` for the others."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounds(minimum: float | None, maximum: float | None, above: bool) -> str:
    if minimum is not None and maximum is not None:
        low = f"> {_num(minimum)} and <=" if above else f"from {_num(minimum)} to"
        return f" {low} {_num(maximum)}"
    if minimum is not None:
        return f" {'>' if above else '>='} {_num(minimum)}"
    if maximum is not None:
        return f" <= {_num(maximum)}"
    return ""


class Whole(ValueType):
    """An integer (never a bool) in [`minimum`, `maximum`]; `note` explains the bound."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None, note: str = ""):
        self.minimum = minimum
        self.maximum = maximum
        self.note = note

    def accepts(self, value: Any) -> bool:
        return (
            is_whole(value)
            and (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
        )

    def describe(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"must be a whole number{_bounds(self.minimum, self.maximum, False)}{note}"


class Number(ValueType):
    """A finite int or float (never a bool) in range; `above` makes `minimum` exclusive."""

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        above: bool = False,
        what: str = "a finite number",
        note: str = "",
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.above = above
        self.what = what
        self.note = note

    def accepts(self, value: Any) -> bool:
        if not is_number(value) or not math.isfinite(value):
            return False
        low = self.minimum is None or (
            value > self.minimum if self.above else value >= self.minimum
        )
        return low and (self.maximum is None or value <= self.maximum)

    def normalise(self, value: Any) -> Any:
        return float(value)

    def describe(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"must be {self.what}{_bounds(self.minimum, self.maximum, self.above)}{note}"


class Seconds(Number):
    """A number of seconds up to `MAX_SECONDS`, the OS bound named in the message."""

    def __init__(self, minimum: float = 0.0, *, above: bool = False) -> None:
        super().__init__(
            minimum, MAX_SECONDS, above=above, what="a number of seconds", note=SECONDS_NOTE
        )


class Flag(ValueType):
    """True or False."""

    rule: ClassVar[str] = "must be True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


class Text(ValueType):
    """A string (non-empty unless `empty`); `what` names what it is for in the rule."""

    def __init__(self, what: str = "a string", *, empty: bool = False) -> None:
        self.what = what
        self.empty = empty

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (self.empty or bool(value))

    def describe(self) -> str:
        return f"must be {self.what}"


class PathText(ValueType):
    """A file or directory path: a non-empty str or path-like, kept as written (a str)."""

    rule: ClassVar[str] = "expected a file or directory path"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str | os.PathLike) and bool(os.fspath(value))

    def normalise(self, value: Any) -> Any:
        return os.fspath(value)


class Choice(ValueType):
    """One of `values` (strings)."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return f"unknown; use one of {', '.join(map(repr, self.values))}"


class Span(ValueType):
    """``(start, end)`` seconds with ``0 <= start < end``: a tuple in Python, a list in data."""

    rule: ClassVar[str] = "must be (start, end) seconds after arming with 0 <= start < end"

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, tuple | list)
            and len(value) == 2
            and all(is_number(x) and math.isfinite(x) for x in value)
            and 0 <= value[0] < value[1]
        )

    def normalise(self, value: Any) -> Any:
        return (float(value[0]), float(value[1]))

    def to_data(self, value: Any) -> Any:
        return list(value)


class TextList(ValueType):
    """A list of non-empty strings, kept as a tuple."""

    rule: ClassVar[str] = "expected a list of strings"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(isinstance(i, str) and i for i in value)

    def normalise(self, value: Any) -> Any:
        return tuple(value)

    def to_data(self, value: Any) -> Any:
        return list(value)


def type_word(value: object) -> str:
    """``a string``, ``an integer``, ``a table``...: how a TOML reader would name the value."""
    return _TYPE_WORDS.get(type(value), type(value).__name__)


_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "a table",
    list: "an array",
    bool: "a boolean",
}


class Record(ValueType):
    """A nested table checked by a `Declared` record class (an instance passes as it is)."""

    def __init__(self, record: type[Declared]) -> None:
        self.record = record

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.record):
            return value
        return self.record.from_data(value)

    def to_data(self, value: Any) -> Any:
        return value.to_data()


# -- declared records ---------------------------------------------------------------------------


class Opt:
    """What a field of a `Declared` record allows, written in its annotation:
    ``nth: Annotated[int | None, Opt(Optional(Whole(1)), "help")] = None``.

    `sample` are values the hypothesis strategies draw (the first is the simplest), `source`
    the strategy argument that supplies the values instead (``"paths"``, ``"targets"``...).
    """

    __slots__ = ("help", "sample", "source", "type")

    def __init__(
        self, type: ValueType, help: str = "", *, sample: Sequence[Any] = (), source: str = ""
    ) -> None:
        self.type = type
        self.help = help
        self.sample = sample
        self.source = source


REQUIRED: Any = MISSING


class Option:
    """One declared field: its name, its `Opt`, its default (`REQUIRED` if none)."""

    __slots__ = ("default", "help", "keyword_only", "name", "sample", "source", "type")

    def __init__(self, name: str, opt: Opt, default: Any, keyword_only: bool) -> None:
        self.name = name
        self.type = opt.type
        self.help = opt.help
        self.sample = opt.sample
        self.source = opt.source
        self.default = default
        self.keyword_only = keyword_only

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def __repr__(self) -> str:
        return f"Option({self.name!r}, default={self.default!r})"


class Declared:
    """Base of a frozen dataclass whose fields are declared with ``Annotated[T, Opt(...)]``.

    Construction checks and normalises every field (errors are `error_type`, naming the field, the
    value and the rule), then runs `cross_check` for rules between fields. `to_data`/`from_data`
    are the plain-data (dict, JSON, TOML) round trip; defaults are left out, never null.
    """

    error_type: ClassVar[type[Invalid]] = Invalid
    _declared_options: ClassVar[tuple[Option, ...]]  # per class, set by `declared`

    @classmethod
    def declared(cls) -> tuple[Option, ...]:
        """The fields in signature order, read once from the annotations."""
        cached = cls.__dict__.get("_declared_options")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        hints = get_type_hints(cls, include_extras=True)
        found = []
        for f in fields(cls):  # type: ignore[arg-type]
            opt = next(
                (m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Opt)), None
            )
            if opt is None:
                continue
            default = f.default if f.default is not MISSING else REQUIRED
            found.append(Option(f.name, opt, default, bool(f.kw_only)))
        options = tuple(sorted(found, key=lambda o: o.keyword_only))
        cls._declared_options = options
        return options

    def __post_init__(self) -> None:
        for option in self.declared():
            value = getattr(self, option.name)
            try:
                object.__setattr__(self, option.name, option.type.convert(value))
            except Invalid as exc:
                if exc.key:  # inside a table value, e.g. exc.type
                    raise self.error_type(exc.rule, f"{option.name}.{exc.key}", exc.value) from None
                raise self.error_type(exc.rule, option.name, value) from None
        self.cross_check()

    def cross_check(self) -> None:
        """Rules between fields; raise ``self.error_type(rule, key, value)``."""

    def options(self) -> dict[str, Any]:
        """The fields that differ from their defaults (and the required ones), as given."""
        return {
            o.name: getattr(self, o.name)
            for o in self.declared()
            if o.required or getattr(self, o.name) != o.default
        }

    def to_data(self) -> dict[str, Any]:
        """`options` in plain-data form."""
        by_name = {o.name: o for o in self.declared()}
        out = {}
        for name, value in self.options().items():
            try:
                out[name] = by_name[name].type.to_data(value)
            except Invalid as exc:
                raise self.error_type(exc.rule, name) from None
        return out

    @classmethod
    def from_data(cls, data: object, where: str = "", owner: str = "") -> Self:
        """Build from plain data (or Python values); errors carry the key path under `where`."""
        if not isinstance(data, Mapping):
            raise cls.error_type(f"must be a table, got {type_word(data)}", where)
        declared = cls.declared()
        try:
            check_keys(
                data,
                [o.name for o in declared],
                [o.name for o in declared if o.required],
                owner=owner,
            )
            return cls(**data)
        except Invalid as exc:
            error = (
                exc
                if isinstance(exc, cls.error_type)
                else cls.error_type(exc.rule, exc.key, exc.value)
            )
            raise error.within(where) from None
