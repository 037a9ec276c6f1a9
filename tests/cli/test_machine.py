"""`pytest-edge machine`: what this machine looks like to pytest-edge."""

from __future__ import annotations

import pytest

from pytest_edge.cli import main
from pytest_edge.machine import current_machine


def test_cli_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["machine"]) == 0
    out = capsys.readouterr().out
    assert f"{current_machine().memory().total_mb:.0f} MB total" in out
    assert "cpus:" in out
