"""Errors raised when a fault is armed with bad arguments."""

from __future__ import annotations

from pytest_edge.schema import Invalid


class FaultArgumentError(Invalid):
    """A fault was armed (or a plan loaded) with an argument that is not allowed.

    The message names the argument (its key path in a plan), the bad value and what is
    allowed; `key`, `value` and `rule` hold the parts.
    """
