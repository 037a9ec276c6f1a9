"""What the system-call layer costs: tracing an fsync-bound write loop, and being loaded inert.

Both figures are ratios against a baseline measured in the same run:

* traced / untraced: one child with the library preloaded runs a 4 KiB write + fsync loop
  on the disk, each iteration timed, alternating an untraced iteration (tracing off: the
  library inert) with a traced one (every call recorded to a record file on tmpfs, where the
  crash harness keeps its records). Tracing is switched on around each traced iteration,
  outside the timed part, and an empty write lets the library resolve the fd before the timer
  starts. fsync times on a shared machine swing from 0.2 to 7 ms between seconds, so the
  figure is the median of the ratios of adjacent pairs (drift cancels within a pair); it must
  stay <= 1.5 (issue 12). On a loaded machine tracing's few microseconds of CPU wait for a
  turn on the CPU and inflate the wall ratio, so under xdist (``make test``) the bar is held
  by an estimate, the untraced median plus the CPU time (user + system) tracing added per
  iteration; the wall ratio itself is held where the test runs alone (``make bench``; the
  full size is a timing test).
* inert / absent: a 4 KiB pwrite loop over the same page (no fsync, no allocation: the
  cheapest call the library interposes, so the largest relative overhead) in a child with the
  library preloaded but not tracing, against the same loop in a child without it; the
  children alternate and the best round of each counts. An inert call costs one relaxed load
  and a branch (a few ns), far below what a shared 2-core machine lets separate processes
  resolve (the same loop swings 0.6-2.4 us/write between seconds at load 16): the figure is
  reported, not held to a bar; the test checks the loaded library leaves the writes intact.

Quick sizes run under ``make test``; the full sizes with ``--run-slow`` (``make bench``), which
prints the figures. They are in each benchmark's extra_info too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.syscalls import preload_env, unavailable_reason
from tests.syscalls.child import without_library

pytestmark = pytest.mark.skipif(
    unavailable_reason() is not None,
    reason=f"system-call library unavailable: {unavailable_reason()}",
)

FSYNC_LOOP = """
import json, os, sys, time
from pytest_edge.syscalls import tracing
root, n, records = sys.argv[1], int(sys.argv[2]), sys.argv[3]
flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
rec = os.open(records, flags)
data = b"x" * 4096
fds = {m: os.open(os.path.join(root, m), os.O_WRONLY | os.O_CREAT, 0o644) for m in ("u", "t")}
times = {"u": [], "t": []}
cpu = {"u": 0.0, "t": 0.0}

def step(mode):
    fd = fds[mode]
    os.write(fd, b"")  # untimed: the library resolves the fd afresh after tracing starts
    c = time.process_time()
    t = time.perf_counter()
    os.write(fd, data)
    os.fsync(fd)
    times[mode].append(time.perf_counter() - t)
    cpu[mode] += time.process_time() - c

for i in range(n):
    for mode in ("u", "t") if i % 2 else ("t", "u"):
        if mode == "t":
            with tracing(root, rec):
                step(mode)
        else:
            step(mode)
# wall times in pairs (same index); CPU seconds (user + system) of all iterations of a mode
print(json.dumps({"untraced": times["u"], "traced": times["t"], "cpu": cpu}))
"""

WRITE_LOOP = """
import json, os, sys, time
root, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(os.path.join(root, "w"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
data = b"x" * 4096
best = float("inf")
for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(n):
        os.pwrite(fd, data, 0)
    best = min(best, time.perf_counter() - t)
print(json.dumps({"best": best}))
"""

FULL = pytest.mark.slow


def _child(code: str, root: Path, *args: int | str, preload: bool) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    env = preload_env() if preload else without_library()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(root), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _show(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\nsyscall cost: {line}")


@pytest.mark.parametrize(
    "writes",
    [
        pytest.param(40, id="quick"),
        pytest.param(300, id="full", marks=[FULL, pytest.mark.timing]),
    ],
)
def test_traced_fsync_loop_ratio(
    benchmark: Any,
    tmp_path: Path,
    fast_state_dir: Path,
    writes: int,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    benchmark.group = "syscalls: traced fsync-bound write loop"
    # the data on the disk (tmp_path); the records where the crash harness keeps them (tmpfs)
    record_file = fast_state_dir / "records"
    times = benchmark.pedantic(
        _child,
        args=(FSYNC_LOOP, tmp_path / "root", writes, str(record_file)),
        kwargs={"preload": True},
        rounds=1,
    )
    untraced = statistics.median(times["untraced"])
    traced = statistics.median(times["traced"])
    ratio = statistics.median(
        t / u for t, u in zip(times["traced"], times["untraced"], strict=True)
    )
    # What tracing adds in CPU (user + system) per iteration, and the ratio it gives on a CPU
    # not shared with other work (an estimate): on a loaded machine every extra microsecond
    # of CPU waits for its turn, so the wall ratio measures the load as much as the layer.
    cpu_extra = (times["cpu"]["t"] - times["cpu"]["u"]) / writes
    estimate = (untraced + max(cpu_extra, 0.0)) / untraced
    benchmark.extra_info.update(
        untraced_ms=untraced * 1e3,
        traced_ms=traced * 1e3,
        ratio=ratio,
        cpu_extra_us=cpu_extra * 1e6,
        estimated_unshared_ratio=estimate,
        writes=writes,
    )
    _show(
        capsys,
        f"4 KiB write + fsync, median of {writes}: untraced {untraced * 1e3:.2f} ms, "
        f"traced {traced * 1e3:.2f} ms; median ratio of adjacent pairs {ratio:.2f} (bar 1.5); "
        f"tracing's CPU {cpu_extra * 1e6:.0f} us per iteration (estimated ratio on an "
        f"unshared CPU {estimate:.2f})",
    )
    # the traced iterations really were recorded: one write and one fsync record each
    records = record_file.read_text().splitlines()
    kinds = [json.loads(line)["t"] for line in records]
    assert kinds.count("write") == writes
    assert kinds.count("fsync") == writes
    assert estimate <= 1.5
    if request.node.get_closest_marker("timing") is not None:
        assert ratio <= 1.5  # the wall-clock bar: the full size, run alone (make bench)


@pytest.mark.parametrize(
    ("writes", "rounds"),
    [pytest.param(500, 3, id="quick"), pytest.param(20000, 5, id="full", marks=FULL)],
)
def test_inert_library_write_loop(
    benchmark: Any,
    tmp_path: Path,
    writes: int,
    rounds: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    benchmark.group = "syscalls: inert library on a write loop"
    absent: list[float] = []
    inert: list[float] = []
    for _ in range(5):  # alternate the children: drift of a loaded machine hits both
        absent.append(_child(WRITE_LOOP, tmp_path / "a", writes, rounds, preload=False)["best"])
        inert.append(_child(WRITE_LOOP, tmp_path / "b", writes, rounds, preload=True)["best"])
    benchmark.pedantic(
        _child, args=(WRITE_LOOP, tmp_path / "c", writes, 1), kwargs={"preload": True}, rounds=1
    )
    ratio = min(inert) / min(absent)
    per_call_ns = (min(inert) - min(absent)) / writes * 1e9
    benchmark.extra_info.update(
        absent_us_per_write=min(absent) / writes * 1e6,
        inert_us_per_write=min(inert) / writes * 1e6,
        ratio=ratio,
    )
    _show(
        capsys,
        f"4 KiB pwrite loop x{writes}: without the library {min(absent) / writes * 1e6:.2f} "
        f"us/write, loaded inert {min(inert) / writes * 1e6:.2f} us/write "
        f"(ratio {ratio:.2f}, {per_call_ns:+.0f} ns/call)",
    )
    assert (tmp_path / "b" / "w").read_bytes() == b"x" * 4096
