"""Workloads of the shipped scenarios (``scenarios/*.toml``): the reference implementation at work.

Each workload follows the scenario contract: ``workload(state_dir, **params)`` returns
``{"items": completed, "errors": failed, "unit": ...}`` (plus ``details`` for custom checks).
Recover functions take the state directory and return ``{key: value}`` as recovered, which
the crash harness compares with the writes the workload acknowledged (``pytest_edge.ack``).
They live in an importable module because they run in child processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reference_impl.production_patterns import (
    StateCorruptedError,
    StatePersistenceManager,
)

Result = dict[str, Any]

STATE_FILE = "agent_state.bin"


# --- production_patterns: state persistence ---------------------------------------------------


def corrupted_state_recovery(
    state_dir: Path, rounds: int = 50, damage: str = "flip", payload_bytes: int = 512
) -> Result:
    """Damage the newest state file (as SD-card bit rot or a torn write would) and restart.

    Each round saves two generations, damages the current file (``flip``: one flipped byte in
    the payload; ``truncate``: the file cut in half; ``empty``: zero bytes), and loads with a
    fresh manager. A round counts as an item when the load falls back to the previous
    generation and returns exactly its values; otherwise it is an error.
    """
    if damage not in ("flip", "truncate", "empty"):
        raise ValueError(f"damage={damage!r}: use 'flip', 'truncate' or 'empty'")
    path = Path(state_dir) / STATE_FILE
    done = errors = 0
    fallbacks = 0
    for r in range(rounds):
        writer = StatePersistenceManager(path)
        writer.load_state()
        previous = {"round": r, "generation": "previous", "data": "p" * payload_bytes}
        for key, value in previous.items():
            writer.set_state(key, value)
        writer.save_state()
        writer.set_state("generation", "current")
        writer.save_state()
        raw = bytearray(path.read_bytes())
        if damage == "flip":
            raw[len(raw) - 1 - (r % (payload_bytes // 2))] ^= 0x20
        elif damage == "truncate":
            raw = raw[: len(raw) // 2]
        else:
            raw = bytearray()
        path.write_bytes(bytes(raw))
        reader = StatePersistenceManager(path)
        try:
            report = reader.load_state()
        except StateCorruptedError:
            errors += 1
            continue
        if report.fell_back:
            fallbacks += 1
        if reader.as_dict() == previous and report.fell_back:
            done += 1
        else:
            errors += 1
    return {
        "items": done,
        "errors": errors,
        "unit": "recoveries",
        "details": {"fallbacks": fallbacks},
    }
