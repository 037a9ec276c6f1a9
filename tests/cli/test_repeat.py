"""`pytest-edge repeat`: fresh processes merged into one saved run, its bad input, Ctrl-C."""

from __future__ import annotations

import glob
import os
import signal
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from pytest_edge.bench.data import load_run, saved_runs
from pytest_edge.cli import main
from tests.processes import READY_TIMEOUT, descendants, seconds_until_gone, start, stop, wait_for

BENCH = """
def work(n):
    return sum(i * i for i in range(n))

def test_cpu(edge_benchmark):
    edge_benchmark(work, 200)

def test_not_a_benchmark():
    pass
"""
FAST = "--benchmark-max-time=0.01"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "test_bench.py").write_text(BENCH)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_spent_budget_stops_after_two_processes_and_the_merged_run_is_saved_and_compared(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["repeat", "--processes", "5", "--budget", "0.01", "--save", "base", "--", FAST]) == 0
    )
    err = capsys.readouterr().err
    assert "ran 2 of 5 processes" in err
    assert "--budget of 0.01 s was spent" in err
    saved = saved_runs(project / ".benchmarks")  # where --edge-compare=latest looks
    assert [p.name for p in saved] == ["0001_base.json"]
    run = load_run(saved[0])
    assert [r.name for r in run.results] == ["test_cpu"]
    cpu = run.results[0]
    processes = cpu.edge["processes"]
    assert len(processes) == 2
    assert cpu.rounds == sum(p["rounds"] for p in processes) == len(cpu.samples or ())
    assert cpu.minimum == min(p["min"] for p in processes)
    assert main(["compare", str(saved[0]), str(saved[0])]) == 0
    assert "drift from 2 processes: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--processes", "1", "--output", "o.json"], "--processes=1: need 2 or more"),
        (["--processes", "3", "--budget", "-1", "--output", "o.json"], "--budget=-1.0"),
        (["--processes", "3", "--budget", "nan", "--output", "o.json"], "--budget=nan"),
        (["--processes", "3"], "one of --save NAME or --output FILE"),
        (["--processes", "3", "--save", "a", "--output", "o.json"], "one of --save"),
        (["--processes", "3", "--save", "../up"], "a plain name"),
    ],
)
def test_bad_input_exits_2_naming_it_before_any_process(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    assert main(["repeat", *args]) == 2
    assert words in capsys.readouterr().err
    assert not (project / "o.json").exists()


def test_no_benchmark_selected_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["repeat", "--processes", "2", "--output", "o.json", "--", "-k", "no_such_test"]
    assert main(args) == 2
    assert "no benchmark selected by -k no_such_test" in capsys.readouterr().err
    assert not (project / "o.json").exists()


def test_a_failing_child_pytest_exits_2_naming_the_process(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "test_bench.py").write_text(BENCH + "\ndef test_broken(benchmark):\n    1 / 0\n")
    assert main(["repeat", "--processes", "2", "--output", "o.json", "--", FAST]) == 2
    err = capsys.readouterr().err
    assert "process 1: pytest exited with 1" in err
    assert "ZeroDivisionError" in err
    assert "Traceback" not in err.split("pytest exited")[0]
    assert not (project / "o.json").exists()


BLOCKING = """
import os, select

def test_blocks(benchmark):
    ready = os.path.join(os.environ["REPEAT_READY"], "ready")
    open(ready + ".tmp", "w").close()
    os.replace(ready + ".tmp", ready)
    select.select([], [], [])
"""
CLI = "import sys; from pytest_edge.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and psutil children")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_ends_the_child_and_removes_the_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    (tmp_path / "test_block.py").write_text(BLOCKING)
    monkeypatch.setenv("REPEAT_READY", str(tmp_path))
    proc = start(
        [sys.executable, "-c", CLI, "repeat", "--processes", "2", "--output", "o.json"], tmp_path
    )
    processes: list[psutil.Process] = []
    try:
        wait_for((tmp_path / "ready").exists, READY_TIMEOUT, "the first process", tmp_path)
        processes = descendants(proc.pid)
        assert len(processes) == 1, processes
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 128 + sig
        assert seconds_until_gone(processes) < 2.0
        scratch = os.path.join(tempfile.gettempdir(), f"pytest-edge-repeat-{proc.pid}-*")
        assert glob.glob(scratch) == []
        assert f"stopped by {sig.name}" in (tmp_path / "run.out").read_text()
        assert not (tmp_path / "o.json").exists()
    finally:
        stop(proc, processes)
