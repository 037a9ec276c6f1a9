"""`pytest-edge compare`: exit codes 0/1/2, formats, history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_edge.cli import main
from tests.bench.samples import json_entry


def write_run(path: Path, factor: float, seed: int, names: tuple[str, ...] = ("t::a",)) -> Path:
    rng = np.random.default_rng(seed)
    benchmarks = []
    for name in names:
        data = (rng.lognormal(np.log(1e-3), 0.03, 40) * factor).tolist()
        benchmarks.append(json_entry(name, data))
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
