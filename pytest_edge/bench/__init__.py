"""Throughput benchmarks and regression reports on top of pytest-benchmark.

- `throughput`: `EdgeBenchmark`, the ``edge_benchmark`` fixture's object;
- `corpus`: seeded faker corpora (``edge_corpus``);
- `data`: reading pytest-benchmark JSON and its storage;
- `stats`: rank test, Hodges-Lehmann ratio, paired t (numpy, no scipy);
- `compare`: verdicts on two runs or a run against a history;
- `drift`: how far runs of unchanged code drift apart; `calibration`: the calibration set;
- `ab`: two git revisions benchmarked interleaved;
- `instructions`: callgrind instruction counts;
- `session`: one pytest session's bookkeeping; `report`: the edge report's benchmark section.

Modules are imported on use: importing this package loads none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.bench.ab import ABError
    from pytest_edge.bench.corpus import Corpus, CorpusExtraMissingError, make_corpus
    from pytest_edge.bench.data import BadBenchmarkInput
    from pytest_edge.bench.instructions import InstructionCountError
    from pytest_edge.bench.throughput import EdgeBenchmark

__all__ = [
    "ABError",
    "BadBenchmarkInput",
    "Corpus",
    "CorpusExtraMissingError",
    "EdgeBenchmark",
    "InstructionCountError",
    "make_corpus",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "ABError": "pytest_edge.bench.ab",
    "BadBenchmarkInput": "pytest_edge.bench.data",
    "Corpus": "pytest_edge.bench.corpus",
    "CorpusExtraMissingError": "pytest_edge.bench.corpus",
    "EdgeBenchmark": "pytest_edge.bench.throughput",
    "InstructionCountError": "pytest_edge.bench.instructions",
    "make_corpus": "pytest_edge.bench.corpus",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
