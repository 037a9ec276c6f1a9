"""Kill -9 and power-loss verdicts on real storage libraries, each justified by its source.

The expected verdicts and their reasons are in ``cases.py`` (and docs/verdicts.md). Where the
power-loss verdicts are checked on both layers: the system-call layer must match the source
everywhere; on the Python layer the verdicts it is known to get wrong are strict xfails naming
why (the "before" figure of the system-call layer).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_edge.crash import CrashHarness, CrashHarnessWarning, CrashReport
from tests.thirdparty.cases import CASES, Case
from tests.thirdparty.layer import syscall_layer_missing

SYSCALL_MISSING = syscall_layer_missing()
H = CrashHarness()
LAYERS = ("syscall", "python")


def _params(cases: tuple[Case, ...]) -> list[Any]:
    """Each case on both layers: the system-call layer must give the verdict the source
    justifies; the Python layer too, except where ``python_layer`` says why it cannot."""
    params = []
    for case in cases:
        for layer in LAYERS:
            marks: list[Any] = []
            if layer == "syscall" and SYSCALL_MISSING:
                marks.append(pytest.mark.skip(reason=f"system-call layer: {SYSCALL_MISSING}"))
            if layer == "python" and case.python_layer:
                marks.append(pytest.mark.xfail(strict=True, reason=case.python_layer))
            params.append(pytest.param(case, layer, id=f"{case.id}-{layer}", marks=marks))
    return params


def _run(
    case: Case,
    state_dir: Path,
    *,
    mode: str,
    cycles: int,
    seed: int,
    layer: str = "auto",
    random_events: int = 200,
) -> CrashReport:
    with warnings.catch_warnings():
        # The Python layer warns that SQLite files changed outside its trace; that warning is
        # what makes its verdict wrong, and the xfail reason says so.
        warnings.simplefilter("ignore", CrashHarnessWarning)
        return H.run(
            case.workload_target,
            case.recover_target,
            state_dir=state_dir,
            cycles=cycles,
            seed=seed,
            mode=mode,
            max_states=32,
            random_events=random_events,
            layer=layer,
        )


def assert_verdict(case: Case, report: CrashReport, layer: str) -> None:
    """The report gives the case's verdict, and a failure is for the reason the source gives."""
    print(report.summary())
    assert report.observed_at == layer, report.observed
    assert report.acked_writes > 0, "the workload acknowledged nothing: no verdict"
    if case.power_loss == "pass":
        report.assert_ok()
        return
    assert report.verdict == "fail", f"{case.id}: expected a fail ({case.why}): {report.summary()}"
    failure = report.failures[0]
    # Lost acknowledged writes, or a store that no longer opens at all (recover raised).
    assert failure.losses or failure.recover_error, failure.describe()
    trace = failure.trace
    for pattern in case.evidence:
        assert any(re.search(pattern, line) for line in trace), (
            f"{case.id}: the failure's trace has no step matching {pattern!r}, so the loss is "
            f"not explained by what the library does ({case.why}):\n" + "\n".join(trace)
        )
    for pattern in case.absent:
        found = [line for line in trace if re.search(pattern, line)]
        assert not found, f"{case.id}: the trace shows {found}, which the source never does"


# One configuration per library: kill -9 does not depend on fsync, so the variants agree. On
# the system-call layer the random kill lands before one of the first traced calls or acks,
# so inside the libraries' own writes (SQLite's journal, WAL and page writes included).
KILL_CASES = [pytest.param(c, id=c.id) for c in CASES if "-" not in c.id]


@pytest.mark.parametrize("case", KILL_CASES)
def test_kill_9_loses_no_acknowledged_write(case: Case, fast_state_dir: Path) -> None:
    """Every library here hands its bytes to the kernel before returning: kill -9 loses none."""
    report = _run(
        case, fast_state_dir, mode="kill", cycles=10, seed=11, random_events=case.kill_events
    )
    print(report.summary())
    report.assert_ok()
    assert report.acked_writes > 0


@pytest.mark.parametrize(("case", "layer"), _params(CASES))
def test_power_loss_verdict(case: Case, layer: str, fast_state_dir: Path) -> None:
    report = _run(case, fast_state_dir, mode="power-loss", cycles=10, seed=12, layer=layer)
    assert_verdict(case, report, layer)


@pytest.mark.slow
@pytest.mark.parametrize(("case", "layer"), _params(CASES))
def test_power_loss_verdict_50_cycles(case: Case, layer: str, fast_state_dir: Path) -> None:
    report = _run(case, fast_state_dir, mode="power-loss", cycles=50, seed=13, layer=layer)
    assert_verdict(case, report, layer)
