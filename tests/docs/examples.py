"""The code examples of README.md and docs/*.md, found as fenced blocks, with how to run each.

A block is taken as written; an HTML comment on the line just above its fence (invisible on
GitHub and in the docs site) may say how to run it:

- ``<!-- example: file NAME -->``: the block is a helper file (a workload module, a conftest)
  saved as NAME beside every later example of the same page;
- ``<!-- example: pytest ARGS -> OUTCOME -->``: run the block as a test file (a ``python``
  block) or a scenario file (a ``toml`` block) with ``pytest ARGS``; OUTCOME is what must
  happen, e.g. ``passed=2 skipped=1`` (default: everything passes).

Without a comment a ``python`` block that defines a test is a test file that must pass, any
other ``python`` block a script that must exit 0, and a ``toml`` block is checked by the loader
of what it is (fault plan, profile file). Shell, console and text blocks are not run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`\n]*)$")
_DIRECTIVE = re.compile(r"^<!--\s*example:\s*(?P<body>.*?)\s*-->$")
_TEST = re.compile(r"^(def test_|async def test_|class Test|Test\w* = )", re.MULTILINE)
RUN_LANGUAGES = ("python", "toml")


class ExampleSyntaxError(ValueError):
    """A page's example comment or fence that cannot be understood."""


@dataclass(frozen=True)
class Example:
    """One fenced block of a page and how it is run."""

    page: Path
    line: int
    language: str
    source: str
    kind: str  # "file", "pytest", "script", "plan", "profile", "shell"
    name: str = ""  # the file name for kind "file"
    args: tuple[str, ...] = ()
    outcome: dict[str, int] = field(default_factory=dict)
    files: tuple[tuple[str, str], ...] = ()  # helper files of the page defined above it

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def pages() -> list[Path]:
    """README.md, every Markdown page of the docs site and the reference implementation's notes."""
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "reference_impl" / "README.md"]


def find_examples(paths: Iterable[Path]) -> Iterator[Example]:
    """Every fenced block of the pages, in order."""
    for path in paths:
        yield from _page_examples(path, path.read_text(encoding="utf-8"))


def _page_examples(path: Path, text: str) -> Iterator[Example]:
    lines = text.split("\n")
    files: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index
        closing = re.compile(rf"^{match['indent']}{match['fence']}\s*$")
        index += 1
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        if index == len(lines):
            raise ExampleSyntaxError(f"{path}:{start + 1}: code block never closed")
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in lines[start + 1 : index]) + "\n"
        language = match["info"].strip().split(" ")[0].lower()
        directive = _directive(lines[start - 1] if start else "")
        example = _classify(path, start + 1, language, body, directive, tuple(files))
        if example.kind == "file":
            files.append((example.name, example.source))
        yield example
        index += 1


def _directive(line: str) -> str | None:
    match = _DIRECTIVE.match(line.strip())
    return None if match is None else match["body"]


def _classify(
    path: Path,
    line: int,
    language: str,
    source: str,
    directive: str | None,
    files: tuple[tuple[str, str], ...],
) -> Example:
    where = f"{path}:{line}"
    block = Example(page=path, line=line, language=language, source=source, kind="shell")
    if directive is not None:
        command, _, outcome = directive.partition("->")
        words = shlex.split(command)
        if words[:1] == ["file"] and len(words) == 2 and not outcome:
            return replace(block, kind="file", name=words[1])
        if words[:1] == ["pytest"]:
            return replace(
                block,
                kind="pytest",
                args=tuple(words[1:]),
                outcome=_outcome(outcome, where),
                files=files,
            )
        raise ExampleSyntaxError(
            f"{where}: unknown example comment {directive!r}; "
            "allowed: 'file NAME', 'pytest ARGS -> OUTCOME'"
        )
    if language == "python":
        return replace(block, kind="pytest" if _TEST.search(source) else "script", files=files)
    if language == "toml":
        if "[scenario]" in source:
            raise ExampleSyntaxError(f"{where}: a scenario example needs 'example: pytest ...'")
        return replace(block, kind="profile" if "[profiles." in source else "plan")
    return block


def _outcome(text: str, where: str) -> dict[str, int]:
    outcome: dict[str, int] = {}
    for word in text.split():
        name, equals, count = word.partition("=")
        if not equals or not count.isdigit():
            raise ExampleSyntaxError(f"{where}: outcome {word!r} is not NAME=COUNT")
        outcome[name] = int(count)
    return outcome
