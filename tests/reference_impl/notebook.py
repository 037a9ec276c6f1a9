"""Run the chapter's notebook cells unchanged against reference_impl.

The notebook (``data/chapter11_notebook.txt``, a copy of the book's demo) is the API contract:
cells are numbered 1..12 in order of appearance and run in one shared namespace, as Jupyter
would, from a scratch working directory, with ``reference_impl/`` importable as top-level
modules (the notebook does ``sys.path.append('.')`` and ``from memory_management import ...``).
Top-level ``await`` (cell 6) is compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import os
import sys
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOTEBOOK = Path(__file__).parent / "data" / "chapter11_notebook.txt"
REFERENCE_IMPL = Path(__file__).resolve().parents[2] / "reference_impl"
_CELL_MARK = "In [None]:"


def notebook_cells() -> dict[int, str]:
    """Code cells by number (1-based). A cell ends at the first run of two blank lines."""
    text = NOTEBOOK.read_text(encoding="utf-8")
    cells = {}
    for number, chunk in enumerate(text.split(_CELL_MARK)[1:], start=1):
        cells[number] = chunk.split("\n\n\n", 1)[0].strip("\n") + "\n"
    return cells


@contextmanager
def _notebook_environment(workdir: Path) -> Iterator[None]:
    old_cwd = Path.cwd()
    old_path = list(sys.path)
    os.chdir(workdir)
    sys.path.insert(0, str(REFERENCE_IMPL))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


def run_cells(
    numbers: Iterable[int], workdir: Path, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the given cells in order in one namespace and return it."""
    cells = notebook_cells()
    namespace = {"__name__": "__notebook__"} if namespace is None else namespace
    # As in Jupyter: without it, code that looks up its caller's builtins (numpy's array
    # printing does) fails with KeyError: '__builtins__'.
    namespace.setdefault("__builtins__", builtins)
    with _notebook_environment(workdir):
        for number in numbers:
            code = compile(
                cells[number],
                f"<notebook cell {number}>",
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            result = types.FunctionType(code, namespace)()
            if inspect.iscoroutine(result):
                asyncio.run(result)
    return namespace
