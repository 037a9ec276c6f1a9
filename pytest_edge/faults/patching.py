"""Patch sites: replace an attribute where it is looked up, chain hooks on it, restore it exactly.

A `PatchSite` replaces ``parent.name`` by one wrapper the first time a hook is attached and puts
the original object back (the same object, or removes the attribute if it was inherited) when
the last hook is detached. Several faults, from one or several injectors, can share a site;
detaching them in any order is safe. Sites are global because the patched attributes are.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_edge.callables import BadName, NameLookupError, RelativeName, resolve_attribute
from pytest_edge.faults.errors import FaultArgumentError

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_MISSING = object()


class Hook(Protocol):
    """Runs around one call of a patched callable; calls `proceed` to reach the original."""

    def __call__(
        self, proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


def resolve_target(dotted: object, argument: str = "target") -> tuple[object, str]:
    """(parent object, attribute name) for ``"package.module.attr[.attr...]"``.

    Imports the longest importable module prefix, as `unittest.mock.patch` does, then follows
    attributes (`pytest_edge.callables.resolve_attribute`). Raises `FaultArgumentError`
    naming `argument` when it cannot be resolved.
    """
    try:
        return resolve_attribute(dotted)
    except RelativeName as exc:
        raise FaultArgumentError(str(exc), argument, dotted) from None
    except BadName:
        rule = (
            "expected a dotted name like 'package.module.function' naming the place where "
            "the code under test looks the callable up"
        )
        raise FaultArgumentError(rule, argument, dotted) from None
    except NameLookupError as exc:
        raise FaultArgumentError(str(exc), argument, dotted) from exc


def caller_location() -> str:
    """``file:line in function`` of the nearest frame outside this package."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _layer(hook: Hook, proceed: Callable[..., Any]) -> Callable[..., Any]:
    def layer(*args: Any, **kwargs: Any) -> Any:
        return hook(proceed, args, kwargs)

    return layer


@dataclass
class Attachment:
    """A hook attached to a site; pass it to `detach`."""

    site: PatchSite
    hook: Hook


class PatchSite:
    """One patched attribute and the hooks that run around each call of it."""

    def __init__(self, parent: object, name: str) -> None:
        self.parent = parent
        self.name = name
        own = getattr(parent, "__dict__", {})
        self.had_own = name in own
        self.raw: object = own[name] if self.had_own else getattr(parent, name)
        if isinstance(parent, type):
            raw = inspect.getattr_static(parent, name)
            self.raw = raw
        stale = getattr(self.raw, "__edge_fault_site__", None)
        if isinstance(stale, PatchSite):
            # A wrapper whose site is gone, put back by someone who saved it while it was
            # installed (e.g. monkeypatch undone after the fault): patch the true original.
            self.raw = stale.raw
        wrapper_kind: type[staticmethod[..., Any]] | type[classmethod[Any, ..., Any]] | None = None
        func: Any = self.raw
        if isinstance(self.raw, staticmethod | classmethod):
            wrapper_kind = type(self.raw)
            func = self.raw.__func__
        if not callable(func):
            raise FaultArgumentError(
                f"target {self.describe()!r} is a {type(func).__name__}, not a callable"
            )
        self.func: Callable[..., Any] = func
        self.is_async = inspect.iscoroutinefunction(func)
        self.hooks: tuple[Hook, ...] = ()
        self.chain: Callable[..., Any] = func
        self.single: tuple[Hook, Callable[..., Any]] | None = None
        wrapper = self._make_wrapper()
        self.wrapper: object = wrapper if wrapper_kind is None else wrapper_kind(wrapper)

    def describe(self) -> str:
        owner = getattr(self.parent, "__name__", type(self.parent).__name__)
        return f"{owner}.{self.name}"

    def _make_wrapper(self) -> Callable[..., Any]:
        func = self.func
        if self.is_async:

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                for hook in self.hooks:
                    before = getattr(hook, "before_async", None)
                    if before is not None:
                        await before(args, kwargs)
                return await func(*args, **kwargs)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                single = self.single
                if single is not None:  # the usual case: one fault on this callable
                    return single[0](single[1], args, kwargs)
                return self.chain(*args, **kwargs)

            wrapper = sync_wrapper
        with contextlib.suppress(AttributeError, TypeError):  # exotic callables
            functools.update_wrapper(wrapper, func)
        wrapper.__edge_fault_site__ = self  # type: ignore[attr-defined]
        return wrapper

    def set_hooks(self, hooks: tuple[Hook, ...]) -> None:
        # The innermost hook calls the original directly; outer ones go through a layer.
        chain: Callable[..., Any] = self.func
        for hook in reversed(hooks):
            chain = _layer(hook, chain)
        self.chain = chain
        self.hooks = hooks
        self.single = (hooks[0], self.func) if len(hooks) == 1 else None

    def install(self) -> None:
        setattr(self.parent, self.name, self.wrapper)

    def restore(self) -> None:
        if self.had_own:
            setattr(self.parent, self.name, self.raw)
        else:
            with contextlib.suppress(AttributeError):  # someone removed it already
                delattr(self.parent, self.name)


_lock = threading.RLock()
_sites: dict[tuple[int, str], PatchSite] = {}


def attach(parent: object, name: str, hook: Hook) -> Attachment:
    """Run `hook` around every call of ``parent.name`` until `detach`."""
    with _lock:
        key = (id(parent), name)
        site = _sites.get(key)
        if site is None:
            site = PatchSite(parent, name)
            site.set_hooks((hook,))
            try:
                site.install()
            except (TypeError, AttributeError) as exc:
                raise FaultArgumentError(
                    f"target {site.describe()!r} cannot be patched ({exc}); patch the name "
                    "where your code looks it up instead (for sqlite3.Connection methods use "
                    "the sqlite faults, which wrap sqlite3.connect)"
                ) from exc
            _sites[key] = site
        else:
            site.set_hooks((*site.hooks, hook))
        return Attachment(site, hook)


def detach(attachment: Attachment) -> None:
    """Remove a hook; the last hook out restores the original attribute."""
    with _lock:
        site = attachment.site
        hooks = tuple(h for h in site.hooks if h is not attachment.hook)
        if hooks == site.hooks:
            return
        site.set_hooks(hooks)
        if not hooks:
            site.restore()
            _sites.pop((id(site.parent), site.name), None)


def active_sites() -> list[str]:
    """Names of the attributes currently patched (for tests and diagnostics)."""
    with _lock:
        return sorted(site.describe() for site in _sites.values())


def original(parent: object, name: str) -> Any:
    """The unpatched value of ``parent.name`` (the attribute itself when not patched)."""
    with _lock:
        site = _sites.get((id(parent), name))
        return getattr(parent, name) if site is None else site.func
