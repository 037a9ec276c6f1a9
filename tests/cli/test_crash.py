"""`pytest-edge crash`: the harness from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.cli import main


def test_cli_crash_passes_a_safe_writer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "crash",
            "tests.crash.workloads:safe_writer",
            "tests.crash.workloads:recover",
            "--state-dir",
            str(tmp_path),
            "--cycles",
            "3",
            "--seed",
            "9",
        ]
    )
    assert code == 0
    assert "crash harness (kill, seed 9): 3 cycles" in capsys.readouterr().out


def test_cli_crash_fails_with_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "crash",
            "tests.crash.workloads:rename_without_fsync_writer",
            "tests.crash.workloads:recover",
            "--state-dir",
            str(tmp_path),
            "--mode",
            "power-loss",
            "--seed",
            "9",
        ]
    )
    assert code == 1
    assert "operation trace up to the power cut:" in capsys.readouterr().out


def test_cli_crash_bad_kill_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["crash", "a:b", "c:d", "--state-dir", str(tmp_path), "--kill", "never"])
    assert code == 2
    assert "pytest-edge crash: error: kill='never' is not a kill point" in capsys.readouterr().err


def test_cli_crash_unimportable_workload_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "crash",
            "no_such_module_xyz:run",
            "tests.crash.workloads:recover",
            "--state-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "pytest-edge crash: error: crash harness: cannot load" in capsys.readouterr().err
