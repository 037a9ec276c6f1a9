"""What runs inside the child processes of a scenario: the workload, with its faults armed.

Both the measured run and every crash-harness cycle call the workload here, so a scenario's
``[[faults]]`` apply inside the processes that do the work, never in the pytest process.
Fault options may say ``"{state_dir}"``; it is replaced by the run's state directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_edge.scenarios.outcome import coerce_result
from pytest_edge.scenarios.schema import resolve_callable

# The crash harness calls its targets with the state directory only; the scenario's workload,
# params, faults and seed travel in a JSON file named by this variable, which the harness's
# child processes inherit.
CONTEXT_ENV = "PYTEST_EDGE_SCENARIO_CONTEXT"


def _expand(value: Any, state_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{state_dir}", state_dir)
    if isinstance(value, list):
        return [_expand(v, state_dir) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, state_dir) for k, v in value.items()}
    return value


class FiredLog:
    """The fired faults' lines, also appended to a file as each fault fires.

    The file outlives the child: when the workload raises, or the child is killed (out of
    memory, a timeout), the parent still reads which faults fired before that.
    """

    def __init__(self, path: str | None = None) -> None:
        self.lines: list[str] = []
        self._file = None if path is None else open(path, "a", encoding="utf-8")  # noqa: SIM115

    def add(self, line: str) -> None:
        self.lines.append(line)
        if self._file is not None:
            self._file.write(line.replace("\n", " ") + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_fired(path: Path) -> tuple[str, ...]:
    """The lines a child's `FiredLog` wrote (none when the file is missing)."""
    try:
        return tuple(path.read_text(encoding="utf-8").splitlines())
    except OSError:
        return ()


def _tee(injector: Any, log: FiredLog) -> bool:
    """Send each event `injector` records to `log` as it is recorded; False if it cannot.

    The injector has no public listener, so its event log's ``record`` is wrapped (on this
    one injector only); if that ever changes shape, the events are still logged when the
    block ends, which a killed child does not reach.
    """
    events = getattr(injector, "_log", None)
    record = getattr(events, "record", None)
    if record is None:
        return False

    def recording(*args: Any, **kwargs: Any) -> Any:
        event = record(*args, **kwargs)
        log.add(str(event))
        return event

    events.record = recording  # type: ignore[union-attr]
    return True


@contextlib.contextmanager
def armed_faults(
    faults: Sequence[Mapping[str, Any]], state_dir: str, seed: int, fired: list[str] | FiredLog
) -> Iterator[None]:
    """Arm the plan's faults for the block; a line per fault that fired goes to `fired`."""
    if not faults:
        yield
        return
    from pytest_edge.faults import FaultInjector, FaultPlan

    log = fired if isinstance(fired, FiredLog) else FiredLog()
    plan = FaultPlan.from_dict({"faults": _expand([dict(f) for f in faults], state_dir)})
    injector = FaultInjector(seed, label="scenario")
    teed = _tee(injector, log)
    with injector:
        injector.apply(plan)
        try:
            yield
        finally:
            if not teed:
                for event in injector.fired:
                    log.add(str(event))
            if isinstance(fired, list):
                fired.extend(log.lines)


def _extend_path(sys_path: Sequence[str]) -> None:
    # A forkserver child has the sys.path of the moment the server started; the workload's
    # module may come from a directory added since (a test's folder, a user's scenarios).
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def execute(
    workload: str,
    state_dir: str,
    params: Mapping[str, Any],
    faults: list[Any],
    seed: int,
    sys_path: Sequence[str] = (),
    setup: str | None = None,
    fired_path: str | None = None,
) -> dict[str, Any]:
    """Run the workload once with its faults armed; its result, wall time and fired faults.

    With `fired_path`, each fired fault is also appended there as it fires (`FiredLog`).
    """
    _extend_path(sys_path)
    fn = resolve_callable(workload)
    if setup is not None:
        resolve_callable(setup)(Path(state_dir), **params)
    log = FiredLog(fired_path)
    try:
        with armed_faults(faults, state_dir, seed, log):
            start = time.perf_counter()
            value = fn(Path(state_dir), **params)
            seconds = time.perf_counter() - start
    finally:
        log.close()
    fired = log.lines
    result = coerce_result(value, workload)
    return {
        "items": result.items,
        "errors": result.errors,
        "unit": result.unit,
        "details": json.loads(json.dumps(dict(result.details), default=str)),
        "seconds": seconds,
        "fired": fired,
    }


def write_context(
    path: Path,
    *,
    workload: str,
    recover: str | None,
    setup: str | None,
    params: Mapping[str, Any],
    faults: Sequence[Mapping[str, Any]],
    seed: int,
) -> Path:
    """Write what the crash children need; `CONTEXT_ENV` must name this file when they start."""
    data = {
        "workload": workload,
        "recover": recover,
        "setup": setup,
        "params": dict(params),
        "faults": [dict(f) for f in faults],
        "seed": seed,
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _context() -> dict[str, Any]:
    name = os.environ.get(CONTEXT_ENV)
    if name is None:
        raise RuntimeError(f"${CONTEXT_ENV} is not set: this target runs only under a scenario")
    data: dict[str, Any] = json.loads(Path(name).read_text(encoding="utf-8"))
    return data


def crash_workload(state_dir: str) -> None:
    """Crash-harness target: the scenario's workload with its params and faults."""
    context = _context()
    fn = resolve_callable(context["workload"])
    if context["setup"] is not None:
        resolve_callable(context["setup"])(Path(state_dir), **context["params"])
    fired: list[str] = []
    with armed_faults(context["faults"], state_dir, int(context["seed"]), fired):
        fn(Path(state_dir), **context["params"])


def crash_recover(state_dir: str) -> Any:
    """Crash-harness recovery target: the scenario's ``recover(state_dir) -> {key: value}``."""
    recover = _context()["recover"]
    if recover is None:
        raise RuntimeError("the scenario has no recover function")
    return resolve_callable(recover)(state_dir)
