"""The exception classes a `FaultPlan` may name, and their data form.

A plan names a class, it never holds code: ``{type = "OSError", args = [5, "..."]}`` with
`type` from an allow-list (the built-in exceptions, a few standard-library ones, and classes
added with `register_exception`) and plain-data `args`. Nothing is ever evaluated.

Only `Exception` subclasses are allowed: ``KeyboardInterrupt``, ``SystemExit`` and
``GeneratorExit`` raised into the code under test end the whole pytest session, not the test.
The class is built from its `args` when the plan is read, so arguments its constructor rejects
fail at load, not when the fault fires.
"""

from __future__ import annotations

import builtins
import socket
import sqlite3
import threading
from collections.abc import Mapping

from pytest_edge.faults.errors import FaultArgumentError

_lock = threading.Lock()
_EXCEPTIONS: dict[str, type[BaseException]] = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception)
}
#: What the messages say is allowed, and why the rest is not.
ALLOWED_TEXT = (
    "an Exception subclass (KeyboardInterrupt, SystemExit, GeneratorExit and BaseException "
    "would end the pytest session, not the test)"
)
#: OSError's constructor takes (errno, strerror, filename, winerror, filename2) and keeps
#: any further arguments silently; a plan with more is a mistake, said at load.
_OSERROR_ARGS = 5
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
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        raise FaultArgumentError(f"register_exception({cls!r}): expected {ALLOWED_TEXT}")
    with _lock:
        _EXCEPTIONS[exception_name(cls)] = cls
    return cls


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def exception_to_data(exc: BaseException | type[BaseException]) -> dict[str, object]:
    """``{"type": name, "args": [...]}``; the class must be allowed, the args plain data."""
    cls = exc if isinstance(exc, type) else type(exc)
    args = [] if isinstance(exc, type) else list(exc.args)
    name = exception_name(cls)
    with _lock:
        allowed = _EXCEPTIONS.get(name) is cls
    if not allowed:
        raise FaultArgumentError(
            f"exception class {name!r} is not allowed in a plan; "
            "register it with pytest_edge.faults.register_exception"
        )
    for arg in args:
        if not _is_scalar(arg):
            raise FaultArgumentError(
                f"{name} argument {arg!r} is not plain data (allowed: str, int, float, bool)"
            )
    return {"type": name, "args": args}


def exception_from_data(data: Mapping[str, object]) -> BaseException:
    """The exception a ``{type, args}`` table names; errors name the key (``type``, ``args``)."""
    if set(data) - {"type", "args"} or "type" not in data:
        raise FaultArgumentError(
            f'expected a table {{type = "OSError", args = [...]}}, got {dict(data)!r}'
        )
    name = data["type"]
    with _lock:
        cls = _EXCEPTIONS.get(name) if isinstance(name, str) else None
    builtin = getattr(builtins, str(name), None)
    if cls is None and isinstance(builtin, type) and issubclass(builtin, BaseException):
        raise FaultArgumentError(f"not allowed; use {ALLOWED_TEXT}", "type", name)
    if cls is None:
        raise FaultArgumentError(
            "not an allowed exception class; use a built-in exception name (e.g. 'OSError', "
            "'TimeoutError'), 'sqlite3.OperationalError', or register your own with "
            "pytest_edge.faults.register_exception",
            "type",
            name,
        )
    args = data.get("args", [])
    if not isinstance(args, list) or not all(_is_scalar(a) for a in args):
        raise FaultArgumentError("expected a list of str/int/float/bool", "args", args)
    return build_exception(cls, args)


def build_exception(cls: type[BaseException], args: list[object]) -> BaseException:
    """``cls(*args)``, or `FaultArgumentError` (key ``args``) saying why it cannot be built."""
    name = exception_name(cls)
    if issubclass(cls, OSError) and len(args) > _OSERROR_ARGS:
        raise FaultArgumentError(
            f"{name} takes at most {_OSERROR_ARGS} arguments "
            f"(errno, strerror, filename, winerror, filename2), got {len(args)}",
            "args",
            args,
        )
    if issubclass(cls, OSError) and len(args) >= 2 and type(args[0]) is not int:
        raise FaultArgumentError(
            f"{name}'s first argument is the errno, a whole number (e.g. 5 for EIO)", "args", args
        )
    try:
        exc = cls(*args)
        str(exc)  # some classes fail only when shown
    except Exception as error:  # the class's own words say what it needs
        raise FaultArgumentError(
            f"{name} cannot be built from these arguments ({type(error).__name__}: {error})",
            "args",
            args,
        ) from None
    return exc
