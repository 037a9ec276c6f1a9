"""Every benchmark in the report: plain `benchmark` tests and `edge_benchmark` tests alike."""

from __future__ import annotations

import re

import pytest

TESTS = """
def work(n=2000):
    return sum(range(n))


def test_plain(benchmark):
    benchmark(work)


def test_edge(edge_benchmark):
    edge_benchmark.throughput(work, items=2000, unit="numbers")
"""


def test_a_first_run_reports_every_benchmark_with_a_chart_each(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In an xdist worker pytest-benchmark reads this and would disable the inner run too.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_speed=TESTS)
    args = ["-p", "no:cacheprovider", "-p", "no:xdist", "--benchmark-max-time=0.01"]
    result = pytester.runpytest(*args, "--edge-report=r.html")
    result.assert_outcomes(passed=2)
    page = (pytester.path / "r.html").read_text()
    table = page[page.index("Every benchmark of this run (2)") :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr[^>]*><td class=name>(.*?)</td>(.*?)</tr>", table)
    assert [name for name, _ in rows] == ["test_speed.py::test_plain", "test_speed.py::test_edge"]
    plain, edge = (cells for _, cells in rows)
    assert "numbers/s" in edge
    assert "numbers/s" not in plain
    assert "a plain `benchmark` test measures time only" in page  # why the cells are '-'
    assert page.count('<figure class="chart">') == 2  # one panel per benchmark, no comparison
    assert '<section id="section-benchmarks"><h2>Benchmarks <span class="tag tag-info">' in page
