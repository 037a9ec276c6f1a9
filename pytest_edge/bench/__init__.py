"""Throughput benchmarks and regression reports on top of pytest-benchmark.

- `throughput`: `EdgeBenchmark`, the ``edge_benchmark`` fixture's object;
- `corpus`: seeded faker corpora (``edge_corpus``);
- `data`: reading pytest-benchmark JSON and its storage;
- `stats`: rank test, Hodges-Lehmann ratio, paired t (numpy, no scipy);
- `compare`: verdicts on two runs or a run against a history;
- `ab`: two git revisions benchmarked interleaved;
- `instructions`: callgrind instruction counts;
- `session`: one pytest session's bookkeeping; `report`: the edge report's benchmark section.

Modules are imported on use: importing this package loads none of them.
"""
