"""The shipped self-healing scenario passes, and its check catches an agent that does not heal.

The same file with ``self_healing = false`` (no controller: the window and the workers stay
as they are under pressure) must fail the check, naming both; otherwise the pass proves
nothing. Each run is a whole scenario in a child process (about 5-10 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios" / "self_healing.toml"


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, text: str) -> pytest.RunResult:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    path = pytester.makefile(".toml", self_healing=text)
    return pytester.runpytest_subprocess(
        str(path), "-p", "no:cacheprovider", "-p", "no:xdist", "--edge-profile=raspberry-pi"
    )


def test_the_agent_shrinks_under_pressure_and_recovers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, SHIPPED.read_text())
    result.stdout.fnmatch_lines(["*self-healing-under-pressure*passed*"])
    result.assert_outcomes(passed=1)


def test_an_agent_without_the_controller_fails_the_check(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SHIPPED.read_text()
    assert "[params]\n" in text
    result = _run(
        pytester, monkeypatch, text.replace("[params]\n", "[params]\nself_healing = false\n")
    )
    result.stdout.fnmatch_lines(
        [
            "*healed_and_recovered: under pressure * prompts exceeded 1024 tokens:"
            " the window did not shrink; under pressure the engine still had 4 live workers*"
        ]
    )
    result.assert_outcomes(failed=1)
