"""Reading pytest-benchmark's JSON (its ``--benchmark-json`` and ``.benchmarks/`` storage).

pytest-benchmark's format stays the format: a run is the JSON object it writes; each benchmark
carries ``stats`` (median, iqr, ...) and, with ``--benchmark-save-data`` / ``--benchmark-json``,
the raw per-round times in ``stats.data``. `edge_benchmark` also keeps the raw times in
``extra_info["edge"]["samples"]``, so they survive a plain ``--benchmark-autosave``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_edge.errors import EdgeInputError
from pytest_edge.schema import is_number

EDGE_KEY = "edge"  # key of pytest-edge's block inside a benchmark's extra_info
DEFAULT_STORAGE = ".benchmarks"
_SAVED_RUN = re.compile(r"^(\d{4})_.*\.json$")


class BadBenchmarkInput(EdgeInputError):
    """A file or value that is not usable benchmark data; the message says which and why."""


@dataclass(frozen=True)
class BenchmarkResult:
    """One benchmark of one run. Times are seconds per call."""

    fullname: str
    name: str
    group: str | None
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    rounds: int
    samples: tuple[float, ...] | None = None
    extra_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def edge(self) -> Mapping[str, Any]:
        """pytest-edge's block of extra_info (items, unit, throughput, memory...), or {}."""
        block = self.extra_info.get(EDGE_KEY, {})
        return block if isinstance(block, Mapping) else {}


@dataclass(frozen=True)
class BenchmarkRun:
    """All benchmarks of one pytest-benchmark run, with where they came from."""

    source: str
    results: tuple[BenchmarkResult, ...]
    machine_info: Mapping[str, Any] = field(default_factory=dict)
    commit_info: Mapping[str, Any] = field(default_factory=dict)
    datetime: str | None = None

    def by_name(self) -> dict[str, BenchmarkResult]:
        return {result.fullname: result for result in self.results}

    def label(self, index: int) -> str:
        """A short name in a history: the commit and the date (``5fe51ae9 2026-12-01 23:33``)
        when known, else what is known of them, else ``run N`` (1-based)."""
        commit = self.commit_info.get("id")
        date = (self.datetime or "")[:16].replace("T", " ")
        if isinstance(commit, str) and commit:
            return f"{commit[:8]} {date}".rstrip()
        return date or f"run {index + 1}"


def _number(stats: Mapping[str, Any], key: str, where: str) -> float:
    value = stats.get(key)
    if not is_number(value):
        raise BadBenchmarkInput(f"{where}: stats.{key} is missing or not a number ({value!r})")
    return float(value)


def _samples(raw: Any) -> tuple[float, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    if not all(is_number(v) and v > 0 for v in raw):
        return None
    return tuple(float(v) for v in raw)


def result_from_json(entry: Mapping[str, Any], where: str) -> BenchmarkResult:
    """One entry of a pytest-benchmark JSON ``benchmarks`` list."""
    fullname = entry.get("fullname") or entry.get("name")
    stats = entry.get("stats")
    if not isinstance(fullname, str) or not isinstance(stats, Mapping):
        raise BadBenchmarkInput(
            f"{where}: a benchmark entry needs 'fullname' and 'stats' (pytest-benchmark format)"
        )
    where = f"{where}: {fullname}"
    extra = entry.get("extra_info") or {}
    if not isinstance(extra, Mapping):
        extra = {}
    samples = _samples(stats.get("data"))
    edge = extra.get(EDGE_KEY)
    if samples is None and isinstance(edge, Mapping):
        samples = _samples(edge.get("samples"))
    group = entry.get("group")
    return BenchmarkResult(
        fullname=fullname,
        name=str(entry.get("name", fullname)),
        group=group if isinstance(group, str) else None,
        median=_number(stats, "median", where),
        q1=_number(stats, "q1", where),
        q3=_number(stats, "q3", where),
        minimum=_number(stats, "min", where),
        maximum=_number(stats, "max", where),
        rounds=int(_number(stats, "rounds", where)),
        samples=samples,
        extra_info=dict(extra),
    )


def run_from_json(document: Any, source: str) -> BenchmarkRun:
    """Validate a decoded pytest-benchmark JSON document."""
    if not isinstance(document, Mapping) or not isinstance(document.get("benchmarks"), list):
        raise BadBenchmarkInput(
            f"{source}: not a pytest-benchmark JSON file (no 'benchmarks' list); "
            "write one with --benchmark-json=PATH or --benchmark-autosave"
        )
    results = tuple(result_from_json(entry, source) for entry in document["benchmarks"])
    machine = document.get("machine_info")
    commit = document.get("commit_info")
    when = document.get("datetime")
    return BenchmarkRun(
        source=source,
        results=results,
        machine_info=machine if isinstance(machine, Mapping) else {},
        commit_info=commit if isinstance(commit, Mapping) else {},
        datetime=when if isinstance(when, str) else None,
    )


def load_run(path: str | Path) -> BenchmarkRun:
    """Read one pytest-benchmark JSON file; `BadBenchmarkInput` says what is wrong with it."""
    file = Path(path)
    if not file.is_file():
        raise BadBenchmarkInput(f"{file}: no such benchmark file")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadBenchmarkInput(f"{file}: cannot read it as JSON ({error})") from error
    return run_from_json(document, str(file))


def storage_path(option_value: str | None) -> Path:
    """The directory of pytest-benchmark's file storage (``--benchmark-storage``)."""
    value = option_value or DEFAULT_STORAGE
    if value.startswith("file://"):
        value = value[len("file://") :]
    elif "://" in value:
        raise BadBenchmarkInput(
            f"--benchmark-storage={option_value}: only file storage can be compared by "
            "pytest-edge; pass a file path instead"
        )
    return Path(value)


def saved_runs(storage: Path, machine_id: str | None = None) -> list[Path]:
    """Saved runs (``NNNN_*.json``) oldest first; this machine's folder when it has any."""
    if not storage.is_dir():
        return []
    folders = [p for p in storage.iterdir() if p.is_dir()]
    if machine_id is not None and (storage / machine_id).is_dir():
        folders = [storage / machine_id]
    files = [f for folder in folders for f in folder.iterdir() if _SAVED_RUN.match(f.name)]
    # pytest-benchmark numbers its saved runs 0001, 0002, ... in the order they were made.
    return sorted(files, key=lambda f: (f.name[:4], f.stat().st_mtime))


def load_history(paths: Sequence[Path], last: int) -> list[BenchmarkRun]:
    """The last ``last`` runs among ``paths`` (oldest first)."""
    if last < 1:
        raise BadBenchmarkInput(f"history: need at least 1 run, got {last}")
    return [load_run(p) for p in list(paths)[-last:]]


def history_files(directory: str | Path) -> list[Path]:
    """Every benchmark JSON under a directory (a ``.benchmarks`` folder or a plain folder)."""
    root = Path(directory)
    if not root.is_dir():
        raise BadBenchmarkInput(f"{root}: no such history directory")
    files = sorted(
        (f for f in root.rglob("*.json") if f.is_file()), key=lambda f: (f.stat().st_mtime, f.name)
    )
    if not files:
        raise BadBenchmarkInput(f"{root}: no benchmark JSON files in this directory")
    return files
