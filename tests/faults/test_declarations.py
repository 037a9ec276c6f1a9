"""The fault declarations are the one source of signatures, marker checks and errors."""

from __future__ import annotations

import inspect
import pickle

import pytest

from pytest_edge.faults import FaultArgumentError, FaultInjector
from pytest_edge.faults.declarations import KINDS, IoError, signature_text
from pytest_edge.faults.marker import check_marker, marker_arguments


def test_injector_signatures_come_from_the_declarations() -> None:
    params = inspect.signature(FaultInjector.io_error).parameters
    assert list(params) == [
        "self",
        "path",
        "on",
        "nth",
        "every",
        "times",
        "probability",
        "window",
        "short_write",
        "errno",
    ]
    assert params["on"].default == "write"
    assert params["nth"].kind is inspect.Parameter.KEYWORD_ONLY
    assert FaultInjector.io_error.__doc__ == IoError.__doc__
    for kind in KINDS:
        assert getattr(FaultInjector, kind).__name__ == kind


def test_marker_binds_and_checks_with_the_declared_options() -> None:
    assert marker_arguments(("io_error", "/x", "fsync"), {"nth": 2}) == (
        "io_error",
        {"path": "/x", "on": "fsync", "nth": 2},
    )
    message = check_marker(("io_error", "/x"), {"shortwrite": True})
    assert message is not None
    assert (
        "io_error has no option 'shortwrite' (did you mean 'short_write'?); "
        "it takes io_error(path, on='write', *," in message
    )
    bad_value = check_marker(("slow", "os.fsync"), {"seconds": -1})
    assert bad_value is not None
    assert bad_value.endswith(
        "seconds=-1: must be a number of seconds from 0 to 2147483647 "
        "(the longest timer a 32-bit OS clock takes, about 68 years)"
    )
    assert signature_text("disk_full") == "disk_full(path, free_bytes=0)"
    hint = check_marker(("disk_ful",), {})
    assert hint is not None
    assert "(did you mean 'disk_full'?)" in hint


def test_every_declared_option_says_what_it_is_or_allows() -> None:
    for record in KINDS.values():
        for option in record.declared():
            assert option.type.describe(), (record.kind, option.name)


def test_argument_errors_keep_their_parts_and_survive_pickling() -> None:
    with FaultInjector() as faults, pytest.raises(FaultArgumentError) as info:
        faults.io_error("/x", nth=0)
    error = info.value
    assert (error.key, error.value) == ("nth", 0)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes (as xdist sends them)
    assert type(copy) is FaultArgumentError
    assert (
        str(copy) == str(error) == "nth=0: must be a whole number >= 1 (calls are numbered from 1)"
    )
    assert str(error.within("plan.faults[2]")).startswith("plan.faults[2].nth=0: ")
