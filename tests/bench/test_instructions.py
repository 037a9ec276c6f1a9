"""Instruction counts under callgrind: repeatable, proportional to the work, clear when absent."""

from __future__ import annotations

import json
import shutil
import sys
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


MARKED = """
import pytest

def work(n):
    return sum(i * i for i in range(n))

@pytest.mark.edge_instructions
def test_marked(edge_benchmark):
    edge_benchmark.throughput(work, 200, items=1, unit="calls")

def test_plain(edge_benchmark):
    edge_benchmark.throughput(work, 200, items=1, unit="calls")
"""


def without_valgrind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest run below finds no valgrind: PATH holds only this interpreter's directory."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))


def edge_blocks(pytester: pytest.Pytester, *args: str) -> dict[str, dict[str, object]]:
    pytester.makepyfile(test_marked=MARKED)
    with pytest.MonkeyPatch.context() as env:
        # Under xdist the run would inherit the worker's variables and pytest-benchmark would
        # then disable itself.
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
            env.delenv(name, raising=False)
        result = pytester.runpytest_subprocess(
            "-p", "no:xdist", "--benchmark-max-time=0.01", "--benchmark-json=out.json", *args
        )
    result.assert_outcomes(passed=2)
    document = json.loads((pytester.path / "out.json").read_text())
    return {b["name"]: b["extra_info"]["edge"] for b in document["benchmarks"]}


def test_the_marker_makes_instructions_the_verdict_and_says_when_valgrind_is_missing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_valgrind(monkeypatch)
    blocks = edge_blocks(pytester)
    assert blocks["test_marked"]["verdict_metric"] == "instructions"
    assert blocks["test_marked"]["instructions"] == (
        "not measured: valgrind is not installed: no instruction counts here"
    )
    assert "verdict_metric" not in blocks["test_plain"]
    assert "instructions" not in blocks["test_plain"]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_option_or_its_variable_makes_instructions_every_benchmark_s_verdict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    without_valgrind(monkeypatch)
    if how == "environment":
        monkeypatch.setenv("PYTEST_EDGE_INSTRUCTIONS", "1")
    blocks = edge_blocks(pytester, *(["--edge-instructions"] if how == "option" else []))
    assert {name: b["verdict_metric"] for name, b in blocks.items()} == {
        "test_marked": "instructions",
        "test_plain": "instructions",
    }


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_with_valgrind_the_marked_benchmark_carries_its_count(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    blocks = edge_blocks(pytester)
    count = blocks["test_marked"]["instructions_per_call"]
    assert isinstance(count, float)
    assert count > 1000
