"""Reading pytest-benchmark's JSON (its ``--benchmark-json`` and ``.benchmarks/`` storage).

pytest-benchmark's format stays the format: a run is the JSON object it writes; each benchmark
carries ``stats`` (median, iqr, ...) and, with ``--benchmark-save-data`` / ``--benchmark-json``,
the raw per-round times in ``stats.data``. `edge_benchmark` also keeps the raw times in
``extra_info["edge"]["samples"]``, so they survive a plain ``--benchmark-autosave``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from pytest_edge.bench.calibration import Calibration
from pytest_edge.errors import EdgeInputError
from pytest_edge.schema import is_number

EDGE_KEY = "edge"  # key of pytest-edge's block inside a benchmark's extra_info
DEFAULT_STORAGE = ".benchmarks"
_SAVED_RUN = re.compile(r"^(\d{4})_.*\.json$")
_STATS = ("min", "q1", "median", "q3", "max")  # in the order they must be
_CHECKED = ("median", "min", "max", "q1", "q3")  # the order a bad file is reported in
# pytest-benchmark's JSON is 4 levels deep (plus what users put in extra_info): deeper is
# not its format, and would exhaust the recursion of anything that walks it.
MAX_DEPTH = 32


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
    calibration: Calibration | None = None

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
        """A short name in a history: the commit, else the date, else ``run N`` (1-based)."""
        commit = self.commit_info.get("id")
        if isinstance(commit, str) and commit:
            return commit[:8]
        return (self.datetime or f"run {index + 1}")[:19]


def _positive(value: Any, where: str, field: str) -> float:
    """A positive, finite number (a time in seconds), or `BadBenchmarkInput` naming the field."""
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise BadBenchmarkInput(
            f"{where}: {field} must be a positive finite number (seconds), got {value!r}"
        )
    return float(value)


def _samples(raw: Any, where: str, field: str) -> tuple[float, ...] | None:
    """Raw per-round times; absent or empty is None, anything else must be valid times."""
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise BadBenchmarkInput(f"{where}: {field} must be a list of times, got {_kind(raw)}")
    return tuple(_positive(v, where, f"{field}[{i}]") for i, v in enumerate(raw))


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _calibration(raw: Any, where: str) -> Calibration | None:
    """The calibration record of a benchmark (see `pytest_edge.bench.calibration`)."""
    if raw is None:
        return None
    field = "extra_info.edge.calibration"
    if not isinstance(raw, Mapping):
        raise BadBenchmarkInput(f"{where}: {field} must be an object, got {_kind(raw)}")
    pairs = []
    for key in ("cpu_s", "fsync_s"):
        pair = raw.get(key)
        if not isinstance(pair, list) or len(pair) != 2:
            raise BadBenchmarkInput(
                f"{where}: {field}.{key} must be [before, after] in seconds, got {pair!r:.80}"
            )
        pairs.append(
            (
                _positive(pair[0], where, f"{field}.{key}[0]"),
                _positive(pair[1], where, f"{field}.{key}[1]"),
            )
        )
    return Calibration(
        pairs[0], pairs[1], _share(raw.get("cpu_fraction"), where, f"{field}.cpu_fraction")
    )


def _share(value: Any, where: str, field: str) -> float | None:
    """A fraction from 0 to 1, or None when absent."""
    if value is None:
        return None
    if not (is_number(value) and math.isfinite(value) and 0 <= value <= 1):
        raise BadBenchmarkInput(f"{where}: {field} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _rounds(stats: Mapping[str, Any], where: str) -> int:
    value = stats.get("rounds")
    if not is_number(value) or not math.isfinite(value) or value < 1 or value != int(value):
        raise BadBenchmarkInput(
            f"{where}: stats.rounds must be a whole number of 1 or more, got {value!r}"
        )
    return int(value)


def _check_order(values: Mapping[str, float], where: str) -> None:
    """min <= q1 <= median <= q3 <= max, up to rounding in the file."""
    for low, high in pairwise(_STATS):
        if values[low] > values[high] * (1 + 1e-9):
            raise BadBenchmarkInput(
                f"{where}: stats.{low} ({values[low]!r}) is above stats.{high} "
                f"({values[high]!r}): these are not one benchmark's statistics"
            )


def result_from_json(entry: Any, where: str, index: int | None = None) -> BenchmarkResult:
    """One entry of a pytest-benchmark JSON ``benchmarks`` list (at *index*, if known)."""
    at = f"{where}: benchmarks[{index}]" if index is not None else where
    if not isinstance(entry, Mapping):
        raise BadBenchmarkInput(f"{at}: a benchmark entry must be an object, got {_kind(entry)}")
    fullname = entry.get("fullname") or entry.get("name")
    stats = entry.get("stats")
    if not isinstance(fullname, str) or not isinstance(stats, Mapping):
        raise BadBenchmarkInput(
            f"{at}: a benchmark entry needs 'fullname' and 'stats' (a string and an object, "
            "as pytest-benchmark writes them)"
        )
    where = f"{where}: {fullname}"
    extra = entry.get("extra_info")
    if extra is None:
        extra = {}
    if not isinstance(extra, Mapping):
        raise BadBenchmarkInput(f"{where}: extra_info must be an object, got {_kind(extra)}")
    edge = extra.get(EDGE_KEY)
    if edge is not None and not isinstance(edge, Mapping):
        raise BadBenchmarkInput(f"{where}: extra_info.edge must be an object, got {_kind(edge)}")
    edge = edge or {}
    samples = _samples(stats.get("data"), where, "stats.data")
    if samples is None:
        samples = _samples(edge.get("samples"), where, "extra_info.edge.samples")
    values = {key: _positive(stats.get(key), where, f"stats.{key}") for key in _CHECKED}
    _check_order(values, where)
    group = entry.get("group")
    return BenchmarkResult(
        fullname=fullname,
        name=str(entry.get("name", fullname)),
        group=group if isinstance(group, str) else None,
        median=values["median"],
        q1=values["q1"],
        q3=values["q3"],
        minimum=values["min"],
        maximum=values["max"],
        rounds=_rounds(stats, where),
        samples=samples,
        extra_info=dict(extra),
        calibration=_calibration(edge.get("calibration"), where),
    )


def _too_deep(document: Any, limit: int = MAX_DEPTH) -> str | None:
    """The path of the first value nested deeper than *limit* levels, else None."""
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > limit:
            return path or "(top level)"
        if isinstance(value, Mapping):
            stack.extend(
                (v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in value.items()
            )
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def run_from_json(document: Any, source: str) -> BenchmarkRun:
    """Validate a decoded pytest-benchmark JSON document."""
    if not isinstance(document, Mapping) or not isinstance(document.get("benchmarks"), list):
        raise BadBenchmarkInput(
            f"{source}: not a pytest-benchmark JSON file (no 'benchmarks' list); "
            "write one with --benchmark-json=PATH or --benchmark-autosave"
        )
    deep = _too_deep(document)
    if deep is not None:
        raise BadBenchmarkInput(
            f"{source}: {deep[:120]} is nested more than {MAX_DEPTH} levels deep; "
            "pytest-benchmark never writes that"
        )
    results = tuple(
        result_from_json(entry, source, index) for index, entry in enumerate(document["benchmarks"])
    )
    seen: set[str] = set()
    for result in results:
        if result.fullname in seen:
            raise BadBenchmarkInput(
                f"{source}: benchmark {result.fullname!r} appears twice in 'benchmarks'"
            )
        seen.add(result.fullname)
    info = {}
    for key in ("machine_info", "commit_info"):
        value = document.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise BadBenchmarkInput(f"{source}: {key} must be an object, got {_kind(value)}")
        info[key] = value or {}
    when = document.get("datetime")
    return BenchmarkRun(
        source=source,
        results=results,
        machine_info=info["machine_info"],
        commit_info=info["commit_info"],
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
    except RecursionError:
        raise BadBenchmarkInput(
            f"{file}: nested too deeply to be pytest-benchmark JSON (more than {MAX_DEPTH} levels)"
        ) from None
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
