"""The end-to-end check every edge marker shares: a bad argument errors its own test alone."""

from __future__ import annotations

import textwrap

import pytest


def assert_bad_marker_errors_that_test_alone(
    pytester: pytest.Pytester, decorator: str, message: str
) -> None:
    """`decorator` (``edge_fault("disk_ful")``) on one of two tests errors that test at setup
    with the one line ``<nodeid>: <message>``; the other test passes, and with the bad one
    deselected (``-k``) the run is clean, as if the marker were not there."""
    pytester.makepyfile(
        textwrap.dedent(
            f"""
            import pytest

            @pytest.mark.{decorator}
            def test_x():
                pass

            def test_other():
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_x*", f"test_*.py::test_x: {message}"])
    assert "Traceback" not in result.stdout.str()
    pytester.runpytest("-k", "test_other").assert_outcomes(passed=1)
