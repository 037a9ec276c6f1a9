"""`pytest-edge instructions`: bad targets and arguments exit 2 with what is wrong."""

from __future__ import annotations

import pytest

from pytest_edge.cli import main


def test_cli_rejects_a_target_without_colon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["instructions", "json.dumps"]) == 2
    assert "'json.dumps' is not MODULE:FUNCTION" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "message"),
    [("[1,", "--args='[1,' is not JSON"), ('{"a": 1}', "--args='{\"a\": 1}' must be a JSON list")],
)
def test_cli_rejects_args_that_are_not_a_json_list(
    capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    assert main(["instructions", "json:dumps", "--args", value]) == 2
    assert f"pytest-edge instructions: error: {message}" in capsys.readouterr().err
