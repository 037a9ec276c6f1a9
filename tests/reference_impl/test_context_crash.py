"""save() under kill -9 and power loss: every acknowledged turn is there after a restart.

The workload and recovery are module-level functions: the crash harness's child processes
import them from this module.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import pytest_edge
from reference_impl.context_optimization import ContextConfig, ThreeTieredContextSystem

STATE_FILE = "context.json"
# A cap above anything a run reaches, so every turn stays in memory and can be checked.
CONFIG = ContextConfig(max_context_tokens=400, buffer_tokens=80, max_semantic_items=100_000)


def context_workload(state_dir: str) -> None:
    """Add a turn, save, acknowledge it; forever (until the harness kills the process)."""
    path = Path(state_dir) / STATE_FILE
    if path.exists():
        system = ThreeTieredContextSystem.load(path)
    else:
        system = ThreeTieredContextSystem(CONFIG)
    with system:
        for n in itertools.count(system.get_statistics()["total_messages"]):
            content = f"Turn {n}: the battery of device {n % 13} drains in the cold."
            pytest_edge.intent(f"turn:{n}", content)
            system.add_message("user" if n % 2 == 0 else "assistant", content)
            system.save(path)
            pytest_edge.ack(f"turn:{n}", content)
            pytest_edge.crashpoint("saved")


def context_recover(state_dir: str) -> dict[str, str]:
    """Every turn the saved state holds (none before the first save)."""
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return {}
    with ThreeTieredContextSystem.load(path) as system:
        return {f"turn:{m.index}": m.content for m in system.messages}


@pytest.mark.parametrize(("mode", "cycles"), [("kill", 15), ("power-loss", 10)])
def test_no_acknowledged_turn_is_lost(
    edge_crash: pytest_edge.CrashHarness, fast_state_dir: Path, mode: str, cycles: int
) -> None:
    report = edge_crash.run(
        context_workload,
        context_recover,
        state_dir=fast_state_dir,
        cycles=cycles,
        seed=17,
        mode=mode,
    )
    print(report.summary())
    report.assert_ok()
    assert report.cycles_run == cycles
    assert report.acked_writes > cycles
