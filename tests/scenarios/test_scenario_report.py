"""The scenarios section of the edge report (pytester)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scenarios.support import scenario_toml


@pytest.mark.parametrize("suffix", ["json", "md", "html"])
def test_the_edge_report_has_a_scenarios_section(wl: pytest.Pytester, suffix: str) -> None:
    wl.makefile(".toml", pi=scenario_toml("pi", "calls", head='profile = "raspberry-pi"'))
    result = wl.runpytest("pi.toml", f"--edge-report=report.{suffix}")
    result.assert_outcomes(passed=1)
    text = Path(wl.path, f"report.{suffix}").read_text()
    if suffix == "json":
        data = json.loads(text)
        (section,) = [s for s in data["sections"] if s["key"] == "scenarios"]
        assert section["data"]["verdict"].startswith("PASS: 1 passed")
        (run,) = section["data"]["runs"]
        assert run["profile"] == "raspberry-pi-4-4gb"
        assert run["budget_mb"] == 4020
        assert run["projected_throughput"] is not None
    else:
        assert "Scenarios" in text
        assert (
            "raspberry-pi -&gt; raspberry-pi-4-4gb" in text
            or "raspberry-pi -> raspberry-pi-4-4gb" in text
        )
        assert "estimate" in text


def test_summary_and_report_come_back_from_xdist_workers(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        one=scenario_toml("one", "calls", head='profile = "raspberry-pi"'),
        two=scenario_toml("two", "calls", head='profile = "raspberry-pi"'),
    )
    # Workers import the workload module too: `pythonpath` puts the folder on their sys.path.
    result = wl.runpytest("-n", "2", "-o", "pythonpath=.", "--edge-report=report.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*edge scenarios verdict: PASS: 2 passed*"])
    data = json.loads(Path(wl.path, "report.json").read_text())
    (section,) = [s for s in data["sections"] if s["key"] == "scenarios"]
    assert sorted(r["name"] for r in section["data"]["runs"]) == ["one", "two"]
