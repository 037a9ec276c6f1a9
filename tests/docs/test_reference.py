"""The generated pages: configuration reference from fake room modules, CLI help, includes."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

import pytest

from docs.hooks.reference import (
    GenerationError,
    expand,
    render_cli,
    render_options,
    render_reference,
    select_rooms,
)

ROOM_A = '''
import pytest

from pytest_edge.settings import MarkerSpec, Setting

SETTINGS = (
    Setting(
        "--edge-thing",
        "things to simulate, e.g. a|b.",
        metavar="NAME",
        ini="edge_thing",
        env="PYTEST_EDGE_THING",
    ),
    Setting("--edge-loud", "say more.", action="store_true"),
    Setting("--edge-rounds", "rounds to run.", metavar="N", default=20),
)
MARKERS = (MarkerSpec("edge_thing", "(*names)", "pin the things of this test"),)


@pytest.fixture
def edge_thing():
    """The thing of this test.

    Not this line."""
    return 1


@pytest.fixture(name="edge_other")
def _other_fixture():
    """Another thing, said
    over two lines.

    Not this paragraph."""
    return 2


@pytest.fixture(autouse=True)
def _edge_internal():
    """Not public: not listed."""


def not_a_fixture():
    """Not listed."""
'''

ROOM_B = """
SETTINGS = ()
MARKERS = ()
"""


@pytest.fixture
def rooms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    (tmp_path / "fake_room_a.py").write_text(ROOM_A)
    (tmp_path / "fake_room_b.py").write_text(ROOM_B)
    monkeypatch.syspath_prepend(tmp_path)
    return "fake_room_a", "fake_room_b"


def _section(page: str, title: str) -> list[str]:
    """The table rows of one section of the page."""
    lines = page.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    return lines[2:] if lines[0].startswith("|") else lines


def test_options_with_ini_key_environment_default_and_help(rooms: tuple[str, str]) -> None:
    page = render_reference(rooms)
    assert _section(page, "Options") == [
        "| `--edge-thing=NAME` | `edge_thing` | `PYTEST_EDGE_THING` |  | things to simulate, "
        r"e.g. a\|b. Precedence: --edge-thing, then the PYTEST_EDGE_THING environment variable, "
        "then the edge_thing ini key. |",
        "| `--edge-loud` |  |  | off | say more. |",
        "| `--edge-rounds=N` |  |  | `20` | rounds to run. |",
    ]


def test_ini_keys_environment_variables_and_markers(rooms: tuple[str, str]) -> None:
    page = render_reference(rooms)
    assert _section(page, "Ini keys") == [
        r"| `edge_thing` | string | `--edge-thing` | things to simulate, e.g. a\|b. |"
    ]
    assert _section(page, "Environment variables") == [
        r"| `PYTEST_EDGE_THING` | `--edge-thing` | things to simulate, e.g. a\|b. |"
    ]
    assert _section(page, "Markers") == [
        "| `@pytest.mark.edge_thing(*names)` | pin the things of this test |"
    ]


def test_public_fixtures_by_their_pytest_name_with_the_first_docstring_paragraph(
    rooms: tuple[str, str],
) -> None:
    assert _section(render_reference(rooms), "Fixtures") == [
        "| `edge_thing` | The thing of this test. | `fake_room_a` |",
        "| `edge_other` | Another thing, said over two lines. | `fake_room_a` |",
    ]


def test_empty_declarations_say_none(rooms: tuple[str, str]) -> None:
    assert _section(render_reference(rooms[1:]), "Markers") == ["(none)"]


def test_a_room_without_its_declarations_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_room_bare.py").write_text("MARKERS = ()\n")
    (tmp_path / "fake_room_list.py").write_text("SETTINGS = []\nMARKERS = ()\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(GenerationError, match=r"fake_room_bare declares no SETTINGS"):
        render_reference(["fake_room_bare"])
    with pytest.raises(GenerationError, match=r"fake_room_list.SETTINGS is a list, not a tuple"):
        render_reference(["fake_room_list"])
    with pytest.raises(GenerationError, match=r"'fake_room_missing' cannot be imported"):
        render_reference(["fake_room_missing"])


def test_cli_help_of_the_command_and_each_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="tool", description="Does things.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run it").add_argument("--fast", action="store_true")
    page = render_cli(parser)
    assert "## `tool`\n\n```text\nusage: tool [-h] {run} ...\n\nDoes things." in page
    assert "## `tool run`\n\n```text\nusage: tool run [-h] [--fast]" in page


def test_placeholders_are_filled_and_an_unknown_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nThe one copy.\n")
    page = "# Page\n\n<!-- include: notes.md -->\n\nAfter.\n"
    assert expand(page, tmp_path) == "# Page\n\n# Notes\n\nThe one copy.\n\n\nAfter.\n"
    with pytest.raises(GenerationError, match="unknown generated page 'colours'"):
        expand("<!-- generated: colours -->\n", tmp_path)


def test_the_reference_implementation_page_has_no_copy_of_its_notes() -> None:
    """docs/reference-impl.md includes reference_impl/README.md; it does not repeat it."""
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "reference-impl.md").read_text()
    assert page.strip() == "<!-- include: reference_impl/README.md -->"
    expanded = expand(page, root)
    assert expanded.strip() == (root / "reference_impl" / "README.md").read_text().strip()


def test_the_docs_site_generates_the_cli_page_from_the_real_parser() -> None:
    page = expand("<!-- generated: cli -->\n", Path("."))
    assert "## `pytest-edge compare`" in page
    assert "## `pytest-edge crash`" in page


def test_readme_stays_short() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    size = len(readme.read_bytes())
    assert size <= 12 * 1024, textwrap.shorten(f"README.md is {size} bytes; at most 12 KiB", 80)


def test_readme_links_point_at_files_of_the_repository() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    targets = re.findall(r"\]\((?!https?://|#)([^)#]+)(?:#[^)]*)?\)", readme)
    assert targets, "the README links to its docs pages"
    assert [target for target in targets if not (root / target).is_file()] == []


def test_a_capability_page_gets_the_options_of_its_own_rooms(rooms: tuple[str, str]) -> None:
    assert render_options(["fake_room_a"]).splitlines()[2:] == _section(
        render_reference(rooms), "Options"
    )
    chosen = select_rooms(["pytest_edge.device.plugin", "pytest_edge.bench.plugin"], "bench")
    assert chosen == ["pytest_edge.bench.plugin"]
    with pytest.raises(GenerationError, match=r"no capability module for 'gpu' among a.b.plugin"):
        select_rooms(["a.b.plugin"], "gpu")


def test_a_pipe_in_a_code_cell_does_not_split_the_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_room_pipe.py").write_text(
        "from pytest_edge.settings import Setting\n"
        "SETTINGS = (Setting('--edge-compare', 'what to compare with.', metavar='PATH|latest'),)\n"
        "MARKERS = ()\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    assert render_options(["fake_room_pipe"]).splitlines()[2] == (
        "| <code>--edge-compare=PATH&#124;latest</code> |  |  |  | what to compare with. |"
    )
