"""`pytest-edge compare`: exit codes 0/1/2/3, formats, history, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edge.bench.calibration import Calibration
from pytest_edge.cli import main
from tests.bench.samples import CALM, json_entry


def write_run(
    path: Path,
    factor: float,
    seed: int,
    names: tuple[str, ...] = ("t::a",),
    calibration: Calibration | None = CALM,
) -> Path:
    rng = np.random.default_rng(seed)
    benchmarks = []
    for name in names:
        data = (rng.lognormal(np.log(1e-3), 0.03, 40) * factor).tolist()
        benchmarks.append(json_entry(name, data, calibration=calibration))
    path.write_text(json.dumps({"benchmarks": benchmarks, "machine_info": {"node": "n"}}))
    return path


def test_no_regression_exits_0_and_prints_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "compare",
            str(write_run(tmp_path / "a.json", 1.0, 1)),
            str(write_run(tmp_path / "b.json", 1.0, 2)),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "t::a" in out
    assert "same" in out
    assert "smallest detectable" in out


def test_regression_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_run(tmp_path / "a.json", 1.0, 1)
    assert main(["compare", str(base), str(write_run(tmp_path / "b.json", 1.3, 2))]) == 1
    assert "slower (REGRESSION)" in capsys.readouterr().out
    # the same change under a 40% threshold is not a regression
    assert main(["compare", "--threshold", "0.40", str(base), str(tmp_path / "b.json")]) == 0


@pytest.mark.parametrize("fmt", ["md", "json", "html"])
def test_formats_and_output_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    args = [
        "compare",
        str(write_run(tmp_path / "a.json", 1.0, 1)),
        str(write_run(tmp_path / "b.json", 1.3, 2)),
        "--output",
        str(out),
    ]
    assert main(args) == 1
    text = out.read_text()
    if fmt == "json":
        verdict = json.loads(text)["sections"][0]["data"]["comparison"]["results"][0]["verdict"]
        assert verdict == "slower"
    else:
        assert "slower" in text
    assert main([*args[:3], "--format", "md", "--output", str(tmp_path / "x.html")]) == 1
    assert (tmp_path / "x.html").read_text().startswith("## pytest-edge compare")


def test_history_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / ".benchmarks" / "Linux"
    history.mkdir(parents=True)
    for i, factor in enumerate([0.95, 1.0, 1.08]):
        write_run(history / f"000{i + 1}_run.json", factor, i)
    current = write_run(tmp_path / "now.json", 1.12, 9)
    assert main(["compare", "--history", str(tmp_path / ".benchmarks"), str(current)]) == 0
    assert "history of 3 runs" in capsys.readouterr().out
    slow = write_run(tmp_path / "slow.json", 1.5, 9)
    assert main(["compare", "--history", str(tmp_path / ".benchmarks"), str(slow)]) == 1


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda d: ["compare", str(d / "missing.json"), str(d / "b.json")],
            "no such benchmark file",
        ),
        (lambda d: ["compare", str(d / "b.json")], "expected BASELINE CURRENT, got 1 file"),
        (lambda d: ["compare", str(d / "bad.json"), str(d / "b.json")], "not a pytest-benchmark"),
        (lambda d: ["compare", str(d / "other.json"), str(d / "b.json")], "no common benchmarks"),
        (lambda d: ["compare", "--history", str(d / "nope"), str(d / "b.json")], "no such history"),
        (
            lambda d: [
                "compare",
                str(d / "b.json"),
                str(d / "b.json"),
                "--output",
                str(d / "r.txt"),
            ],
            "cannot tell the format",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_args,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    write_run(tmp_path / "b.json", 1.0, 1)
    write_run(tmp_path / "other.json", 1.0, 1, names=("t::zzz",))
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(make_args(tmp_path)) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["ten", "10x", "-1"])
def test_bad_threshold_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", f"--threshold={bad}", "a.json", "b.json"])
    assert exit_info.value.code == 2
    assert "argument --threshold: threshold" in capsys.readouterr().err


def test_without_calibration_a_30_percent_change_is_inconclusive_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs with nothing known about the drift between them: the prior (100%)."""
    base = write_run(tmp_path / "a.json", 1.0, 1, calibration=None)
    slow = write_run(tmp_path / "b.json", 1.3, 2, calibration=None)
    assert main(["compare", str(base), str(slow)]) == 0
    out = capsys.readouterr().out
    assert "inconclusive" in out
    assert "slower (REGRESSION)" not in out
    assert "Inconclusive: 1." in out
    assert main(["compare", "--fail-on-inconclusive", str(base), str(slow)]) == 3
    # far beyond the prior it is still a regression
    much = write_run(tmp_path / "c.json", 3.0, 3, calibration=None)
    assert main(["compare", "--fail-on-inconclusive", str(base), str(much)]) == 1


def test_calibration_that_moved_makes_the_change_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_run(tmp_path / "a.json", 1.0, 1)
    moved = Calibration((1.4e-3, 1.4e-3), (5e-4, 5e-4), 1.0)  # the CPU loop 40% slower
    slow = write_run(tmp_path / "b.json", 1.3, 2, calibration=moved)
    assert main(["compare", str(base), str(slow), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)["sections"][0]["data"]["comparison"]["results"]
    assert result[0]["verdict"] == "inconclusive"
    assert result[0]["drift"] == pytest.approx(0.4)
    assert "cpu loop moved 40% between the runs" in result[0]["drift_source"]
    assert result[0]["detectable_change"] > 0.4


def test_output_never_overwrites_an_input_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_run(tmp_path / "a.json", 1.0, 1)
    cur = write_run(tmp_path / "b.json", 1.0, 2)
    before = cur.read_bytes()
    assert main(["compare", str(base), str(cur), "--output", str(cur)]) == 2
    assert "is one of the input files" in capsys.readouterr().err
    assert cur.read_bytes() == before
    history = tmp_path / "h"
    history.mkdir()
    saved = write_run(history / "0001_x.json", 1.0, 3)
    assert main(["compare", "--history", str(history), str(cur), "--output", str(saved)]) == 2
    assert json.loads(saved.read_text())["benchmarks"]


# --- bad input: exit 2 naming the file and the field, never a traceback, never 1 ----------

STAT_FIELDS = ("median", "min", "max", "q1", "q3")
BAD_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1e-3, -5.0])
BAD_VALUES = st.one_of(
    BAD_NUMBERS,
    st.sampled_from(["1ms", None, True, [1e-3], {"v": 1e-3}]),
)


def _document(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data = rng.lognormal(np.log(1e-3), 0.03, 40).tolist()
    return {"benchmarks": [json_entry("t::a", data, calibration=CALM)], "machine_info": {}}


def _compare_bad(tmp_path: Path, document: Any, capsys: pytest.CaptureFixture[str]) -> str:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_document(1)))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))  # NaN and Infinity as JSON's common extension
    capsys.readouterr()
    for order in ([good, bad], [bad, good]):
        assert main(["compare", *map(str, order)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(bad) in err
    return err


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(STAT_FIELDS), value=BAD_VALUES)
def test_a_bad_statistic_is_exit_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any
) -> None:
    document = _document(2)
    document["benchmarks"][0]["stats"][field] = value
    err = _compare_bad(tmp_path, document, capsys)
    assert f"stats.{field}" in err


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(index=st.integers(0, 39), value=BAD_VALUES)
def test_a_bad_sample_is_exit_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index: int, value: Any
) -> None:
    document = _document(3)
    document["benchmarks"][0]["stats"]["data"][index] = value
    err = _compare_bad(tmp_path, document, capsys)
    assert f"stats.data[{index}]" in err


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(["cpu_s", "fsync_s"]), side=st.integers(0, 1), value=BAD_VALUES)
def test_a_bad_calibration_is_exit_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, side: int, value: Any
) -> None:
    document = _document(4)
    document["benchmarks"][0]["extra_info"]["edge"]["calibration"][key][side] = value
    err = _compare_bad(tmp_path, document, capsys)
    assert f"extra_info.edge.calibration.{key}" in err


MISMATCHED = [
    ({"benchmarks": [[1, 2]]}, "benchmarks[0]: a benchmark entry must be an object"),
    ({"benchmarks": [{"fullname": 3, "stats": {}}]}, "benchmarks[0]: a benchmark entry needs"),
    ({"benchmarks": [{"fullname": "t", "stats": [1]}]}, "benchmarks[0]: a benchmark entry needs"),
    ({"benchmarks": {"t": {}}}, "no 'benchmarks' list"),
    ({"benchmarks": [], "machine_info": [1]}, "machine_info must be an object"),
    ("just text", "no 'benchmarks' list"),
]


@pytest.mark.parametrize(("document", "message"), MISMATCHED)
def test_a_mismatched_schema_is_exit_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, message: str
) -> None:
    assert message in _compare_bad(tmp_path, document, capsys)


def test_inconsistent_statistics_and_bad_rounds_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _document(5)
    document["benchmarks"][0]["stats"]["min"] = 1.0  # above the median
    assert "stats.min (1.0) is above stats.q1" in _compare_bad(tmp_path, document, capsys)
    document = _document(5)
    document["benchmarks"][0]["stats"]["rounds"] = 2.5
    assert "stats.rounds must be a whole number" in _compare_bad(tmp_path, document, capsys)
    document = _document(5)
    document["benchmarks"].append(document["benchmarks"][0])
    assert "appears twice" in _compare_bad(tmp_path, document, capsys)


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_deep_nesting_is_exit_2_not_a_recursion_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    good = write_run(tmp_path / "good.json", 1.0, 1)
    bad = tmp_path / "deep.json"
    nested = "[" * depth + "]" * depth
    entry = json.dumps(_document(6)["benchmarks"][0])
    bad.write_text('{"benchmarks": [' + entry + '], "machine_info": {"x": ' + nested + "}}")
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "nested" in err


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["stats", "extra_info", "fullname", "group", "edge", "calibration"]),
    value=JSON_VALUES,
)
def test_any_value_anywhere_is_a_verdict_or_exit_2_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any
) -> None:
    document = _document(7)
    entry = document["benchmarks"][0]
    if field == "edge":
        entry["extra_info"]["edge"] = value
    elif field == "calibration":
        entry["extra_info"]["edge"]["calibration"] = value
    else:
        entry[field] = value
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_document(1)))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    code = main(["compare", str(good), str(bad)])
    err = capsys.readouterr().err
    assert code in (0, 2)  # the data is unchanged code: never a regression
    if code == 2:
        assert str(bad) in err
