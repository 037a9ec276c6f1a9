"""`pytest --help` lists every pytest-edge option (argparse formats help text with %)."""

from __future__ import annotations

import pytest


def test_help_lists_every_edge_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*pytest-edge*",
            "*--edge-seed=N*",
            "*--edge-profile=NAME*",
            "*--edge-fail-on-regression=THRESHOLD*",
            "*'10%' or '0.10'*",
            "*--edge-report*",
        ]
    )
