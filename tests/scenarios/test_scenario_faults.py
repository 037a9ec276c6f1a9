"""Scenario faults: armed inside the workload child, validated when the file is read."""

from __future__ import annotations

import pytest

WORKLOADS = """
import json
import os
from pathlib import Path

from pytest_edge import ack


def fetch(n):
    return n


def calls(state_dir, n=20):
    errors = 0
    for i in range(n):
        try:
            fetch(i)
        except OSError:
            errors += 1
    return {"items": n - errors, "errors": errors, "unit": "calls"}


def hog(state_dir, mb=600):
    block = bytearray(mb * 1024 * 1024)
    block[::4096] = b"x" * len(range(0, len(block), 4096))
    return {"items": 1, "unit": "blocks"}


def _save(path, data):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def counter(state_dir, writes=30, careless=False):
    path = Path(state_dir) / "count.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    start = len(data)
    for i in range(start, start + writes):
        data[f"k{i}"] = i
        if careless:
            ack(f"k{i}", i)  # acknowledged before it is written: a bug the harness must catch
            _save(path, data)
        else:
            _save(path, data)
            ack(f"k{i}", i)
    return {"items": writes, "unit": "writes"}


def recover(state_dir):
    path = Path(state_dir) / "count.json"
    return json.loads(path.read_text()) if path.exists() else {}
"""


def _scenario(name: str, workload: str, extra: str = "", head: str = "") -> str:
    return f"""
[scenario]
name = "{name}"
description = "test scenario"
workload = "wl:{workload}"
timeout = 60
{head}
{extra}
"""


@pytest.fixture
def wl(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(wl=WORKLOADS)
    pytester.syspathinsert()
    return pytester


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
    wl.makefile(".toml", flaky=_scenario("flaky", "calls", faults))
    result = wl.runpytest("flaky.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*error rate 0.250 (5 of 20 attempts) is above max_error_rate = 0.1*",
            "flaky*host*failed*5*",
        ]
    )


def test_an_invalid_fault_plan_is_a_scenario_file_error(wl: pytest.Pytester) -> None:
    wl.makefile(".toml", bad=_scenario("bad", "calls", '[[faults]]\nkind = "meltdown"\n'))
    result = wl.runpytest("bad.toml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "invalid scenario file: */bad.toml: [[][[]faults[]][]]: "
            "plan.faults[[]0[]].kind='meltdown': unknown fault kind; use one of disk_full, *"
        ]
    )
