"""The device speed factor: the profile's speed over the host's, the one formula for estimates."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_edge.cli import main
from pytest_edge.device.speed import device_speed_factor, unknown_speed_reason
from pytest_edge.profiles.catalog import ProfileCatalog, ProfileError, parse_profile


def test_ratio_of_device_to_host_and_none_when_unknown() -> None:
    pi = ProfileCatalog.load().resolve("raspberry-pi-4-4gb")
    assert pi.cpu_speed_factor is not None
    assert device_speed_factor(pi) == pi.cpu_speed_factor
    assert device_speed_factor(pi, 2.0) == pytest.approx(pi.cpu_speed_factor / 2.0)
    assert device_speed_factor(dataclasses.replace(pi, cpu_speed_factor=None), 2.0) is None
    assert device_speed_factor(None, 2.0) is None


CATALOG = ProfileCatalog.load()


@pytest.mark.parametrize("profile", CATALOG.profiles(), ids=lambda p: p.name)
def test_every_catalog_device_has_a_sourced_speed_or_says_it_is_unknown(profile: Any) -> None:
    reference = CATALOG.speed_reference
    assert reference is not None
    assert reference.score is not None
    if profile.cpu_speed_factor is None:
        assert profile.cpu_speed_unknown, f"{profile.name}: neither a speed nor why it is unknown"
        return
    assert profile.cpu_speed_unknown is None
    assert profile.cpu_speed_source is not None
    assert profile.cpu_speed_source.startswith("https://github.com/ThomasKaiser/sbc-bench/")
    assert profile.cpu_speed_score is not None
    # The factor is the score over the reference score, rounded to two places.
    assert profile.cpu_speed_factor == pytest.approx(
        profile.cpu_speed_score / reference.score, abs=0.005
    )


def test_a_factor_and_an_unknown_reason_together_are_refused() -> None:
    data = {"memory_mb": 512, "cpu_cores": 1, "cpu_speed_factor": 0.5, "cpu_speed_unknown": "?"}
    with pytest.raises(ProfileError, match=r"cpu_speed_unknown.*keep one of the two"):
        parse_profile("both", data, "mine.toml")


def test_unknown_reason_comes_from_the_profile_else_says_there_is_no_factor() -> None:
    m2 = CATALOG.resolve("macbook-air-m2-8gb")
    assert device_speed_factor(m2) is None
    assert "Apple M2" in unknown_speed_reason(m2)
    pi = CATALOG.resolve("raspberry-pi-4-4gb")
    bare = dataclasses.replace(pi, cpu_speed_factor=None)
    assert unknown_speed_reason(bare) == "its profile has no cpu_speed_factor"


SCENARIO = """
[scenario]
name = "floor"
workload = "wl:ok"
timeout = 30
[expect]
min_throughput = {{ value = {floor}, unit = "docs/s" }}
"""


@pytest.mark.parametrize(("floor", "side"), [("1e12", "below"), ("1", "at or above")])
def test_a_floor_on_a_device_of_unknown_speed_is_a_warning_not_a_silent_host_check(
    pytester: pytest.Pytester, floor: str, side: str
) -> None:
    pytester.makepyfile(wl='def ok(state_dir):\n    return {"items": 10, "unit": "docs"}\n')
    pytester.syspathinsert()
    pytester.makefile(".toml", floor=SCENARIO.format(floor=floor))
    result = pytester.runpytest("floor.toml", "--edge-profile=m2-air", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*DeviceSpeedUnknownWarning: scenario 'floor': min_throughput on macbook-air-m2-8gb "
            "checked at host speed: device speed unknown (no sbc-bench 7-zip result for the "
            f"Apple M2 *): * docs/s measured on this host is {side} the floor of * docs/s; "
            "not enforced",
        ]
    )


def test_a_floor_on_a_device_of_known_speed_is_checked_on_the_projection(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(wl='def ok(state_dir):\n    return {"items": 10, "unit": "docs"}\n')
    pytester.syspathinsert()
    pytester.makefile(".toml", floor=SCENARIO.format(floor="1e12"))
    result = pytester.runpytest("floor.toml", "--edge-profile=pi-zero", "-W", "error")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*throughput * docs/s projected on raspberry-pi-zero-2w (estimate) is below the floor*"]
    )


def test_the_profiles_command_says_unknown_where_there_is_no_speed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["profiles"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line}
    assert rows["macbook-air-m2-8gb"][6] == "unknown"
    assert rows["raspberry-pi-zero-2w"][6] == "0.25"
    assert rows["mini-pc-n100-8gb"][6] == "1.18"
