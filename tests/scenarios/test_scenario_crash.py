"""Scenario crash cycles through the crash harness (pytester)."""

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
        safe=_scenario("safe", "counter", CRASH.format(careless="false"), 'recover = "wl:recover"'),
    )
    result = wl.runpytest("safe.toml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["safe*host*passed*4 kill: 0 of * acked lost*"])


def test_acknowledging_before_writing_is_caught_as_lost_writes(wl: pytest.Pytester) -> None:
    wl.makefile(
        ".toml",
        careless=_scenario(
            "careless", "counter", CRASH.format(careless="true"), 'recover = "wl:recover"'
        ),
    )
    result = wl.runpytest("careless.toml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*acknowledged writes lost or changed in * kill cycles*"])
