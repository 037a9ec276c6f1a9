"""Instruction counts under callgrind: repeatable, proportional to the work, clear when absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_edge.bench import instructions
from pytest_edge.bench.instructions import (
    InstructionCountError,
    count_instructions,
    target_of,
)
from pytest_edge.errors import EdgeInputError
from tests.bench.ab_repo import WORK


def test_without_valgrind_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(InstructionCountError, match="valgrind is not installed"):
        count_instructions("json:dumps", [1])


def test_only_importable_functions_and_json_arguments() -> None:
    def local() -> None:
        pass

    with pytest.raises(EdgeInputError, match="importable module-level function"):
        target_of(local)
    assert target_of(shutil.which) == "shutil:which"
    if instructions.valgrind():
        with pytest.raises(ValueError, match="JSON-able arguments"):
            count_instructions("json:dumps", [object()])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_are_repeatable_and_proportional(tmp_path: Path) -> None:
    (tmp_path / "cgwork.py").write_text(WORK)
    path = [str(tmp_path)]
    once = count_instructions("cgwork:work", [2000], calls=5, extra_path=path)
    again = count_instructions("cgwork:work", [2000], calls=5, extra_path=path)
    double = count_instructions("cgwork:work", [4000], calls=5, extra_path=path)
    assert once.per_call == pytest.approx(again.per_call, rel=1e-3)
    assert double.per_call / once.per_call == pytest.approx(2.0, rel=0.1)
