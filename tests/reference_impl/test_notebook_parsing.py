"""The notebook copy parses into the twelve code cells the chapter has."""

from __future__ import annotations

import ast

from tests.reference_impl.notebook import notebook_cells


def test_twelve_cells_that_compile() -> None:
    cells = notebook_cells()
    assert sorted(cells) == list(range(1, 13))
    for number, source in cells.items():
        compile(source, f"cell {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_cells_are_the_expected_ones() -> None:
    cells = notebook_cells()
    assert "from memory_management import" in cells[1]
    assert "await task_manager.run_embedding_generation" in cells[6]
    assert "os.unlink(db_path)" in cells[9]
    assert "new_state_manager.load_state()" in cells[12]
