"""Finding user code by name: ``"package.module:function"`` and ``"package.module.attr"``.

One resolver for the three places that name user code: scenario files (``workload =
"app.jobs:ingest"``), the crash harness's template process (``"app.jobs:ingest"`` or
``"path/to/file.py:ingest"``) and generic faults (``"app.db.connect"``, patched where it is
looked up). Failures are `NameLookupError` subclasses carrying the parts; each caller words
them for its own context (a scenario key, a fault argument, a crash target).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pytest_edge.errors import EdgeInputError


class NameLookupError(EdgeInputError):
    """A name of user code that does not resolve; the message says which part failed."""


class BadName(NameLookupError):
    """The text is not of the expected form (``module:function``, ``package.module.attr``)."""


class RelativeName(BadName):
    """A relative module name (``.jobs:ingest``): files and plans have no package to start from."""

    def __init__(self, ref: str, example: str) -> None:
        super().__init__(
            f"{ref!r} is a relative module name; write the absolute name, e.g. {example!r}"
        )


class ImportFailed(NameLookupError):
    """Importing `module` raised `cause` (not found, or the module's own error)."""

    def __init__(self, module: str, cause: BaseException) -> None:
        self.module = module
        self.cause = cause
        super().__init__(f"cannot import module {module!r} ({cause})")


class NoAttribute(NameLookupError):
    """`owner` (a dotted name) has no attribute `attribute`."""

    def __init__(self, owner: str, attribute: str) -> None:
        self.owner = owner
        self.attribute = attribute
        super().__init__(f"{owner!r} has no attribute {attribute!r}")


class NotCallable(NameLookupError):
    """The name resolves, to something that cannot be called."""


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # the module's own import error is the user's to read
        raise ImportFailed(module_name, exc) from exc


def _load_file(path: str) -> ModuleType:
    """Run a ``.py`` file as the module ``__edge_main__`` (a script named by path)."""
    spec = importlib.util.spec_from_file_location("__edge_main__", path)
    if spec is None or spec.loader is None:
        raise ImportFailed(path, ImportError(f"cannot load {path}"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["__edge_main__"] = module
    spec.loader.exec_module(module)
    return module


def _walk(obj: Any, owner: str, names: list[str]) -> Any:
    for name in names:
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise NoAttribute(owner, name) from None
        owner = f"{owner}.{name}"
    return obj


def resolve_callable(ref: object, *, files: bool = False) -> Callable[..., Any]:
    """The callable named ``"module:qualname"`` (``"path/file.py:qualname"`` if `files`)."""
    if not isinstance(ref, str):
        raise BadName(f"{ref!r} is not of the form 'module:function'")
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname or not all(qualname.split(".")):
        raise BadName(f"{ref!r} is not of the form 'module:function'")
    if files and module_name.endswith(".py") and os.path.isfile(module_name):
        module = _load_file(module_name)  # "./app.py:main" is a file, not a relative module
    elif module_name.startswith("."):
        raise RelativeName(ref, "package.module:function")
    else:
        module = _import(module_name)
    target = _walk(module, module_name, qualname.split("."))
    if not callable(target):
        raise NotCallable(f"{ref!r} is not callable")
    return target  # type: ignore[no-any-return]


def resolve_attribute(dotted: object) -> tuple[object, str]:
    """(parent object, attribute name) for ``"package.module.attr[.attr...]"``.

    Imports the longest importable module prefix, as `unittest.mock.patch` does, then follows
    attributes; the last one must exist on its parent.
    """
    if isinstance(dotted, str) and dotted.startswith("."):
        raise RelativeName(dotted, "package.module.function")
    if not isinstance(dotted, str) or "." not in dotted or not all(dotted.split(".")):
        raise BadName(f"{dotted!r} is not a dotted name like 'package.module.function'")
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        try:
            module = _import(module_name)
        except ImportFailed as exc:
            missing = getattr(exc.cause, "name", None)
            if (
                isinstance(exc.cause, ModuleNotFoundError)
                and missing is not None
                and (module_name == missing or module_name.startswith(missing + "."))
            ):
                continue  # this prefix is not a module: try a shorter one
            raise
        parent = _walk(module, module_name, parts[i:-1])
        owner = ".".join(parts[:-1])
        if not hasattr(parent, parts[-1]):
            raise NoAttribute(owner, parts[-1])
        return parent, parts[-1]
    raise ImportFailed(parts[0], ModuleNotFoundError(f"no module named {parts[0]!r}"))
