"""The shipped RAG power-loss scenario: 0 lost on the durable store, and not by accident.

The same file with ``durable = false`` (the store's default, WAL + synchronous=NORMAL) must be
caught losing acknowledged batches: otherwise its pass would prove nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.thirdparty.layer import syscall_layer_missing

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios" / "rag_ingest_power_loss.toml"

# Each run is a whole scenario (a measured run plus power-loss cycles): 15-60 s depending on
# the machine's load, so slow; `make demo` runs the shipped file itself.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        syscall_layer_missing() is not None,
        reason=f"needs the system-call layer to see SQLite's writes: {syscall_layer_missing()}",
    ),
]


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, text: str) -> pytest.RunResult:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    path = pytester.makefile(".toml", rag=text)
    return pytester.runpytest_subprocess(str(path), "-p", "no:cacheprovider", "-p", "no:xdist")


def test_the_durable_store_loses_no_batch_at_power_loss(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SHIPPED.read_text()
    assert "durable = true" in text
    result = _run(pytester, monkeypatch, text)
    result.stdout.fnmatch_lines(["*rag-ingest-power-loss*passed*power-loss: 0 of * acked lost*"])
    result.assert_outcomes(passed=1)


def test_the_default_store_is_caught_losing_batches(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SHIPPED.read_text().replace("durable = true", "durable = false")
    result = _run(pytester, monkeypatch, text)
    result.stdout.fnmatch_lines(["*lost*acknowledged*"])
    result.assert_outcomes(failed=1)
