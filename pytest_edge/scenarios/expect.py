"""Checks a scenario's ``[expect]`` table against what the run measured.

Each broken expectation becomes one sentence saying what was expected, what was measured and
on which device, so a failing scenario reads like a finding, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_edge.device.speed import HOST_SPEED
from pytest_edge.scenarios.outcome import ScenarioOutcome
from pytest_edge.scenarios.schema import Expectations, resolve_callable


def _rate_unit(unit: str) -> str:
    return unit if unit.endswith("/s") else f"{unit}/s"


def floor_at_host_speed(expect: Expectations, outcome: ScenarioOutcome) -> bool:
    """A throughput floor on a simulated device whose speed is unknown: no projection."""
    return (
        expect.min_throughput is not None
        and outcome.profile != "host"
        and outcome.speed_factor is None
        and outcome.throughput is not None
    )


def host_speed_floor(expect: Expectations, outcome: ScenarioOutcome, why: str) -> str | None:
    """The warning for a floor `floor_at_host_speed` could not project; None when none is due.

    The host's figure says nothing about the device, so it neither passes nor fails the
    scenario: the warning gives it and says why no device figure exists.
    """
    floor = expect.min_throughput
    figure = outcome.throughput
    if floor is None or figure is None or not floor_at_host_speed(expect, outcome):
        return None
    wanted = _rate_unit(floor.unit)
    side = "below" if figure < floor.value else "at or above"
    return (
        f"min_throughput on {outcome.profile} {HOST_SPEED} ({why}): {figure:.1f} {wanted} "
        f"measured on this host is {side} the floor of {floor.value:g} {wanted}; not enforced"
    )


def check_expectations(
    expect: Expectations,
    outcome: ScenarioOutcome,
    resolve: Callable[[str], Callable[..., Any]] = resolve_callable,
) -> list[str]:
    """The broken expectations, as sentences (empty when everything held)."""
    broken: list[str] = []
    device = outcome.profile
    result = outcome.result

    peak, budget, crash = outcome.peak_memory_mb, outcome.budget_mb, outcome.crash
    if peak is not None and budget is not None and peak > budget:
        broken.append(f"peak memory {peak:.1f} MB exceeds the {device} budget of {budget:.0f} MB")
    limit = expect.max_peak_memory_mb
    if limit is not None and peak is not None and peak > limit:
        broken.append(f"peak memory {peak:.1f} MB is above max_peak_memory_mb = {limit:g}")

    allowed = expect.lost_acked_writes
    if allowed is not None and crash is not None and crash.lost_writes > allowed:
        broken.append(
            f"{crash.lost_writes} acknowledged writes lost or changed in "
            f"{crash.cycles_run} {crash.mode} cycles (allowed: {allowed})\n{crash.text}"
        )

    floor = expect.min_throughput
    if floor is not None and result is not None:
        wanted = _rate_unit(floor.unit)
        have = _rate_unit(result.unit)
        if wanted != have:
            broken.append(
                f"min_throughput is in {wanted} but the workload counts {result.unit!r} ({have})"
            )
        elif floor_at_host_speed(expect, outcome):
            pass  # no device speed: `host_speed_floor` words it as a warning instead
        else:
            projected = outcome.projected_throughput
            figure = projected if projected is not None else outcome.throughput
            label = f"projected on {device} (estimate)" if projected is not None else "measured"
            if figure is not None and figure < floor.value:
                broken.append(
                    f"throughput {figure:.1f} {have} {label} is below the floor "
                    f"of {floor.value:g} {wanted}"
                )

    bound = expect.max_error_rate
    if bound is not None and result is not None and result.error_rate > bound:
        broken.append(
            f"error rate {result.error_rate:.3f} ({result.errors} of "
            f"{result.items + result.errors} attempts) is above max_error_rate = {bound:g}"
        )

    if expect.check is not None:
        check = resolve(expect.check)
        try:
            verdict = check(outcome)
        except AssertionError as exc:
            verdict = str(exc) or "assertion failed"
        if isinstance(verdict, str) and verdict:
            broken.append(f"check {expect.check}: {verdict}")
        elif verdict is not None and not isinstance(verdict, str):
            broken.append(
                f"check {expect.check} returned {type(verdict).__name__}; a check returns "
                "None when the outcome is fine, or a message (or raises AssertionError)"
            )
    return broken
