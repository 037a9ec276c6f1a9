"""The whole chapter notebook, cells 1 to 12 in order in one namespace, as a reader runs it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tests.reference_impl.notebook import run_cells


def test_all_twelve_cells_run_unchanged_and_clean_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_cells(range(1, 13), tmp_path)
    out = capsys.readouterr().out

    assert "Production Architecture Demo Complete!" in out
    db_path = namespace["db_path"]
    del namespace
    gc.collect()
    # Cell 9 deletes the database and cell 12 the state file: nothing may be left behind.
    assert [p.name for p in tmp_path.iterdir()] == []
    assert [s for s in ("", "-wal", "-shm") if Path(db_path + s).exists()] == []
