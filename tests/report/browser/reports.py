"""The two reports the browser tests and ``make screenshots`` look at, made by real pytest runs.

* the demo: the shipped scenarios on a simulated Raspberry Pi (what ``make demo`` runs);
* a failing run: two failing tests (one with hostile markup in its message), a benchmark test
  that fails, a scenario whose expectation breaks, and a benchmark that regressed against
  three saved runs (each committed to a throw-away git repository, so the history chart has
  commits and dates).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 600

APP_TESTS = """
import os

import pytest

WORK = int(os.environ.get("EDGE_DEMO_WORK", "4000"))


def tokenize(n):
    return sum(len(str(i)) for i in range(n))


def test_tokenizer_counts_tokens():
    assert tokenize(10) == 10


def test_tokenizer_handles_markup():
    assert tokenize(3) == 4, "<img src=x onerror=alert(1)> tokens lost in [x](javascript:alert(1))"


def test_model_loads_from_a_very_long_path_name_that_wraps_on_a_phone_screen_somewhere():
    raise FileNotFoundError("/opt/models/quantized/llama-3.2-1b-instruct-q4_k_m.gguf")


def test_tokenize_speed(benchmark):
    benchmark(tokenize, WORK)


def test_decode_speed_and_result(benchmark):
    total = benchmark(tokenize, 200)
    assert total == 0, "decoded total differs from the reference"


@pytest.mark.skip(reason="needs a GPU")
def test_gpu_path():
    pass


@pytest.mark.xfail(reason="known: unicode normalisation")
def test_unicode():
    assert "é" == "e"
"""

WORKLOAD = """
def flaky(state_dir, n=40):
    errors = sum(1 for i in range(n) if i % 7 == 0)
    return {"items": n - errors, "errors": errors, "unit": "requests"}
"""

SCENARIO = """
[scenario]
name = "flaky-backend"
description = "A backend that fails one request in seven; the expectation allows none."
workload = "edge_demo_workload:flaky"
profile = "raspberry-pi"
timeout = 60

[expect]
max_error_rate = 0.0
"""


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> int:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return done.returncode


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=edge", "-c", "user.email=edge@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        check=True,
        timeout=60,
    )


def demo_report(out: Path) -> Path:
    """The demo's HTML report (the shipped scenarios on a simulated Raspberry Pi)."""
    report = out / "demo-report.html"
    code = _pytest(
        ROOT,
        "-p",
        "no:xdist",
        "scenarios/",
        "--edge-profile=raspberry-pi",
        f"--edge-report={report}",
        "--edge-seed=1",
    )
    if not report.exists():
        raise RuntimeError(f"the demo run (exit {code}) wrote no report")
    return report


def failing_report(work: Path) -> Path:
    """The HTML report of a run with failing tests, a failing scenario and a regression."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "test_app.py").write_text(APP_TESTS)
    (work / "edge_demo_workload.py").write_text(WORKLOAD)
    bench = ["-p", "no:xdist", "--benchmark-max-time=0.02", "--benchmark-min-rounds=20"]
    _git(work, "init", "-q")
    for run in range(3):
        (work / "RUN").write_text(str(run))
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", f"run {run}")
        _pytest(work, "test_app.py", "-k", "speed", *bench, "--benchmark-autosave")
    (work / "flaky.toml").write_text(SCENARIO)
    report = work / "failing-report.html"
    _pytest(
        work,
        *bench,
        "--edge-compare=history",
        f"--edge-report={report}",
        "--edge-seed=2",
        env={"EDGE_DEMO_WORK": "16000"},  # four times the work: a regression
    )
    if not report.exists():
        raise RuntimeError("the failing run wrote no report")
    return report
