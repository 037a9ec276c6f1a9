"""Workloads and scenario files shared by the scenario plugin's pytester tests."""

from __future__ import annotations

# Written as module `wl` into each pytester directory (the `wl` fixture in conftest.py).
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


def scenario_toml(name: str, workload: str, extra: str = "", head: str = "") -> str:
    """A scenario file running ``wl:<workload>``; `head` goes in [scenario], `extra` after it."""
    return f"""
[scenario]
name = "{name}"
description = "test scenario"
workload = "wl:{workload}"
timeout = 60
{head}
{extra}
"""
