"""The package's import graph, read with `ast` (nothing is imported).

- no circle among module-level imports (imports under ``if TYPE_CHECKING:`` and inside
  functions are not module-level: they run later, or never);
- `pytest_edge/plugin.py` only wires: under 100 lines;
- no module imports another capability's ``plugin`` module: capabilities talk through the
  hooks of `pytest_edge.hookspecs` and read shared state from low modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_edge"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: into if/try/with blocks, not functions or TYPE_CHECKING."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _top_level_statements(node.body)
            yield from _top_level_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level_statements(block)
            for handler in node.handlers:
                yield from _top_level_statements(handler.body)
        elif isinstance(node, ast.With):
            yield from _top_level_statements(node.body)
        else:
            yield node


def _imported(node: ast.stmt, module: str, is_package: bool) -> list[str]:
    """The pytest_edge modules `node` imports (``from a import b`` counts a.b when a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    return [target, *(f"{target}.{alias.name}" for alias in node.names)]


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in _top_level_statements(tree.body):
            for target in _imported(node, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _all_imports() -> Iterator[tuple[str, str]]:
    """Every (module, imported pytest_edge module), at any depth (functions too)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, name, path.name == "__init__.py"):
                    if target in modules:
                        yield name, target


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_reader_sees_imports_and_skips_type_checking_blocks() -> None:
    graph = _graph()
    assert "pytest_edge.settings" in graph["pytest_edge.device.plugin"]
    assert "pytest_edge.report.model" not in graph["pytest_edge.hookspecs"]  # TYPE_CHECKING


def test_no_import_circle_among_module_level_imports() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_plugin_py_only_wires() -> None:
    lines = (PACKAGE / "plugin.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 100


@pytest.mark.parametrize("room", ["device", "faults", "crash", "bench", "scenarios", "report"])
def test_no_module_imports_another_capabilitys_plugin(room: str) -> None:
    plugin = f"pytest_edge.{room}.plugin"
    importers = sorted(
        module
        for module, target in _all_imports()
        if target == plugin and not module.startswith(f"pytest_edge.{room}.")
    )
    assert importers == [], f"{plugin} is imported by {importers}: use a hook or a low module"
