"""Run a ``python -c`` child with the system-call library preloaded and read its records.

The child gets ``ROOT`` (the traced/faulted directory, a realpath), ``REC`` (an O_APPEND fd of
the record file) and the layer's API imported; it runs in its own session so a kill point's
SIGKILL of the process group reaches the child alone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.syscalls import LIBRARY_NAME, preload_env, unavailable_reason

REASON = unavailable_reason()
needs_library = pytest.mark.skipif(
    REASON is not None, reason=f"system-call library unavailable: {REASON}"
)

PREAMBLE = """\
import base64, json, os, sys
from pytest_edge.syscalls import KillAt, arm, tracing, traced_calls, active
ROOT = sys.argv[1]
REC = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
def out(**values):
    print("OUT " + json.dumps(values), flush=True)
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    records: list[dict[str, Any]]
    out: dict[str, Any] = field(default_factory=dict)

    def of(self, t: str) -> list[dict[str, Any]]:
        """The records of type `t`."""
        return [r for r in self.records if r["t"] == t]

    def written(self, path: str) -> bytes:
        """The bytes the write records put into `path`, applied in order at their offsets."""
        data = bytearray()
        for r in self.records:
            if r["t"] == "write" and r["path"] == path:
                chunk = base64.b64decode(r["data"])
                end = r["off"] + len(chunk)
                if len(data) < end:
                    data.extend(b"\0" * (end - len(data)))
                data[r["off"] : end] = chunk
        return bytes(data)


def without_library() -> dict[str, str]:
    """os.environ without the library in LD_PRELOAD (pytest itself may run with it)."""
    env = dict(os.environ)
    kept = [
        p
        for p in env.pop("LD_PRELOAD", "").replace(":", " ").split()
        if os.path.basename(p) != LIBRARY_NAME
    ]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    return env


def run(code: str, root: Path, *, preload: bool = True, timeout: float = 60) -> Run:
    """Run `code` (after the preamble) in a child traced nowhere until it says so."""
    root.mkdir(parents=True, exist_ok=True)
    record = root.parent / f"{root.name}.records"
    env = preload_env() if preload else without_library()
    env.pop("PYTEST_XDIST_WORKER", None)
    script = PREAMBLE + textwrap.dedent(code)
    with subprocess.Popen(
        [sys.executable, "-c", script, os.path.realpath(root), str(record)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=root.parent,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # its whole session goes (anything it forked), while the leader is not reaped yet
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    records = []
    if record.exists():
        records = [json.loads(line) for line in record.read_text().splitlines()]
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("OUT "):
            out.update(json.loads(line[4:]))
    return Run(proc.returncode, stdout, stderr, records, out)


def ok(code: str, root: Path, *, timeout: float = 60) -> Run:
    """`run` that must exit 0 (its stderr in the failure message otherwise)."""
    result = run(code, root, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result
