"""The report capability: sections come from every capability, and from a user's conftest,
through the ``pytest_edge_report_sections`` hook; ``--edge-report`` writes them."""

from __future__ import annotations

import pytest

CONFTEST_SECTION = """
from pytest_edge.report import Paragraph, Section

def pytest_edge_report_sections(config):
    return [Section("mine", "My checks", (Paragraph("all 3 checks held"),), order=40)]
"""


def test_a_conftest_adds_its_section_to_the_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST_SECTION)
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--edge-report=x.md")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["edge: report written to x.md"])
    text = (pytester.path / "x.md").read_text()
    assert "### My checks" in text
    assert "all 3 checks held" in text
    assert text.index("### Device") < text.index("### My checks")


def test_no_report_and_no_section_asked_for_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_edge_report_sections(config):
            raise AssertionError("asked for sections although no report is written")
        """
    )
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert "edge: report written" not in result.stdout.str()


def test_a_conftest_can_ask_for_the_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makeconftest(
        CONFTEST_SECTION + "\n\ndef pytest_edge_report_wanted(config):\n    return True\n"
    )
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"edge: Markdown report appended to {summary}"])
    assert "### My checks" in summary.read_text()


def test_an_unknown_report_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--edge-report=r.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-report: report path 'r.txt'*.html*"])
