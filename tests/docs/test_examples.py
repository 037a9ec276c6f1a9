"""Every code example of README.md, the docs pages and reference_impl/README.md runs as written.

Test files run in a real pytest session (`pytester`) and must end as the page says; scripts run
in a fresh interpreter in a temporary directory and must exit 0; TOML fault plans and profile
files must load. How each block is run: `tests/docs/examples.py`.
"""

from __future__ import annotations

import os
import sys

import numpy  # noqa: F401 - see below
import pytest

from pytest_edge import FaultPlan, load_profile
from tests.docs.examples import ROOT, Example, find_examples, pages

# numpy is imported here, in the outer process, on purpose: pytester's in-process runs drop the
# modules an inner run imported, and numpy refuses to load its C core a second time in a process
# ("cannot load module more than once per process"), so a later example would fail if an
# earlier one had imported numpy first (pytest-edge imports it only when a capability needs it).

EXAMPLES = list(find_examples(pages()))
RUN = [example for example in EXAMPLES if example.kind not in ("file", "shell")]


def _write_files(pytester: pytest.Pytester, example: Example) -> None:
    for name, source in example.files:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


@pytest.mark.parametrize("example", RUN, ids=[example.id for example in RUN])
def test_example_runs(
    example: Example, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_files(pytester, example)
    # Under `make test` this runs in an xdist worker: pytest-benchmark reads this variable and
    # would take the inner run for an xdist worker too (benchmarks untimed, a warning).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    if example.kind == "pytest":
        name = "scenario_example.toml" if example.language == "toml" else "test_example.py"
        (pytester.path / name).write_text(example.source, encoding="utf-8")
        pytester.syspathinsert()
        result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist", *example.args)
        if example.outcome:
            result.assert_outcomes(**example.outcome)
        else:
            outcomes = result.parseoutcomes()
            assert result.ret == pytest.ExitCode.OK, str(result.stdout)
            assert outcomes.get("passed", 0) > 0
    elif example.kind == "script":
        script = pytester.path / "example.py"
        script.write_text(example.source, encoding="utf-8")
        # The repository's own reference_impl is not installed: its notes import it from here.
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(ROOT)]))
        result = pytester.run(sys.executable, script, timeout=120)
        assert result.ret == 0, f"{result.stdout}\n{result.stderr}"
    elif example.kind == "plan":
        plan = FaultPlan.from_toml(example.source)
        assert FaultPlan.from_toml(plan.to_toml()) == plan
    else:
        path = pytester.path / "profiles.toml"
        path.write_text(example.source, encoding="utf-8")
        for name in _profile_names(example.source):
            assert load_profile(name, extra_files=[path]).name == name


def _profile_names(source: str) -> list[str]:
    return [
        line.strip()[len("[profiles.") : -1]
        for line in source.splitlines()
        if line.strip().startswith("[profiles.")
    ]


# Pages without code of their own: generated from the code, or a log of measurements.
WITHOUT_EXAMPLES = {"cli.md", "configuration.md", "measurements.md", "reference-impl.md"}


def test_every_guide_page_has_a_runnable_example() -> None:
    missing = [
        page.relative_to(ROOT).as_posix()
        for page in pages()
        if page.name not in WITHOUT_EXAMPLES and not any(e.page == page for e in RUN)
    ]
    assert missing == []


def test_every_helper_file_is_used_by_a_later_example() -> None:
    """A `file` block that no example runs with would be code that is never executed."""
    for helper in (e for e in EXAMPLES if e.kind == "file"):
        users = [
            e for e in RUN if e.page == helper.page and (helper.name, helper.source) in e.files
        ]
        assert users, f"{helper.id}: no later example on the page uses {helper.name}"
