"""The ``@pytest.mark.edge_fault(kind, **options)`` marker: checked at collection, armed by
the ``edge_faults`` fixture. Kept apart from pytest so its checks are plain functions."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pytest_edge.faults.injector import FaultInjector
from pytest_edge.faults.kinds import FAULT_KINDS


def marker_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(kind, keyword arguments) of a marker; positional options are bound to their names."""
    kind = args[0]
    method = getattr(FaultInjector, kind)
    bound = inspect.signature(method).bind(None, *args[1:], **kwargs)
    options = dict(bound.arguments)
    options.pop("self")
    return kind, options


def check_marker(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """Why the marker's arguments cannot be armed, or None when they name a kind and fit it."""
    shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    where = f"@pytest.mark.edge_fault({shown})"
    if not args or not isinstance(args[0], str):
        return (
            f"{where}: the first argument must be the fault kind, one of {', '.join(FAULT_KINDS)}"
        )
    if args[0] not in FAULT_KINDS:
        return f"{where}: unknown fault kind {args[0]!r}; use one of {', '.join(FAULT_KINDS)}"
    params = signature_text(args[0])
    unknown = sorted(
        set(kwargs) - set(inspect.signature(getattr(FaultInjector, args[0])).parameters)
    )
    if unknown:
        return f"{where}: {args[0]} has no option {unknown[0]!r}; it takes {params}"
    try:
        marker_arguments(args, kwargs)
    except TypeError as exc:
        return f"{where}: {exc}; {args[0]} takes {params}"
    return None


def signature_text(kind: str) -> str:
    """``kind(path, free_bytes=0)``: the method's parameters without annotations."""
    parts = []
    for name, param in inspect.signature(getattr(FaultInjector, kind)).parameters.items():
        if name == "self":
            continue
        if param.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = "" if param.default is inspect.Parameter.empty else f"={param.default!r}"
        parts.append(f"{name}{default}")
    return f"{kind}({', '.join(parts)})"
