"""Errors raised when a fault is armed with bad arguments."""

from __future__ import annotations


class FaultArgumentError(ValueError):
    """A fault was armed (or a plan loaded) with an argument that is not allowed.

    The message names the argument, the bad value and what is allowed.
    """
