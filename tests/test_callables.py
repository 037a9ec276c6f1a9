"""The one resolver of user code by name, used by scenarios, crash targets and faults."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_edge.callables import (
    BadName,
    ImportFailed,
    NoAttribute,
    NotCallable,
    resolve_attribute,
    resolve_callable,
)


def test_module_function_and_nested_names_resolve() -> None:
    assert resolve_callable("json:dumps") is json.dumps
    assert resolve_callable("json:JSONDecoder.decode") is json.JSONDecoder.decode


def test_a_script_path_resolves_only_when_files_are_allowed(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("def run():\n    return 7\n")
    assert resolve_callable(f"{script}:run", files=True)() == 7
    with pytest.raises(ImportFailed, match="cannot import module"):
        resolve_callable(f"{script}:run")


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("json.dumps", BadName, r"'json.dumps' is not of the form 'module:function'"),
        ("json:", BadName, "not of the form"),
        ("no_such_mod_q:f", ImportFailed, r"cannot import module 'no_such_mod_q'"),
        ("json:nope", NoAttribute, r"'json' has no attribute 'nope'"),
        ("json:decoder.nope", NoAttribute, r"'json.decoder' has no attribute 'nope'"),
        ("os:sep", NotCallable, r"'os:sep' is not callable"),
    ],
)
def test_bad_references_say_which_part_failed(ref: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_callable(ref)


def test_dotted_names_import_the_longest_module_prefix() -> None:
    assert resolve_attribute("os.path.join") == (os.path, "join")
    assert resolve_attribute("json.JSONDecoder.decode") == (json.JSONDecoder, "decode")
    with pytest.raises(NoAttribute, match=r"'os.path' has no attribute 'nope'"):
        resolve_attribute("os.path.nope")
    with pytest.raises(ImportFailed, match=r"no_such_pkg_q"):
        resolve_attribute("no_such_pkg_q.mod.f")
    with pytest.raises(BadName, match="dotted name"):
        resolve_attribute("fsync")


@pytest.mark.parametrize(
    ("resolve", "ref", "example"),
    [
        (resolve_callable, ".jobs:ingest", "package.module:function"),
        (resolve_callable, "..jobs:ingest", "package.module:function"),
        (resolve_attribute, ".db.connect", "package.module.function"),
    ],
)
def test_relative_module_names_are_refused_with_the_absolute_form(
    resolve: Callable[[str], object], ref: str, example: str
) -> None:
    with pytest.raises(BadName) as info:
        resolve(ref)
    assert str(info.value) == (
        f"{ref!r} is a relative module name; write the absolute name, e.g. {example!r}"
    )


def test_a_file_target_starting_with_a_dot_is_a_file_not_a_relative_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app.py").write_text("def main():\n    return 'ran'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "__edge_main__", raising=False)  # restored afterwards
    assert resolve_callable("./app.py:main", files=True)() == "ran"
    with pytest.raises(BadName, match="is a relative module name"):
        resolve_callable("./app.py:main")
