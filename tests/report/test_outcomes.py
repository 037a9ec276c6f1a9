"""The outcome summary: pytest's own counts, exit code and failures, in every report."""

from __future__ import annotations

import json

import pytest

TESTS = """
import pytest

def test_ok():
    pass

def test_bad():
    assert 1 == 2, "<b>wrong</b>"

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_err(broken):
    pass

@pytest.mark.xfail(strict=False)
def test_xf():
    assert 0

@pytest.mark.xfail(strict=False)
def test_xp():
    pass

@pytest.mark.skip(reason="no gpu")
def test_sk():
    pass
"""


@pytest.mark.parametrize("workers", [None, "2"])
def test_counts_and_failures_match_pytest(pytester: pytest.Pytester, workers: str | None) -> None:
    pytester.makepyfile(test_mix=TESTS)
    args = ["-p", "no:cacheprovider", "--edge-report=r.json", "-o", "xfail_strict=false"]
    if workers:  # the controller sees every worker's reports
        result = pytester.runpytest_subprocess(*args, "-p", "xdist", "-n", workers)
    else:
        result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1, xpassed=1)
    document = json.loads((pytester.path / "r.json").read_text())
    outcome = document["outcome"]
    assert outcome["counts"] == {
        "passed": 1,
        "failed": 1,
        "error": 1,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
    }
    assert outcome["exit_code"] == 1
    assert outcome["exit_word"] == "failed"
    assert document["status"] == "failed"
    assert document["attention"] == "1 failed test, 1 error"
    failures = {f["nodeid"]: f for f in outcome["failures"]}
    assert failures["test_mix.py::test_bad"]["message"].startswith("AssertionError: <b>wrong</b>")
    assert failures["test_mix.py::test_err"]["when"] == "setup"
    assert failures["test_mix.py::test_err"]["message"] == "RuntimeError: setup broke"
    metadata = document["metadata"]
    assert "--edge-report=r.json" in metadata["command line"]
    assert metadata["seed"].split()[0].isdigit()


def test_a_passing_run_is_ok_and_names_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider", "--edge-report=r.html").assert_outcomes(passed=1)
    page = (pytester.path / "r.html").read_text()
    assert "✓ OK: pytest passed (exit code 0)" in page
    assert "Nothing needs attention." in page
    assert "1 passed" in page


def test_html_summary_names_the_failure_with_its_message_and_links_details(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mix=TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--edge-report=r.html", "-o", "xfail_strict=0")
    page = (pytester.path / "r.html").read_text()
    summary = page[page.index('<section id="summary">') : page.index("</section>")]
    assert "test_mix.py::test_bad" in summary
    assert "AssertionError: &lt;b&gt;wrong&lt;/b&gt;" in summary
    assert "<b>wrong" not in page
    anchor = summary.split('href="#failure-', 1)[1].split('"', 1)[0]
    assert f'id="failure-{anchor}"' in page  # the details the link points to
    assert page.index("Needs attention") < page.index('<section id="section-device"')
