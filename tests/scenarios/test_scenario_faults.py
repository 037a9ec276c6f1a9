"""Scenario faults: armed inside the workload child, validated when the file is read."""

from __future__ import annotations

import pytest

from tests.scenarios.support import scenario_toml


def test_faults_are_armed_inside_the_workload_child(wl: pytest.Pytester) -> None:
    faults = """
[[faults]]
kind = "fail"
target = "wl.fetch"
exc = { type = "OSError", args = [5, "injected"] }
every = 4
times = "unlimited"

[expect]
max_error_rate = 0.1
"""
    wl.makefile(".toml", flaky=scenario_toml("flaky", "calls", faults))
    result = wl.runpytest("flaky.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*error rate 0.250 (5 of 20 attempts) is above max_error_rate = 0.1*",
            "flaky *failed*5*",
        ]
    )


def test_an_invalid_fault_plan_is_a_scenario_file_error(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", bad=scenario_toml("bad", "calls", '[[faults]]\nkind = "meltdown"\n'))
    result = wl.runpytest("bad.toml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "invalid scenario file: */bad.toml: "
            "faults[[]0[]].kind='meltdown': unknown fault kind; use one of disk_full, *"
        ]
    )
