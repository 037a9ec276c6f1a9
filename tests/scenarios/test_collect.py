"""Scenario files collected and run by the plugin, end to end with pytester."""

from __future__ import annotations

import pytest

WORKLOADS = """
import threading
import time

def ok(state_dir, n=10):
    (state_dir / "out.txt").write_text("x" * n)
    return {"items": n, "errors": 1, "unit": "docs"}

def boom(state_dir):
    raise RuntimeError("backend exploded")

def bad_return(state_dir):
    return 42

def hang(state_dir):
    threading.Thread(target=spin, daemon=True).start()
    time.sleep(60)

def spin():
    while True:
        time.sleep(0.05)

def prepare(state_dir, n=10):
    (state_dir / "seed.txt").write_text("y" * n)

def needs_setup(state_dir, n=10):
    return {"items": len((state_dir / "seed.txt").read_text()), "unit": "docs"}

def check_details(outcome):
    if outcome.result.items != 10:
        return f"expected 10 items, got {outcome.result.items}"
    return None
"""


def _scenario(name: str, workload: str, extra: str = "") -> str:
    return f"""
[scenario]
name = "{name}"
description = "test scenario"
workload = "wl:{workload}"
timeout = 30
{extra}
"""


@pytest.fixture
def wl(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(wl=WORKLOADS)
    pytester.syspathinsert()
    return pytester


def test_scenario_passes_and_summary_shows_it(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        good=_scenario(
            "good",
            "ok",
            '[expect]\nmax_error_rate = 0.5\nmin_throughput = { value = 1, unit = "docs/s" }\n'
            'check = "wl:check_details"',
        ),
    )
    result = wl.runpytest("good.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*edge scenarios*",
            "device: host (every run)",
            "scenario*outcome*",
            "good *passed*0*docs/s*0.091*",
            "edge scenarios verdict: PASS: 1 passed, 0 failed, 0 skipped of 1 scenario runs",
        ]
    )


def test_broken_expectations_fail_with_each_reason(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        strict=_scenario(
            "strict",
            "ok",
            "[params]\nn = 3\n[expect]\nmax_error_rate = 0.1\n"
            'min_throughput = { value = 1e12, unit = "docs/s" }\ncheck = "wl:check_details"',
        ),
    )
    result = wl.runpytest("strict.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'strict' on host:",
            "  - throughput * docs/s measured is below the floor of 1e+12 docs/s",
            "  - error rate 0.250 (1 of 4 attempts) is above max_error_rate = 0.1",
            "  - check wl:check_details: expected 10 items, got 3",
            "*edge scenarios verdict: FAIL: 0 passed, 1 failed*",
        ]
    )


def test_setup_runs_before_the_workload_in_the_same_state_dir(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        prepared=_scenario(
            "prepared", "needs_setup", 'setup = "wl:prepare"\n[params]\nn = 7'
        ).replace("timeout = 30\n", "timeout = 30\n", 1),
    )
    result = wl.runpytest("prepared.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["prepared *passed*docs/s*"])


def test_unit_mismatch_is_a_failure_naming_both_units(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        units=_scenario(
            "units", "ok", '[expect]\nmin_throughput = { value = 1, unit = "tokens/s" }'
        ),
    )
    result = wl.runpytest("units.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*min_throughput is in tokens/s but the workload counts 'docs'*"])


def test_workload_error_fails_with_the_child_traceback(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", boom=_scenario("boom", "boom"))
    result = wl.runpytest("boom.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'boom' on host: *RuntimeError: backend exploded",
            "raised in the isolated child; child traceback:",
            "*wl.py*in boom*",
        ]
    )


def test_workload_returning_a_non_result_names_the_contract(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", bad=_scenario("bad", "bad_return"))
    result = wl.runpytest("bad.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*wl:bad_return returned int; a workload returns WorkloadResult*"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _scenario("x", "ok", "colour = 'red'"),
            "*scenario.colour: unknown key; allowed keys: *description*workload*",
        ),
        (
            '[scenario]\nname = "x"\n',
            "*scenario.workload: is required*",
        ),
        (
            _scenario("x", "ok", "timeout = 'soon'"),
            "*scenario.timeout='soon': must be a number of seconds from 0.001 to 2147483647*",
        ),
        (
            _scenario("x", "nowhere"),
            "*scenario.workload='wl:nowhere': 'wl' has no attribute 'nowhere'*",
        ),
    ],
)
def test_bad_file_errors_naming_file_and_key_while_others_run(
    wl: pytest.Pytester, body: str, message: str
) -> None:
    # A duplicate 'timeout' would be a TOML error; the parametrised body replaces the line.
    body = body.replace("timeout = 30\ntimeout", "timeout")
    wl.makefile(".toml", good=_scenario("good", "ok"), broken=body)
    result = wl.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*broken.toml*{message.lstrip('*')}"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_toml_without_scenario_table_is_ignored(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", config='[tool]\nname = "not a scenario"\n', good=_scenario("good", "ok"))
    result = wl.runpytest()
    result.stdout.fnmatch_lines(["collected 1 item"])
    result.assert_outcomes(passed=1)


def test_hung_workload_fails_at_its_time_limit_with_the_workloads_stacks(
    wl: pytest.Pytester,
) -> None:
    wl.makefile(".toml", hang=_scenario("hang", "hang").replace("timeout = 30", "timeout = 2"))
    result = wl.runpytest_subprocess("hang.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'hang' on host: IsolatedChildDied: isolated child died: "
            "no answer within the 2.0 s timeout (killed by pytest-edge)*",
            "stacks of the child's 2 threads at the timeout (most recent call first):",
        ]
    )
    result.stdout.fnmatch_lines(['  File "*wl.py", line * in spin'])  # the other thread
    result.stdout.fnmatch_lines(["Current thread 0x*", '  File "*wl.py", line * in hang'])
    # Not pytest-timeout's dump of the pytest process (1,307 lines of pytest and pluggy).
    assert "pluggy/_callers.py" not in result.stdout.str()
    assert "Timeout (>" not in result.stdout.str()
    assert len(result.stdout.lines) < 80
