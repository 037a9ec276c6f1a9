"""What installing pytest-edge costs a project's pytest runs that use none of it.

pytest loads the ``edge`` entry point in every run once pytest-edge is installed. An unused
pytest-edge must cost (almost) nothing: its rooms import only cheap modules, and everything
heavy (psutil, multiprocessing, numpy, the profile catalog, the report renderers, benchmark
machine info) waits for an option, marker or fixture that needs it.

- fast checks (every run): the modules importing the rooms, and a one-test run, load;
- the benchmark (``--run-slow``, ``make bench``): a one-test pytest run with pytest-edge
  against the same run with ``-p no:edge``, interleaved in this session; pytest-edge's own
  share (median of the paired differences) must stay at or under 0.05 s. Both arms run with a
  bytecode cache, as a user's install does (without one, every start compiles every module,
  pytest's own included, and the numbers say more about the compiler than about the plugin).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.plugin import ROOMS

# Modules an unused pytest-edge must not load (measured with `python -X importtime`).
HEAVY = (
    "numpy",
    "psutil",
    "faker",
    "sqlite3",
    "multiprocessing",
    "ctypes",
    "tomllib",
    "pytest_edge.machine",
    "pytest_edge.device.isolated",
    "pytest_edge.device.view",
    "pytest_edge.profiles.catalog",
    "pytest_edge.faults.injector",
    "pytest_edge.crash.harness",
    "pytest_edge.bench.session",
    "pytest_edge.bench.throughput",
    "pytest_edge.report.write",
)
# Other plugins' own costs are not pytest-edge's: both arms run without them.
OTHERS_OFF = ("-p", "no:faker", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")
BUDGET_S = 0.05
ROUNDS = 15


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


@pytest.fixture
def one_test(tmp_path: Path) -> Path:
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    return tmp_path


def test_importing_the_plugin_and_its_rooms_loads_nothing_heavy() -> None:
    rooms = "; ".join(f"import {room}" for room in ("pytest_edge.plugin", *ROOMS))
    bare = _loaded_after("import pytest")
    edge = _loaded_after(f"import pytest; {rooms}")
    assert _heavy(edge - bare) == []


def test_a_one_test_run_without_edge_options_loads_nothing_heavy(one_test: Path) -> None:
    def run(*extra: str) -> str:
        args = [*OTHERS_OFF, "-q", "-p", "no:xdist", *extra, str(one_test / "test_one.py")]
        return f"import pytest\nassert pytest.main({args!r}) == 0"

    without = _loaded_after(run("-p", "no:edge"))
    with_edge = _loaded_after(run())
    assert "pytest_edge.device.plugin" in with_edge
    assert _heavy(with_edge - without) == []


def _timed_run(folder: Path, *extra: str) -> float:
    # As on a user's machine: compiled modules cached (here under the test's folder, so the
    # checkout is left as it was), whatever PYTHONDONTWRITEBYTECODE this shell has.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", *OTHERS_OFF, "-q", *extra, "test_one.py"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.benchmark(group="edge-startup")
def test_unused_edge_costs_a_one_test_run_at_most_50ms(benchmark: Any, one_test: Path) -> None:
    without: list[float] = []
    with_edge: list[float] = []

    def baseline_first() -> None:  # untimed by pytest-benchmark: the -p no:edge arm of a pair
        without.append(_timed_run(one_test, "-p", "no:edge"))

    def edge_run() -> None:
        with_edge.append(_timed_run(one_test))

    _timed_run(one_test)  # fills the bytecode cache for both arms
    benchmark.pedantic(edge_run, setup=baseline_first, rounds=ROUNDS, warmup_rounds=1)
    pairs = list(zip(with_edge, without, strict=True))[-ROUNDS:]
    extra = statistics.median(a - b for a, b in pairs)
    benchmark.extra_info["edge_share_s"] = round(extra, 4)
    benchmark.extra_info["ratio_vs_no_edge"] = round(
        statistics.median(with_edge) / statistics.median(without), 3
    )
    benchmark.extra_info["no_edge_median_s"] = round(statistics.median(without), 4)
    assert extra <= BUDGET_S, (
        f"pytest-edge unused costs {extra * 1000:.0f} ms per run (budget {BUDGET_S * 1000:.0f} ms)"
    )
