"""`pytest-edge ab`: exit status 2 and a clean repository when a run fails or input is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.cli import main
from tests.bench.ab_repo import git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_failed_pytest_run_exits_2_and_leaves_no_worktree(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    assert main(["ab", "A", "B", "--runs", "2", "--", "-k", "no_such_test"]) == 2
    assert "no benchmark selected" in capsys.readouterr().err
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_unknown_output_extension_fails_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No repository here: the report format is checked before git or pytest is started.
    assert main(["ab", "A", "B", "--output", str(tmp_path / "r.txt")]) == 2
    assert "pytest-edge ab: error: report path" in capsys.readouterr().err


def test_bad_alpha_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab", "A", "B", "--alpha", "1.5"]) == 2
    assert "--alpha=1.5: must be between 0 and 1" in capsys.readouterr().err
