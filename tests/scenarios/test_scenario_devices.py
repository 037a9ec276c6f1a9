"""Scenarios on simulated devices: the profile, --edge-profile, the memory budget (pytester)."""

from __future__ import annotations

import pytest

from tests.scenarios.support import scenario_toml


def test_the_file_profile_is_used_and_named_concretely(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", pi=scenario_toml("pi", "calls", head='profile = "raspberry-pi"'))
    result = wl.runpytest("pi.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["device: raspberry-pi-4-4gb (every run)", "pi *passed*/ 4020*calls/s*calls/s*"]
    )


def test_edge_profile_option_runs_each_device(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", both=scenario_toml("both", "calls", head='profile = "raspberry-pi"'))
    result = wl.runpytest("both.toml", "--edge-profile=rpi5,pi-zero-2w", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*both.toml::both?raspberry-pi-5-8gb? PASSED*",
            "*both.toml::both?raspberry-pi-zero-2w? PASSED*",
        ]
    )


def test_unknown_profile_in_the_file_names_file_and_key(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", odd=scenario_toml("odd", "calls", head='profile = "raspberry-pie"'))
    result = wl.runpytest("odd.toml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*odd.toml: [[]scenario[]] profile: *raspberry-pie*"])


def test_a_workload_past_the_device_budget_fails_saying_it_does_not_fit(
    wl: pytest.Pytester,
) -> None:
    wl.makefile(".toml", hog=scenario_toml("hog", "hog", head='profile = "pi-zero-2w"'))
    result = wl.runpytest("hog.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*hog does not fit on raspberry-pi-zero-2w: MemoryError in the workload under the "
            "device's memory budget of 448 MB*",
            "*edge scenarios verdict: FAIL*",
        ]
    )
