"""Settings and markers declared once, as data.

Each capability's ``plugin.py`` declares its command-line options (with their ini key and
environment variable, when they have them) as `Setting` values and its markers as `MarkerSpec`
values. From the one declaration come the argparse option, the ini key with the same help text,
the precedence CLI → environment → ini, the marker help line and the configuration reference
in the docs: none of them can drift from the others.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest

IniType = Literal["string", "paths", "args", "linelist", "bool"]


def one_of(flag: str, text: str, choices: Sequence[str]) -> str:
    """`text` (case and surrounding spaces ignored) when it is one of `choices`; otherwise
    ``argparse.ArgumentTypeError`` naming the flag, the value and the choices."""
    value = text.strip().lower()
    if value not in choices:
        raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Setting:
    """One option of pytest-edge: its flag, help, and where else it may be given.

    `parse` turns the text of the flag (and of the environment variable and ini key) into the
    value; it raises ``argparse.ArgumentTypeError`` naming the flag, the value and what is
    allowed.
    """

    flag: str
    help: str
    metavar: str | None = None
    default: Any = None
    parse: Callable[[str], Any] | None = None
    action: Literal["store", "store_true", "append"] = "store"
    ini: str | None = None
    ini_type: IniType = "string"
    env: str | None = None

    @property
    def dest(self) -> str:
        """The name of the parsed option (``--edge-seed`` → ``edge_seed``)."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def full_help(self) -> str:
        """The help text with where else the setting may be given, in order of precedence."""
        if self.action == "append" and self.ini:
            return f"{self.help} Repeatable; the {self.ini} ini key adds to the list."
        sources = [f"{self.flag}"]
        if self.env:
            sources.append(f"the {self.env} environment variable")
        if self.ini:
            sources.append(f"the {self.ini} ini key")
        if len(sources) == 1:
            return self.help
        return f"{self.help} Precedence: {', then '.join(sources)}."


@dataclass(frozen=True)
class MarkerSpec:
    """A marker's name, call signature and one-line help."""

    name: str
    signature: str
    help: str

    @property
    def line(self) -> str:
        """The line registered with ``config.addinivalue_line("markers", ...)``."""
        return f"{self.name}{self.signature}: {self.help}"


def add_settings(parser: pytest.Parser, settings: Iterable[Setting]) -> None:
    """Add each setting's command-line option (and ini key) to the ``edge`` option group."""
    group = parser.getgroup("edge", GROUP_HELP)
    for setting in settings:
        kwargs: dict[str, Any] = {"action": setting.action, "dest": setting.dest}
        if setting.action != "store_true":
            kwargs["metavar"] = setting.metavar
            if setting.parse is not None:
                kwargs["type"] = setting.parse
        kwargs["default"] = [] if setting.action == "append" else setting.default
        # argparse formats help with %: a literal percent sign in help text must be doubled.
        group.addoption(setting.flag, help=setting.full_help.replace("%", "%%"), **kwargs)
        if setting.ini is not None:
            listed = setting.ini_type in ("paths", "args", "linelist")
            parser.addini(
                setting.ini, setting.full_help, type=setting.ini_type, default=[] if listed else ""
            )


def register_markers(config: pytest.Config, markers: Iterable[MarkerSpec]) -> None:
    for marker in markers:
        config.addinivalue_line("markers", marker.line)


def read_setting(config: pytest.Config, setting: Setting) -> tuple[Any, str]:
    """The setting's value and where it came from, by precedence CLI → environment → ini.

    Values from the environment and the ini file go through the same `parse` as the flag's; a
    bad one is a ``pytest.UsageError`` naming where it came from.
    Returns ``(default, "default")`` when it was given nowhere. A repeatable setting
    (``action="append"``) is the ini key's list followed by the flag's values, as its help says.
    """
    value = config.getoption(setting.dest)
    if setting.action == "append" and setting.ini is not None:
        values = [*config.getini(setting.ini), *value]
        return values, f"{setting.flag} and the {setting.ini} ini key"
    if value not in (None, [], False):
        return value, setting.flag
    if setting.env is not None:
        text = os.environ.get(setting.env)
        if text:
            where = f"the {setting.env} environment variable"
            return _parse(setting, text, where), where
    if setting.ini is not None:
        ini_value = config.getini(setting.ini)
        if ini_value not in ("", [], None):
            where = f"the {setting.ini} ini key"
            if isinstance(ini_value, str):
                ini_value = _parse(setting, ini_value, where)
            return ini_value, where
    return setting.default, "default"


def _parse(setting: Setting, text: str, where: str) -> Any:
    if setting.parse is None:
        return text
    try:
        return setting.parse(text)
    except argparse.ArgumentTypeError as error:
        raise pytest.UsageError(f"{where}: {error}") from None


GROUP_HELP = "pytest-edge: simulated edge devices, faults, crashes and benchmarks"
