"""How the examples runner reads a page: fences, the comment above them, helper files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import ExampleSyntaxError, find_examples

PAGE = """# A page

<!-- example: file helper.py -->
```python
VALUE = 1
```

<!-- example: pytest --edge-profile=rpi4 -k "not slow" -> passed=2 skipped=1 -->
```python
def test_a(): ...
```

```python
print("a script")
```

```toml
[profiles.board]
memory_mb = 512
```

```console
make demo
```
"""


def test_kinds_arguments_outcomes_and_helper_files(tmp_path: Path) -> None:
    examples = list(find_examples([_write(tmp_path, PAGE)]))
    assert [(e.kind, e.line) for e in examples] == [
        ("file", 4),
        ("pytest", 9),
        ("script", 13),
        ("profile", 17),
        ("shell", 22),
    ]
    helper, test, script = examples[:3]
    assert helper.name == "helper.py"
    assert helper.source == "VALUE = 1\n"
    assert test.args == ("--edge-profile=rpi4", "-k", "not slow")
    assert test.outcome == {"passed": 2, "skipped": 1}
    assert test.files == script.files == (("helper.py", "VALUE = 1\n"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\nx = 1\n", r"x.md:1: code block never closed"),
        ("<!-- example: run it -->\n```python\nx = 1\n```\n", r"unknown example comment 'run it'"),
        ("<!-- example: pytest -> passed -->\n```python\n```\n", r"outcome 'passed' is not"),
        ("```toml\n[scenario]\n```\n", r"a scenario example needs 'example: pytest"),
    ],
)
def test_a_page_the_runner_cannot_read_is_an_error_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ExampleSyntaxError, match=message):
        list(find_examples([_write(tmp_path, text)]))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.md"
    path.write_text(text)
    return path
