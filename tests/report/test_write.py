"""Rendering by format name or file extension, writing, and the GitHub step summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.report import write_report
from pytest_edge.report.write import append_step_summary, format_for_path
from tests.report.samples import sample_report


def test_write_report_by_extension_and_unknown_extension(tmp_path: Path) -> None:
    report = sample_report()
    for name in ["r.md", "r.json", "r.html"]:
        assert write_report(report, tmp_path / "sub" / name).stat().st_size > 100
    with pytest.raises(ValueError, match=r"cannot tell the format from \.txt; use one of"):
        format_for_path("report.txt")


def test_markdown_is_appended_to_the_github_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_step_summary(sample_report()) is None
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_step_summary(sample_report())
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "slower (REGRESSION)" in text


def test_a_failed_write_keeps_the_previous_report_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Truncate-then-write left a torn or empty file when rendering or writing failed midway.
    target = tmp_path / "edge-report.md"
    write_report(sample_report(), target)
    before = target.read_text()

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pytest_edge.report.write.os.replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_report(sample_report(), target)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["edge-report.md"]  # no temp file left


def test_an_unknown_format_is_an_input_error() -> None:
    from pytest_edge.errors import EdgeInputError
    from pytest_edge.report.write import render

    with pytest.raises(EdgeInputError, match="report format 'pdf' is not one of md, json"):
        render(sample_report(), "pdf")
