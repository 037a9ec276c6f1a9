"""Cost of crash-safe `save_state` against the plain write + fsync + os.replace of its bytes.

Each round first runs the baselines (timed here, not by pytest-benchmark), then `save_state`
(timed by pytest-benchmark), so all share the machine's conditions; the ratios of medians are
stored in ``extra_info`` and printed. No timing is asserted. Two baselines:
- plain: write + fsync + os.replace of the same bytes (the issue's baseline; not durable,
  since the rename is not persisted until the directory is fsynced);
- durable minimum: the same plus the directory fsync, the least any crash-safe save must do;
  the ratio against it is what the module's own work (CRC-32, framing, keeping the previous
  generation) costs.
The full 1 MiB size runs under ``make bench`` (``--run-slow``); ``make test`` runs a
64 KiB smoke check.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from reference_impl.production_patterns import StatePersistenceManager

KIB = 1024


def _plain_write_fsync_replace(directory: Path, data: bytes, name: str = "plain") -> None:
    temp = directory / f"{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / f"{name}.json")


def _durable_minimum(directory: Path, data: bytes) -> None:
    _plain_write_fsync_replace(directory, data, "durable")
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _state(total_bytes: int) -> dict[str, Any]:
    """Agent-like state: a few small fields plus conversation turns adding up to the size."""
    turn = "The user asked about Mars landing sites and travel logistics. " * 16  # ~1 KiB
    turns = [turn] * (total_bytes // len(turn))
    return {"goal": "Plan a trip to Mars", "step": 42, "turns": turns}


def _run(
    benchmark: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, size: int, rounds: int
) -> None:
    manager = StatePersistenceManager(tmp_path / "state.json")
    for key, value in _state(size).items():
        manager.set_state(key, value)
    manager.save_state()
    manager.save_state()  # from now on every save also keeps the previous generation
    data = (tmp_path / "state.json").read_bytes()
    baseline: list[float] = []
    durable: list[float] = []

    def run_baseline() -> None:
        start = time.perf_counter()
        _plain_write_fsync_replace(tmp_path, data)
        middle = time.perf_counter()
        _durable_minimum(tmp_path, data)
        durable.append(time.perf_counter() - middle)
        baseline.append(middle - start)

    benchmark.pedantic(manager.save_state, setup=run_baseline, rounds=rounds, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # benchmarks disabled (e.g. under xdist): the run above was the smoke check
        return
    median = stats.stats.median
    ratio = median / statistics.median(baseline)
    ratio_durable = median / statistics.median(durable)
    benchmark.extra_info.update(
        {
            "state_bytes": len(data),
            "plain_median_s": statistics.median(baseline),
            "durable_minimum_median_s": statistics.median(durable),
            "save_state_median_s": median,
            "ratio_vs_plain_write": round(ratio, 3),
            "ratio_vs_durable_minimum": round(ratio_durable, 3),
        }
    )
    with capsys.disabled():
        print(
            f"\nsave_state {len(data) / KIB:.0f} KiB: median {median * 1e3:.3f} ms;"
            f" plain write+fsync+replace {statistics.median(baseline) * 1e3:.3f} ms"
            f" -> ratio {ratio:.2f}x (target <= 1.3x);"
            f" + directory fsync {statistics.median(durable) * 1e3:.3f} ms"
            f" -> ratio {ratio_durable:.2f}x"
        )


@pytest.mark.benchmark(group="state-save")
def test_save_state_smoke(
    benchmark: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _run(benchmark, capsys, tmp_path, 64 * KIB, rounds=5)


@pytest.mark.slow
@pytest.mark.benchmark(group="state-save")
def test_save_state_1mib_vs_plain_write(
    benchmark: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _run(benchmark, capsys, tmp_path, 1024 * KIB, rounds=200)
