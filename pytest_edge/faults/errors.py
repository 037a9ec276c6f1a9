"""Errors raised when a fault is armed with bad arguments."""

from __future__ import annotations

from pytest_edge.errors import EdgeInputError


class FaultArgumentError(EdgeInputError):
    """A fault was armed (or a plan loaded) with an argument that is not allowed.

    The message names the argument, the bad value and what is allowed.
    """
