"""Merging fresh processes' runs (`pytest_edge.bench.repeat`) and the drift between them."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.bench import repeat as repeat_module
from pytest_edge.bench.compare import Verdict, compare_history, compare_results
from pytest_edge.bench.data import BadBenchmarkInput, BenchmarkResult, load_run, run_from_json
from pytest_edge.bench.drift import process_drift, process_times
from pytest_edge.bench.repeat import check_plan, merge, repeat, save_path, write
from tests.bench.samples import json_entry, noisy, result, run


def document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"machine_info": {"node": "here"}, "commit_info": {}, "benchmarks": list(entries)}


def test_merged_stats_cover_every_process_and_keep_each_processs_statistics(
    tmp_path: Path,
) -> None:
    a = [2e-3, 1e-3, 3e-3, 1.5e-3]
    b = [5e-3, 4e-3, 6e-3]
    merged = merge(
        [
            document(json_entry("t", a, "f.py::t"), json_entry("u", [1e-3, 2e-3], "f.py::u")),
            document(json_entry("t", b, "f.py::t"), json_entry("u", [1e-3, 1e-3], "f.py::u")),
        ]
    )
    loaded = load_run(write(merged, tmp_path / "merged.json")).by_name()
    t = loaded["f.py::t"]
    assert t.rounds == len(a) + len(b) == len(t.samples or ())
    assert (t.minimum, t.maximum) == (1e-3, 6e-3)
    assert t.median == pytest.approx(float(np.median(a + b)))
    processes = t.edge["processes"]
    assert [p["rounds"] for p in processes] == [4, 3]
    assert [p["min"] for p in processes] == [1e-3, 4e-3]
    assert processes[1]["median"] == pytest.approx(5e-3)
    assert process_times(t, "min") == [1e-3, 4e-3]
    assert loaded["f.py::u"].rounds == 4
    assert merged["machine_info"] == {"node": "here"}


def test_a_benchmark_missing_from_one_process_is_named() -> None:
    with pytest.raises(BadBenchmarkInput, match=r"u: ran in process 1 but not in process 2"):
        merge(
            [
                document(json_entry("t", [1e-3, 2e-3], "f.py::t"), json_entry("u", [1e-3, 1e-3])),
                document(json_entry("t", [1e-3, 2e-3], "f.py::t")),
            ]
        )


@pytest.mark.parametrize(
    ("processes", "budget", "words"),
    [
        (1, None, "--processes=1: need 2"),
        (0, 10.0, "--processes=0"),
        (3, 0.0, "--budget=0.0"),
        (3, -5.0, "--budget=-5.0"),
        (3, math.nan, "--budget=nan"),
        (3, math.inf, "--budget=inf"),
    ],
)
def test_bad_plans_name_the_value(processes: int, budget: float | None, words: str) -> None:
    with pytest.raises(BadBenchmarkInput, match=words.replace(".", r"\.")):
        check_plan(processes, budget)


def test_save_numbers_after_the_saved_runs_as_pytest_benchmark_does(tmp_path: Path) -> None:
    folder = tmp_path / "Linux-x"
    assert save_path(tmp_path, "base", "Linux-x") == folder / "0001_base.json"
    folder.mkdir()
    (folder / "0003_old.json").write_text("{}")
    (folder / "0001_older.json").write_text("{}")
    assert save_path(tmp_path, "new", "Linux-x") == folder / "0004_new.json"
    with pytest.raises(BadBenchmarkInput, match="a plain name"):
        save_path(tmp_path, "../x", "Linux-x")


def fake_processes(monkeypatch: pytest.MonkeyPatch, seconds_each: float) -> tuple[list[int], Any]:
    """Processes that take *seconds_each* on a fake clock (the budget logic, not timing)."""
    now = [0.0]
    started: list[int] = []

    def run_process(index: int, out: Path, *args: object) -> dict[str, Any]:
        started.append(index)
        now[0] += seconds_each
        return document(json_entry("t", [1e-3 * (index + 1), 2e-3], "f.py::t"))

    monkeypatch.setattr(repeat_module, "run_process", run_process)
    return started, lambda: now[0]


@pytest.mark.parametrize(
    ("budget", "ran"),
    [(None, 5), (100.0, 5), (1.0, 2), (25.0, 2), (30.0, 3), (49.0, 4)],
)
def test_the_budget_stops_before_a_process_that_would_pass_it_after_two(
    monkeypatch: pytest.MonkeyPatch, budget: float | None, ran: int
) -> None:
    started, clock = fake_processes(monkeypatch, 10.0)
    done = repeat(5, [], budget, clock=clock)
    assert done.ran == len(started) == ran
    assert done.stopped_by_budget is (ran < 5)
    assert len(done.document["benchmarks"][0]["extra_info"]["edge"]["processes"]) == ran
    run_from_json(done.document, "merged")


def with_processes(base: BenchmarkResult, mins: list[float]) -> BenchmarkResult:
    processes = [{"min": m, "p10": m * 1.01, "median": m * 1.02, "rounds": 20} for m in mins]
    return replace(base, extra_info={"edge": {"processes": processes}})


SPREAD = [1.0e-3, 1.25e-3, 0.85e-3, 1.15e-3, 0.95e-3]  # processes 25% apart
TIGHT = [1.0e-3, 1.01e-3, 0.99e-3, 1.0e-3, 1.005e-3]


def test_a_comparison_against_a_multi_process_run_allows_the_spread_between_processes() -> None:
    base = result("b", noisy(1, n=200, sigma=0.01))
    slower = result("b", noisy(2, factor=1.3, n=200, sigma=0.01))
    # Two single runs: nothing measured the drift, so the prior hides a 30% change.
    assert compare_results(base, slower, 0.10).verdict is Verdict.INCONCLUSIVE
    tight = compare_results(with_processes(base, TIGHT), slower, 0.10)
    assert tight.verdict is Verdict.SLOWER
    assert tight.drift is not None
    assert "drift from 5 processes: " in tight.drift.source
    assert "drift from 5 processes" in tight.note
    wide = compare_results(with_processes(base, SPREAD), slower, 0.10)
    assert wide.verdict is Verdict.INCONCLUSIVE
    assert wide.drift is not None
    assert wide.drift.relative > 0.3
    assert "drift from 5 processes" in wide.note


def test_a_multi_process_runs_time_is_its_median_process_not_its_luckiest() -> None:
    base = with_processes(result("b", noisy(1, n=200, sigma=0.01)), TIGHT)
    faster_process = with_processes(base, [0.5e-3, *TIGHT[1:]])  # one lucky process
    judged = compare_results(base, faster_process, 0.10)
    assert judged.baseline_median == judged.current_median == pytest.approx(1.0e-3)


def test_a_history_with_a_multi_process_run_allows_its_spread() -> None:
    history = [run(result("b", noisy(10 + i, n=100, sigma=0.01))) for i in range(3)]
    current = with_processes(result("b", noisy(9, n=100, sigma=0.01)), SPREAD)
    judged = compare_history(history, run(current), 0.10).results[0]
    assert judged.drift is not None
    assert "drift from 5 processes" in judged.drift.source


@given(st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=12))
def test_process_drift_is_the_robust_spread_of_the_processes(mins: list[float]) -> None:
    drift = process_drift([with_processes(result("b", None), mins)], "min")
    assert drift is not None
    assert drift.log >= 0
    assert f"from {len(mins)} processes" in drift.source
    # One process is not a spread; and the record survives a round trip through JSON.
    assert process_drift([with_processes(result("b", None), mins[:1])], "min") is None
    assert json.loads(json.dumps({"m": mins}))["m"] == mins
