"""`pytest-edge profiles`: the device catalog as a table, with aliases and their reasons."""

from __future__ import annotations

import pytest

from pytest_edge.cli import main


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "raspberry-pi-4-4gb" in out
    assert "4096 MB" in out
    assert "raspberry-pi -> raspberry-pi-4-4gb: The Raspberry Pi 4" in out
    header, rule = out.splitlines()[:2]
    assert header.split()[:3] == ["name", "memory", "reserved"]
    assert set(rule.replace(" ", "")) == {"-"}
