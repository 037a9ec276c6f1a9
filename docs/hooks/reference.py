"""MkDocs hook: the pages generated from the code, never copied by hand.

- the configuration reference (options with their ini key, environment variable, default and
  help; ini keys; environment variables; markers; fixtures) from the ``SETTINGS``, ``MARKERS``
  and fixtures of every capability module named in ``pytest_edge.plugin.ROOMS``;
- the command line reference from ``pytest_edge.cli.build_parser()``;
- the reference implementation's notes, included from ``reference_impl/README.md``, their only
  copy.

A page asks for them with a placeholder comment on a line of its own:
``<!-- generated: configuration -->``, ``<!-- generated: options CAPABILITY -->`` (the options
table of one capability, e.g. ``device``), ``<!-- generated: cli -->`` or
``<!-- include: PATH -->`` (PATH relative to the directory of ``mkdocs.yml``).
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

_PLACEHOLDER = re.compile(
    r"^<!--\s*(?P<verb>generated|include):\s*(?P<what>\S+)(?:\s+(?P<arg>\S+))?\s*-->$", re.M
)


class GenerationError(Exception):
    """A declaration the reference cannot be generated from; the message names the module."""


# -- configuration reference ------------------------------------------------------------------


def render_reference(modules: Iterable[str]) -> str:
    """Markdown tables of the options, ini keys, environment variables, markers and fixtures
    that the named modules declare (``SETTINGS``, ``MARKERS``, ``@pytest.fixture`` functions)."""
    rooms = _rooms_of(modules)
    settings = [s for name, module in rooms for s in _declared(module, name, "SETTINGS")]
    markers = [m for name, module in rooms for m in _declared(module, name, "MARKERS")]
    parts = ["## Options", "", *_options_table(settings)]
    parts += ["", "## Ini keys", ""]
    parts += _table(
        ("ini key", "type", "same as", "help"),
        [(_code(s.ini), s.ini_type, _code(s.flag), s.help) for s in settings if s.ini],
    )
    parts += ["", "## Environment variables", ""]
    parts += _table(
        ("variable", "same as", "help"),
        [(_code(s.env), _code(s.flag), s.help) for s in settings if s.env],
    )
    parts += ["", "## Markers", ""]
    parts += _table(
        ("marker", "help"),
        [(_code(f"@pytest.mark.{m.name}{m.signature}"), m.help) for m in markers],
    )
    parts += ["", "## Fixtures", ""]
    parts += _table(
        ("fixture", "what it gives", "declared in"),
        [
            (_code(fixture), summary, _code(name))
            for name, module in rooms
            for fixture, summary in _fixtures(module)
        ],
    )
    return "\n".join(parts) + "\n"


def render_options(modules: Iterable[str]) -> str:
    """The options table alone, for a capability's own page."""
    rooms = _rooms_of(modules)
    settings = [s for name, module in rooms for s in _declared(module, name, "SETTINGS")]
    return "\n".join(_options_table(settings)) + "\n"


def select_rooms(rooms: Iterable[str], capability: str) -> list[str]:
    """The modules of `rooms` in a capability's package (``device``: ``pytest_edge.device.*``)."""
    rooms = list(rooms)
    chosen = [room for room in rooms if capability in room.split(".")[1:-1]]
    if not chosen:
        raise GenerationError(
            f"no capability module for {capability!r} among {', '.join(rooms) or 'none'}"
        )
    return chosen


def _rooms_of(modules: Iterable[str]) -> list[tuple[str, ModuleType]]:
    rooms = [(name, _import(name)) for name in modules]
    if not rooms:
        raise GenerationError("no capability modules given: nothing to document")
    return rooms


def _options_table(settings: list[Any]) -> list[str]:
    return _table(
        ("option", "ini key", "environment", "default", "help"),
        [(_code(_flag(s)), _code(s.ini), _code(s.env), _default(s), s.full_help) for s in settings],
    )


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise GenerationError(f"capability module {name!r} cannot be imported: {error}") from error


def _declared(module: ModuleType, name: str, attribute: str) -> tuple[Any, ...]:
    if not hasattr(module, attribute):
        raise GenerationError(
            f"{name} declares no {attribute}: every capability module declares "
            f"{attribute} (a tuple, possibly empty) for the configuration reference"
        )
    value = getattr(module, attribute)
    if not isinstance(value, tuple):
        raise GenerationError(f"{name}.{attribute} is a {type(value).__name__}, not a tuple")
    return value


def _fixtures(module: ModuleType) -> Iterator[tuple[str, str]]:
    """(name, first docstring paragraph) of the public fixtures a module defines, in source
    order."""
    found = []
    for attribute, value in vars(module).items():
        marker = getattr(value, "_fixture_function_marker", None) or getattr(
            value, "_pytestfixturefunction", None
        )
        if marker is None:
            continue
        name = getattr(marker, "name", None) or attribute
        if name.startswith("_"):  # pytest's convention for a fixture that is not public
            continue
        unwrap = getattr(value, "_get_wrapped_function", None)
        function = value if unwrap is None else unwrap()
        doc = inspect.getdoc(function) or inspect.getdoc(value) or ""
        found.append((_line(function), name, " ".join(doc.split("\n\n")[0].split())))
    for _, name, summary in sorted(found):
        yield name, summary


def _line(function: Callable[..., Any]) -> int:
    try:
        return inspect.getsourcelines(function)[1]
    except (OSError, TypeError):
        return 0


def _flag(setting: Any) -> str:
    if setting.action == "store_true" or not setting.metavar:
        return str(setting.flag)
    return f"{setting.flag}={setting.metavar}"


def _default(setting: Any) -> str:
    default = setting.default
    if setting.action == "store_true":
        return "off"
    if default is None or default == [] or default == "":
        return ""
    return _code(str(default))


def _code(text: str | None) -> str:
    if not text:
        return ""
    if "|" in text:  # a table cell ends at "|", and a code span would show a backslash escape
        return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"
    return f"`{text}`"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# -- command line -----------------------------------------------------------------------------


def render_cli(parser: argparse.ArgumentParser) -> str:
    """The help of a command and of each of its subcommands, as Markdown."""
    parts = [f"## `{parser.prog}`", "", "```text", _help(parser), "```"]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                parts += ["", f"## `{parser.prog} {name}`", "", "```text", _help(subparser), "```"]
    return "\n".join(parts) + "\n"


def _help(parser: argparse.ArgumentParser) -> str:
    # argparse wraps at the terminal's width ($COLUMNS): fix it, so the page is the same anywhere.
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


# -- MkDocs ---------------------------------------------------------------------------------------


def expand(markdown: str, root: Path) -> str:
    """The page with every placeholder replaced by what it names."""

    def replace(match: re.Match[str]) -> str:
        verb, what = match["verb"], match["what"]
        if verb == "include":
            return (root / what).read_text(encoding="utf-8")
        if what == "configuration":
            return render_reference(_rooms())
        if what == "options" and match["arg"]:
            return render_options(select_rooms(_rooms(), match["arg"]))
        if what == "cli":
            from pytest_edge.cli import build_parser

            return render_cli(build_parser())
        raise GenerationError(
            f"unknown generated page {what!r}; known: configuration, options CAPABILITY, cli"
        )

    return _PLACEHOLDER.sub(replace, markdown)


def _rooms() -> tuple[str, ...]:
    plugin = importlib.import_module("pytest_edge.plugin")
    rooms = getattr(plugin, "ROOMS", None)
    if rooms is None:
        raise GenerationError(
            "pytest_edge.plugin.ROOMS is missing: the configuration reference is generated from "
            "the capability modules it names (their SETTINGS, MARKERS and fixtures)"
        )
    return tuple(rooms)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the page's placeholders (a failure fails the build, with its reason)."""
    from mkdocs.exceptions import PluginError

    try:
        return expand(markdown, Path(config["config_file_path"]).parent)
    except (GenerationError, OSError) as error:
        raise PluginError(f"{page.file.src_uri}: {error}") from error
