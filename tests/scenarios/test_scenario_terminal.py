"""The scenario summary in the terminal: what a failed run measured, inert names, units.

Each test is a bug the terminal once showed (issue 14) and fails without its fix.
"""

from __future__ import annotations

import re

import pytest

from tests.scenarios.support import scenario_toml

WORKLOADS = """
import os
import signal

def fetch(i):
    return i

def crash_after_fault(state_dir, n=8):
    for i in range(n):
        fetch(i)  # the 4th call raises the injected OSError: the workload does not catch it
    return {"items": n}

def killed_after_fault(state_dir, n=8):
    for i in range(n):
        try:
            fetch(i)
        except OSError:
            os.kill(os.getpid(), signal.SIGKILL)  # dies as a crash would: no finally runs
    return {"items": n}

def grab_then_fail(state_dir, mb=64):
    block = bytearray(mb * 1024 * 1024)
    block[::4096] = b"x" * len(range(0, len(block), 4096))
    raise RuntimeError("gave up after allocating")

def bare_memory_error(state_dir):
    raise MemoryError()

def quick(state_dir):
    return {"items": 300000, "unit": "turns"}
"""

FAULT = """
[[faults]]
kind = "fail"
target = "wt.fetch"
exc = { type = "OSError", args = [5, "injected"] }
every = 4
"""


@pytest.fixture
def wt(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(wt=WORKLOADS)
    pytester.syspathinsert()
    return pytester


def _row(result: pytest.RunResult, name: str) -> str:
    rows = [line for line in result.stdout.lines if line.startswith(f"{name} ")]
    assert rows, result.stdout.str()
    return rows[0]


def test_faults_fired_survive_a_workload_that_raised(wt: pytest.Pytester) -> None:
    toml = scenario_toml("crashy", "crash_after_fault", FAULT).replace("wl:", "wt:")
    wt.makefile(".toml", crashy=toml)
    result = wt.runpytest("crashy.toml")
    result.assert_outcomes(failed=1)
    assert re.search(r"failed\s+1\s", _row(result, "crashy")), _row(result, "crashy")


def test_faults_fired_survive_a_child_killed_before_it_could_report(wt: pytest.Pytester) -> None:
    toml = scenario_toml("killed", "killed_after_fault", FAULT).replace("wl:", "wt:")
    wt.makefile(".toml", killed=toml)
    result = wt.runpytest("killed.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*killed by signal SIGKILL*"])
    assert re.search(r"failed\s+1\s", _row(result, "killed")), _row(result, "killed")


def test_a_failed_scenario_shows_the_peak_its_child_reached(wt: pytest.Pytester) -> None:
    toml = scenario_toml("grab", "grab_then_fail").replace("wl:", "wt:")
    wt.makefile(".toml", grab=toml)
    result = wt.runpytest("grab.toml")
    result.assert_outcomes(failed=1)
    peak = re.search(r"\s([\d.]+) / -\s", _row(result, "grab"))
    assert peak is not None, _row(result, "grab")
    assert float(peak.group(1)) >= 60  # the 64 MB it held, not "-" or 0.0


def test_a_peak_that_was_not_measured_says_so() -> None:
    from pytest_edge.scenarios.record import peak_text

    assert peak_text(None, 4020) == "not measured / 4020"
    assert peak_text(0.0, 4020) == "< 0.1 / 4020"
    assert peak_text(60.06, None) == "60.1 / -"


def test_a_bare_memory_error_leaves_no_empty_parentheses(wt: pytest.Pytester) -> None:
    toml = scenario_toml("bare", "bare_memory_error", head='profile = "pi-zero-2w"')
    wt.makefile(".toml", bare=toml.replace("wl:", "wt:"))
    result = wt.runpytest("bare.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MemoryError in the workload under the device's memory budget*"])
    assert "MB ()" not in result.stdout.str()


def test_control_sequences_in_a_scenario_name_are_printed_inert(wt: pytest.Pytester) -> None:
    name = "evil\\u001b]0;pwned\\u0007\\u001b[2J"  # TOML escapes: OSC title, clear screen
    toml = scenario_toml(name, "crash_after_fault", FAULT).replace("wl:", "wt:")
    wt.makefile(".toml", evil=toml)
    result = wt.runpytest("evil.toml", "-v")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J" in out


def test_rates_read_in_units_and_the_table_fits_120_columns(wt: pytest.Pytester) -> None:
    wt.makefile(".toml", quick=scenario_toml("quick", "quick").replace("wl:", "wt:"))
    result = wt.runpytest("quick.toml")
    result.assert_outcomes(passed=1)
    row = _row(result, "quick")
    assert re.search(r"\b\d{1,3}(\.\d+)?[kMG]? turns/s", row), row  # not 9040000000.0
    assert "e+" not in row
    start = result.stdout.lines.index(next(x for x in result.stdout.lines if "edge scenarios" in x))
    assert all(len(line) <= 120 for line in result.stdout.lines[start + 1 :])
