"""The root of every pytest-edge exception and warning.

Each error also derives from the built-in it means (a bad value is a `ValueError`, a lookup
that found nothing a `LookupError`), so callers may catch either ``EdgeError`` or the built-in.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Anything pytest-edge raises on purpose."""


class EdgeInputError(EdgeError, ValueError):
    """Bad input: an option, marker argument, file or call argument that is not allowed.

    The message names where the value came from, the value and what is allowed.
    """


class EdgeWarning(UserWarning):
    """Anything pytest-edge warns about (a verdict it cannot reach, a fault that never fired)."""
