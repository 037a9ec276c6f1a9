"""faker is an optional extra (``pytest-edge[corpus]``): without it, corpus generation says
how to install it, and nothing else of pytest-edge needs it."""

from __future__ import annotations

import pytest

from pytest_edge.bench.corpus import CORPUS_EXTRA_HINT, CorpusExtraMissingError, make_corpus
from pytest_edge.errors import EdgeError

NO_FAKER = """
import sys
sys.modules["faker"] = None  # what `import faker` sees when faker is not installed
"""


def test_make_corpus_without_faker_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "faker", None)
    with pytest.raises(CorpusExtraMissingError, match=r"pip install 'pytest-edge\[corpus\]'"):
        make_corpus("documents", count=1)
    assert issubclass(CorpusExtraMissingError, EdgeError)
    assert issubclass(CorpusExtraMissingError, ImportError)


def test_edge_corpus_without_faker_fails_the_test_with_the_hint(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NO_FAKER)
    pytester.makepyfile(
        """
        def test_corpus(edge_corpus):
            edge_corpus("documents", count=3)

        def test_other(edge_seed):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:faker", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    # [[] and []] are fnmatch's literal brackets
    result.stdout.fnmatch_lines(["*CorpusExtraMissingError*pip install 'pytest-edge[[]corpus[]]'*"])
    assert CORPUS_EXTRA_HINT in result.stdout.str()
