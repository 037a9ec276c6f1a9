"""disk_full / io_error verdicts on real storage libraries (the checks are in fault_checks.py).

``test_fault_verdict`` runs each check in this pytest process, on whichever layer it has: the
system-call layer when pytest was started with the library preloaded, else the Python layer,
where the checks it cannot reach are strict xfails naming why. ``test_fault_verdicts_on_the_
syscall_layer`` starts a pytest with the library preloaded, as a user would, and requires
every check to pass there.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.thirdparty.fault_checks import CHECKS, PYTHON_LAYER_BLIND

ROOT = Path(__file__).resolve().parents[2]


def _syscalls() -> Any:
    try:
        return importlib.import_module("pytest_edge.syscalls")
    except ImportError:
        return None


def _in_process_layer() -> str:
    syscalls = _syscalls()
    return "syscall" if syscalls is not None and syscalls.active() else "python"


LAYER = _in_process_layer()


def _params() -> list[Any]:
    params = []
    for name in CHECKS:
        marks = []
        if LAYER == "python" and name in PYTHON_LAYER_BLIND:
            marks.append(pytest.mark.xfail(strict=True, reason=PYTHON_LAYER_BLIND[name]))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


# sqlitedict's worker thread dies on the failed COMMIT: the check records it through
# threading.excepthook, and pytest would otherwise report it as well.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("name", _params())
def test_fault_verdict(
    name: str, edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CHECKS[name](edge_faults, tmp_path, monkeypatch)


def test_fault_verdicts_on_the_syscall_layer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    syscalls = _syscalls()
    reason = "not part of this checkout" if syscalls is None else syscalls.unavailable_reason()
    if reason is not None:
        pytest.skip(f"the system-call layer is unavailable: {reason}")
    if LAYER == "syscall":
        pytest.skip("this process already runs on the system-call layer: test_fault_verdict is it")
    for key, value in syscalls.preload_env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    result = pytester.runpytest_subprocess(
        f"{ROOT / 'tests/thirdparty/test_fault_verdicts.py'}::test_fault_verdict",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        f"--rootdir={ROOT}",
        "--edge-fault-layer=syscall",  # a usage error, not a silent fallback, if it is not used
    )
    result.stdout.fnmatch_lines(["*pytest-edge faults: syscall layer*"])
    result.assert_outcomes(passed=len(CHECKS))
