"""The calibration set: what it times, what it stores, and that it cleans up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edge.bench.calibration import (
    CPU_BOUND,
    Bracket,
    Calibration,
    Calibrator,
    busy_seconds,
    cpu_loop,
)
from pytest_edge.bench.data import BadBenchmarkInput, load_run
from tests.bench.samples import json_entry


def test_a_point_times_both_loops_and_close_removes_the_scratch_directory() -> None:
    calibrator = Calibrator(cpu_repeats=3, fsync_repeats=2)
    try:
        cpu, fsync = calibrator.point()
        directory = calibrator._directory
        assert directory is not None
        assert directory.is_dir()
    finally:
        calibrator.close()
    assert 0 < cpu < 1
    assert 0 < fsync < 5
    assert not directory.exists()
    calibrator.close()  # twice is harmless


def test_a_cpu_bound_bracket_says_so() -> None:
    calibrator = Calibrator(cpu_repeats=2, fsync_repeats=1)
    try:
        bracket = Bracket.start(calibrator)
        for _ in range(300):  # about 0.1 s: the scheduler's accounting needs a few ticks
            cpu_loop()
        calibration = bracket.finish(calibrator)
    finally:
        calibrator.close()
    assert calibration.cpu_fraction is not None
    assert calibration.cpu_fraction >= CPU_BOUND  # running or waiting for a CPU counts
    assert calibration.kinds() == ("cpu",)
    assert busy_seconds() > 0


def test_a_bracket_that_slept_is_not_cpu_bound() -> None:
    import time

    calibrator = Calibrator(cpu_repeats=1, fsync_repeats=1)
    try:
        bracket = Bracket.start(calibrator)
        time.sleep(0.05)  # blocked, as a test waiting on I/O is
        calibration = bracket.finish(calibrator)
    finally:
        calibrator.close()
    assert calibration.cpu_fraction is not None
    assert calibration.cpu_fraction < CPU_BOUND
    assert calibration.kinds() == ("cpu", "fsync")


def test_the_record_round_trips_through_pytest_benchmark_json(tmp_path: Path) -> None:
    record = Calibration((1e-3, 1.1e-3), (4e-4, 9e-3), 0.95)
    entry = json_entry("t::a", [1e-3] * 20, calibration=record)
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": [entry]}))
    assert load_run(path).results[0].calibration == record
    entry["extra_info"]["edge"]["calibration"]["cpu_fraction"] = 1.5
    path.write_text(json.dumps({"benchmarks": [entry]}))
    with pytest.raises(
        BadBenchmarkInput, match=r"calibration.cpu_fraction must be a number from 0"
    ):
        load_run(path)
    entry["extra_info"]["edge"]["calibration"] = {"cpu_s": [1e-3], "fsync_s": [1e-3, 1e-3]}
    path.write_text(json.dumps({"benchmarks": [entry]}))
    with pytest.raises(BadBenchmarkInput, match=r"calibration.cpu_s must be \[before, after\]"):
        load_run(path)
