"""Several fresh pytest processes per benchmark, merged into one pytest-benchmark JSON run.

One process shares one memory layout, hash seed and state of the machine, so its rounds say
nothing about how far the next process lands (pyperf and asv run several processes for this
reason). `repeat` runs the selected benchmarks in N fresh processes one after another, within
a time budget, and writes ONE run in pytest-benchmark's format: each benchmark's stats cover
every process's rounds, and ``extra_info["edge"]["processes"]`` keeps each process's
statistics, whose spread the drift model (`pytest_edge.bench.drift.process_drift`) uses.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_edge.bench.ab import plain_pytest_env, run_benchmark_pytest
from pytest_edge.bench.data import EDGE_KEY, BadBenchmarkInput, load_run, run_from_json
from pytest_edge.bench.stats import STATISTICS, location
from pytest_edge.errors import EdgeError
from pytest_edge.lifetime import owned_tempdir, signals_unwind, sweep_stale

PROCESSES_KEY = "processes"  # inside extra_info["edge"]: one {statistic: seconds} per process
MIN_PROCESSES = 2


class RepeatError(EdgeError):
    """A child pytest process failed; the message names it and shows the end of its output."""


@dataclass(frozen=True)
class RepeatResult:
    """The merged run (a pytest-benchmark JSON document) and how many processes made it."""

    document: dict[str, Any]
    ran: int
    asked: int
    elapsed: float
    budget: float | None

    @property
    def stopped_by_budget(self) -> bool:
        return self.ran < self.asked


def check_plan(processes: int, budget: float | None) -> None:
    """`BadBenchmarkInput` naming a bad --processes or --budget."""
    if processes < MIN_PROCESSES:
        raise BadBenchmarkInput(
            f"--processes={processes}: need {MIN_PROCESSES} or more to see the spread "
            "between processes"
        )
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise BadBenchmarkInput(f"--budget={budget}: must be a positive number of seconds")


def run_process(
    index: int, out: Path, pytest_args: Sequence[str], cwd: Path, python: str
) -> dict[str, Any]:
    """Process *index* (0-based): one fresh pytest writing pytest-benchmark JSON to *out*."""
    run_benchmark_pytest(
        python,
        out,
        pytest_args,
        cwd=cwd,
        env=plain_pytest_env(),
        runner="repeat",
        error=RepeatError,
        who=f"process {index + 1}: ",
    )
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    run = run_from_json(document, str(out))  # validated before it is merged
    if not run.results:
        shown = " ".join(pytest_args) or "no args"
        raise BadBenchmarkInput(f"no benchmark ran: {shown} selects no benchmark test")
    return document


def _samples(entry: Mapping[str, Any]) -> list[float]:
    data = entry["stats"].get("data") or entry.get("extra_info", {}).get(EDGE_KEY, {}).get(
        "samples"
    )
    if not data:
        raise BadBenchmarkInput(
            f"{entry.get('fullname')}: no per-round times in the child's JSON to merge"
        )
    return [float(v) for v in data]


def _stats(samples: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's own statistics of the pooled rounds (same fields, same code)."""
    from pytest_benchmark.stats import Stats

    stats = Stats()  # type: ignore[no-untyped-call]
    for value in samples:
        stats.update(value)  # type: ignore[no-untyped-call]
    result: dict[str, Any] = stats.as_dict()  # type: ignore[no-untyped-call]
    result["data"] = list(samples)
    return result


def per_process(samples: Sequence[float]) -> dict[str, float]:
    """One process's time by each statistic a verdict can use (min, p10, median)."""
    return {name: location(samples, name).seconds for name in STATISTICS}


def merge(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One pytest-benchmark document from several processes' documents (first one's layout).

    A benchmark must have run in every process: a merged spread from fewer would not say
    what it claims.
    """
    first = documents[0]
    names = [b["fullname"] for b in first["benchmarks"]]
    by_process = [{b["fullname"]: b for b in d["benchmarks"]} for d in documents]
    merged = []
    for name in names:
        entries = []
        for index, entries_of in enumerate(by_process):
            if name not in entries_of:
                raise BadBenchmarkInput(
                    f"{name}: ran in process 1 but not in process {index + 1}; "
                    "select the same benchmarks in every process"
                )
            entries.append(entries_of[name])
        samples = [_samples(e) for e in entries]
        entry = json.loads(json.dumps(entries[0]))  # a deep copy of plain JSON
        pooled = [v for s in samples for v in s]
        entry["stats"] = {**_stats(pooled), "iterations": entry["stats"].get("iterations", 1)}
        extra = entry.setdefault("extra_info", {})
        edge = extra.setdefault(EDGE_KEY, {})
        if "samples" in edge:
            edge["samples"] = pooled
        edge[PROCESSES_KEY] = [{**per_process(s), "rounds": len(s)} for s in samples]
        merged.append(entry)
    return {**first, "benchmarks": merged}


def repeat(
    processes: int,
    pytest_args: Sequence[str],
    budget: float | None = None,
    cwd: Path | None = None,
    python: str = sys.executable,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RepeatResult:
    """Run the benchmarks in up to *processes* fresh processes and merge them.

    With a *budget* (seconds) no further process starts once the time spent plus one more
    process at the average pace so far would pass it, after at least `MIN_PROCESSES`.
    """
    check_plan(processes, budget)
    sweep_stale("repeat", [None])  # the scratch of a run that was SIGKILLed
    where = cwd or Path.cwd()
    documents: list[dict[str, Any]] = []
    start = clock()
    root = owned_tempdir("repeat")
    with signals_unwind():
        try:
            for index in range(processes):
                elapsed = clock() - start
                if budget is not None and index >= MIN_PROCESSES:
                    pace = elapsed / index
                    if elapsed + pace > budget:
                        break
                if progress:
                    progress(f"process {index + 1}/{processes}")
                out = root / f"p{index}.json"
                documents.append(run_process(index, out, pytest_args, where, python))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    merged = merge(documents)
    run_from_json(merged, "merged run")  # validated as every reader will see it
    return RepeatResult(merged, len(documents), processes, clock() - start, budget)


def save_path(storage: Path, name: str, machine_id: str) -> Path:
    """Where ``--benchmark-save=NAME`` puts the next run: ``STORAGE/MACHINE/NNNN_NAME.json``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise BadBenchmarkInput(f"--save={name!r}: a plain name (no path) is needed")
    folder = storage / machine_id
    numbers = [
        int(f.name[:4]) for f in (folder.glob("[0-9][0-9][0-9][0-9]_*") if folder.is_dir() else [])
    ]
    return folder / f"{max(numbers, default=0) + 1:04d}_{name}.json"


def write(document: Mapping[str, Any], path: Path) -> Path:
    """Write the merged run as pytest-benchmark does (indented JSON); read it back to check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")
    load_run(path)
    return path
