"""Crash-harness workloads over the reference implementation (imported by child processes).

State persistence: an agent keeps goals, a running task and preferences; each save is
acknowledged key by key after ``save_state()`` returned. Database: documents and embeddings
go in batches; a batch is acknowledged (its row count) after its transaction committed, and
declared as an intent before, so recovery may show it all or not at all, never in part.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest_edge

STATE_FILE = "agent_state.json"
DB_FILE = "edge.db"
BATCH = 40


def state_workload(state_dir: str) -> None:
    from reference_impl.production_patterns import StatePersistenceManager

    manager = StatePersistenceManager(os.path.join(state_dir, STATE_FILE))
    manager.load_state()
    turn = int(manager.get_state("turn", 0))
    while True:
        turn += 1
        changes: dict[str, Any] = {
            "turn": turn,
            f"goal:{turn}": {"goal": f"Plan step {turn} of the Mars trip", "turn": turn},
            "current_task": f"Research landing site {turn % 7}",
            "preferences": {"duration": f"{turn % 10} days", "interests": ["space", turn]},
        }
        if turn % 5 == 0:
            changes[f"goal:{turn - 3}"] = pytest_edge.DELETED
        for key, value in changes.items():
            pytest_edge.intent(key, value)
            if value is pytest_edge.DELETED:
                manager.delete_state(key)
            else:
                manager.set_state(key, value)
        manager.save_state()
        for key, value in changes.items():
            pytest_edge.ack(key, value)
        pytest_edge.crashpoint("saved")


def state_recover(state_dir: str) -> dict[str, Any]:
    from reference_impl.production_patterns import StatePersistenceManager

    manager = StatePersistenceManager(os.path.join(state_dir, STATE_FILE))
    manager.load_state()
    return manager.as_dict()


def _optimizer(state_dir: str, **settings: Any) -> Any:
    from reference_impl.database_optimization import DatabaseConfig, EdgeDatabaseOptimizer

    return EdgeDatabaseOptimizer(
        DatabaseConfig(db_path=os.path.join(state_dir, DB_FILE), connection_pool_size=2, **settings)
    )


def _batches(optimizer: Any) -> dict[str, int]:
    """Rows per batch, by the batch number stored in each row."""
    counts: Counter[str] = Counter()
    with optimizer.pool.connection("crash-recover") as conn:
        for (metadata,) in conn.execute("SELECT metadata FROM documents"):
            counts[f"docs:{json.loads(metadata)['batch']}"] += 1
        for (vector_id,) in conn.execute("SELECT vector_id FROM embeddings"):
            counts[f"vectors:{vector_id.split('-')[0]}"] += 1
    return dict(counts)


def db_workload(state_dir: str) -> None:
    """The default setting: WAL + synchronous=NORMAL."""
    _db_batches(_optimizer(state_dir))


def db_workload_durable(state_dir: str) -> None:
    """``durable=True`` in WAL mode (synchronous=FULL)."""
    _db_batches(_optimizer(state_dir, durable=True))


def db_workload_durable_rollback(state_dir: str) -> None:
    """``durable=True`` with a rollback journal (journal_mode=DELETE, synchronous=EXTRA)."""
    _db_batches(_optimizer(state_dir, durable=True, enable_wal_mode=False))


def db_workload_rollback_full(state_dir: str) -> None:
    """A rollback journal with synchronous=FULL: the journal's deletion is never synced."""
    _db_batches(_optimizer(state_dir, synchronous="FULL", enable_wal_mode=False))


def _db_batches(optimizer: Any) -> None:
    batch = len(_batches(optimizer))
    while True:
        batch += 1
        docs = [
            {
                "title": f"Document {batch}-{j}",
                "content": f"Batch {batch} row {j} about edge inference and local models.",
                "metadata": {"batch": batch, "row": j},
            }
            for j in range(BATCH)
        ]
        pytest_edge.intent(f"docs:{batch}", BATCH)
        optimizer.batch_insert_documents(docs)
        pytest_edge.ack(f"docs:{batch}", BATCH)
        vectors = [
            {"vector_id": f"{batch}-{j}", "vector": [1.0 + j, 2.0, float(batch)]}
            for j in range(BATCH)
        ]
        pytest_edge.intent(f"vectors:{batch}", BATCH)
        optimizer.batch_insert_embeddings(vectors)
        pytest_edge.ack(f"vectors:{batch}", BATCH)


def db_recover(state_dir: str) -> dict[str, int]:
    optimizer = _optimizer(state_dir)
    try:
        return _batches(optimizer)
    finally:
        optimizer.close()


def db_recover_rollback(state_dir: str) -> dict[str, int]:
    """Recover a rollback-journal store as its app opens it (not switching it to WAL)."""
    optimizer = _optimizer(state_dir, enable_wal_mode=False)
    try:
        return _batches(optimizer)
    finally:
        optimizer.close()
