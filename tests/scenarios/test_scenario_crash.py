"""Scenario crash cycles through the crash harness (pytester)."""

from __future__ import annotations

import pytest

from tests.scenarios.support import scenario_toml

CRASH = """
[params]
careless = {careless}

[crash]
cycles = 4
mode = "kill"
kill = "acks:3"

[expect]
lost_acked_writes = 0
"""


def test_crash_cycles_count_acknowledged_writes(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        safe=scenario_toml(
            "safe", "counter", CRASH.format(careless="false"), 'recover = "wl:recover"'
        ),
    )
    result = wl.runpytest("safe.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["safe *passed*4 kill: 0 of * acked lost*"])


def test_acknowledging_before_writing_is_caught_as_lost_writes(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        careless=scenario_toml(
            "careless", "counter", CRASH.format(careless="true"), 'recover = "wl:recover"'
        ),
    )
    result = wl.runpytest("careless.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*acknowledged writes lost or changed in * kill cycles*"])
