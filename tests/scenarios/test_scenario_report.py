"""The scenarios section of the edge report (pytester)."""

from __future__ import annotations

import json
from pathlib import Path

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


@pytest.mark.parametrize("suffix", ["json", "md", "html"])
def test_the_edge_report_has_a_scenarios_section(wl: pytest.Pytester, suffix: str) -> None:
    wl.makefile(".toml", pi=_scenario("pi", "calls", head='profile = "raspberry-pi"'))
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
        one=_scenario("one", "calls", head='profile = "raspberry-pi"'),
        two=_scenario("two", "calls", head='profile = "raspberry-pi"'),
    )
    # Workers import the workload module too: `pythonpath` puts the folder on their sys.path.
    result = wl.runpytest("-n", "2", "-o", "pythonpath=.", "--edge-report=report.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*edge scenarios verdict: PASS: 2 passed*"])
    data = json.loads(Path(wl.path, "report.json").read_text())
    (section,) = [s for s in data["sections"] if s["key"] == "scenarios"]
    assert sorted(r["name"] for r in section["data"]["runs"]) == ["one", "two"]
