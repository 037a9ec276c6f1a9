"""StatePersistenceManager.save_state under disk full and EIO on fsync/rename (notebook API).

The previous state must stay loadable and the error must be clear: an exception carrying the
OS error (errno) that caused it, raised once (an fsync error is fatal, never retried).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_edge.faults import ArmedFault, FaultInjector

production_patterns = pytest.importorskip(
    "reference_impl.production_patterns", reason="reference_impl.production_patterns not merged"
)

PREVIOUS = {"current_goal": "Plan a multi-day trip to Mars", "step": 1}


def error_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def saved_state(path: Path) -> object:
    manager = production_patterns.StatePersistenceManager(str(path))
    for key, value in PREVIOUS.items():
        manager.set_state(key, value)
    manager.save_state()
    return manager


def save_error(manager: object) -> BaseException:
    """The exception save_state raised (its type is the module's own choice)."""
    try:
        manager.save_state()  # type: ignore[attr-defined]
    except Exception as exc:
        return exc
    pytest.fail("save_state() did not raise under the fault")


def assert_previous_state_loads(path: Path) -> None:
    fresh = production_patterns.StatePersistenceManager(str(path))
    fresh.load_state()
    for key, value in PREVIOUS.items():
        assert fresh.get_state(key) == value


ARMS: dict[str, tuple[Callable[[FaultInjector, Path], ArmedFault], int]] = {
    "disk_full": (lambda f, d: f.disk_full(d), errno.ENOSPC),
    "eio_fsync": (lambda f, d: f.io_error(d, on="fsync", times=None), errno.EIO),
    "eio_rename": (lambda f, d: f.io_error(d, on="rename", times=None), errno.EIO),
    "eio_write": (lambda f, d: f.io_error(d, on="write", times=None), errno.EIO),
    "read_only": (lambda f, d: f.read_only(d), errno.EROFS),
}


@pytest.mark.parametrize("fault", list(ARMS))
def test_failed_save_keeps_the_previous_state_and_says_why(
    edge_faults: FaultInjector, tmp_path: Path, fault: str
) -> None:
    path = tmp_path / "agent_state.json"
    manager = saved_state(path)
    arm, code = ARMS[fault]
    armed = arm(edge_faults, tmp_path)
    manager.set_state("step", 2)  # type: ignore[attr-defined]
    manager.set_state("current_goal", "x" * 10_000)  # type: ignore[attr-defined]
    error = save_error(manager)
    codes = [getattr(e, "errno", None) for e in error_chain(error)]
    assert code in codes, f"{error!r} does not carry errno {errno.errorcode[code]}"
    assert str(error)
    if fault == "eio_fsync":
        assert armed.calls == 1, "an fsync error must be fatal, never retried"
        save_error(manager)  # the same manager does not try again either
        assert armed.calls == 1
    assert len(armed.fired) == 1
    edge_faults.disarm()
    assert_previous_state_loads(path)
    # After a failed fsync the data on disk is unknown: the manager may refuse to go on, and a
    # restarted one (load_state, as after a reboot) must be able to save again.
    restarted = production_patterns.StatePersistenceManager(str(path))
    restarted.load_state()
    restarted.set_state("step", 2)
    restarted.save_state()
    fresh = production_patterns.StatePersistenceManager(str(path))
    fresh.load_state()
    assert fresh.get_state("step") == 2


@pytest.mark.parametrize("fault", ["disk_full", "eio_rename", "eio_write", "read_only"])
def test_no_temp_files_pile_up_after_failed_saves(
    edge_faults: FaultInjector, tmp_path: Path, fault: str
) -> None:
    path = tmp_path / "agent_state.json"
    manager = saved_state(path)
    before = set(os.listdir(tmp_path))
    ARMS[fault][0](edge_faults, tmp_path)
    for step in range(5):
        manager.set_state("step", step)  # type: ignore[attr-defined]
        save_error(manager)
    edge_faults.disarm()
    new = set(os.listdir(tmp_path)) - before
    assert not [name for name in new if ".tmp" in name], f"temporary files left: {sorted(new)}"
    assert len(new) <= 1  # at most the previous generation, kept as the fallback
    assert_previous_state_loads(path)
