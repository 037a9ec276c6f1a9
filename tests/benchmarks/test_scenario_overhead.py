"""What the scenario machinery costs on top of what it builds on.

- ``scenario-run``: one measured run of a trivial workload through `ScenarioRunner` (resolve,
  state directory, child, result, timing) against a bare `run_isolated` of the same function
  in the same kind of child: the ratio is the scenario layer's overhead per run.
- ``scenario-load``: reading and validating one shipped scenario file (`load_scenario`, which
  also imports its workload module, cached after the first time) against `tomllib.loads`
  of the same text.

Both pairs run in one session; compare the rows of a group as a ratio. Under ``make test``
(xdist) they are one-round smoke checks; ``make bench`` runs them in full.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.device.isolated import IsolationLimits, run_isolated
from pytest_edge.scenarios import load_scenario
from pytest_edge.scenarios.devices import isolate_on_device
from pytest_edge.scenarios.runner import Device, ScenarioRunner
from pytest_edge.scenarios.schema import Scenario

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "request_burst.toml"


def trivial(state_dir: Path, n: int = 10) -> dict[str, Any]:
    return {"items": n, "unit": "items"}


def _bare() -> None:
    run_isolated(trivial, (Path("."),), {"n": 10}, IsolationLimits(None, None), 30.0)


def _scenario() -> None:
    scenario = Scenario(
        path=Path("bench.toml"),
        name="bench",
        description="",
        workload=f"{__name__}:trivial",
        params={"n": 10},
    )
    with tempfile.TemporaryDirectory() as workdir:
        runner = ScenarioRunner(
            scenario, Device("host"), seed=1, workdir=Path(workdir), isolate=isolate_on_device
        )
        assert runner.run().result is not None


def _load() -> None:
    load_scenario(SHIPPED)


def _toml() -> None:
    tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def _run(benchmark: Callable[..., object], fn: Callable[[], None], rounds: int) -> None:
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 1 else 0)  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="scenario-run")
def test_scenario_run_smoke(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _scenario, rounds=1)


@pytest.mark.slow
@pytest.mark.benchmark(group="scenario-run")
def test_scenario_run(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _scenario, rounds=20)


@pytest.mark.slow
@pytest.mark.benchmark(group="scenario-run")
def test_bare_isolated_run_baseline(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _bare, rounds=20)


@pytest.mark.benchmark(group="scenario-load")
def test_load_scenario_smoke(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _load, rounds=1)


@pytest.mark.slow
@pytest.mark.benchmark(group="scenario-load")
def test_load_scenario(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _load, rounds=200)


@pytest.mark.slow
@pytest.mark.benchmark(group="scenario-load")
def test_toml_parse_baseline(benchmark: Callable[..., object]) -> None:
    _run(benchmark, _toml, rounds=200)
