"""The shipped suite (`scenarios/`): every file validates, and the whole suite passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.scenarios import is_scenario_file, load_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(SHIPPED.glob("*.toml"))


def test_the_suite_is_there() -> None:
    assert len(FILES) >= 8, f"expected the shipped scenarios in {SHIPPED}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_shipped_scenario_validates_and_explains_itself(path: Path) -> None:
    assert is_scenario_file(path)
    scenario = load_scenario(path)
    assert scenario.profile == "raspberry-pi"
    # The description says what a real device would suffer and what the expectation proves.
    assert len(scenario.description.split()) >= 40, scenario.description
    assert scenario.expect != type(scenario.expect)(), "a scenario without expectations"


@pytest.mark.slow
def test_the_shipped_suite_passes(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        str(SHIPPED), "-p", "no:cacheprovider", "--edge-profile=raspberry-pi"
    )
    result.stdout.fnmatch_lines(["*edge scenarios verdict: PASS*"])
    assert result.ret == pytest.ExitCode.OK
