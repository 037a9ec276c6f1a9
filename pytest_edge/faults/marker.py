"""The ``@pytest.mark.edge_fault(kind, **options)`` marker: checked at collection, armed by
the ``edge_faults`` fixture. Kept apart from pytest so its checks are plain functions; both
read the kinds' declarations (`pytest_edge.faults.declarations`), never the fault code."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pytest_edge.faults.declarations import KINDS, signature_text
from pytest_edge.faults.kinds import FAULT_KINDS
from pytest_edge.schema import Invalid, did_you_mean


def marker_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(kind, keyword arguments) of a marker; positional options are bound to their names."""
    kind = args[0]
    bound = inspect.signature(KINDS[kind]).bind(*args[1:], **kwargs)
    return kind, dict(bound.arguments)


def check_marker(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """Why the marker's arguments cannot be armed, or None when they name a kind and fit it."""
    shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    where = f"@pytest.mark.edge_fault({shown})"
    if not args or not isinstance(args[0], str):
        return (
            f"{where}: the first argument must be the fault kind, one of {', '.join(FAULT_KINDS)}"
        )
    kind = args[0]
    if kind not in FAULT_KINDS:
        hint = did_you_mean(kind, FAULT_KINDS)
        return f"{where}: unknown fault kind {kind!r}{hint}; use one of {', '.join(FAULT_KINDS)}"
    params = signature_text(kind)
    names = [o.name for o in KINDS[kind].declared()]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        hint = did_you_mean(unknown[0], names)
        return f"{where}: {kind} has no option {unknown[0]!r}{hint}; it takes {params}"
    try:
        _, bound = marker_arguments(args, kwargs)
    except TypeError as exc:
        return f"{where}: {exc}; {kind} takes {params}"
    try:  # the values too: ranges, exception classes and their arguments
        KINDS[kind](**bound)
    except Invalid as exc:
        return f"{where}: {exc}"
    return None
