"""Reading pytest-benchmark JSON: clear errors for files that are not benchmark data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edge.bench.data import (
    BadBenchmarkInput,
    history_files,
    load_run,
    saved_runs,
    storage_path,
)

ENTRY = {
    "name": "test_a",
    "fullname": "t.py::test_a",
    "group": None,
    "extra_info": {"edge": {"samples": [1e-3, 2e-3], "unit": "docs", "items": 3}},
    "stats": {"median": 1.5e-3, "q1": 1e-3, "q3": 2e-3, "min": 1e-3, "max": 2e-3, "rounds": 2},
}


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_reads_samples_from_extra_info_when_stats_have_no_data(tmp_path: Path) -> None:
    run = load_run(write(tmp_path / "r.json", {"benchmarks": [ENTRY], "machine_info": {"a": 1}}))
    (result,) = run.results
    assert result.samples == (1e-3, 2e-3)
    assert result.edge["unit"] == "docs"
    assert run.machine_info == {"a": 1}


def test_prefers_pytest_benchmarks_own_data(tmp_path: Path) -> None:
    entry = {**ENTRY, "stats": {**ENTRY["stats"], "data": [5e-3, 6e-3]}}  # type: ignore[dict-item]
    run = load_run(write(tmp_path / "r.json", {"benchmarks": [entry]}))
    assert run.results[0].samples == (5e-3, 6e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such benchmark file"),
        ("{not json", "cannot read it as JSON"),
        ({"foo": 1}, "not a pytest-benchmark JSON file"),
        ({"benchmarks": [{"name": "x"}]}, "needs 'fullname' and 'stats'"),
        ({"benchmarks": [{"fullname": "x", "stats": {"median": "fast"}}]}, "stats.median"),
    ],
)
def test_bad_files_are_named_with_the_reason(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        write(path, content)
    with pytest.raises(BadBenchmarkInput, match=message):
        load_run(path)


def test_saved_runs_in_order_and_storage_paths(tmp_path: Path) -> None:
    folder = tmp_path / "Linux-CPython-3.11-64bit"
    folder.mkdir()
    for name in ["0002_b.json", "0001_a.json", "notes.json", "0010_c.json"]:
        write(folder / name, {"benchmarks": []})
    assert [p.name for p in saved_runs(tmp_path)] == ["0001_a.json", "0002_b.json", "0010_c.json"]
    assert saved_runs(tmp_path / "missing") == []
    assert storage_path("file://./x") == Path("./x")
    assert storage_path(None) == Path(".benchmarks")
    with pytest.raises(BadBenchmarkInput, match="only file storage"):
        storage_path("elasticsearch+http://host:9200/")
    assert len(history_files(tmp_path)) == 4
    with pytest.raises(BadBenchmarkInput, match="no such history directory"):
        history_files(tmp_path / "nope")
