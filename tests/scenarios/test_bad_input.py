"""Input that cannot hurt the session: each bad scenario file errors alone, in one line naming
the file, the key and what is allowed, at collection; the other scenarios still run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.scenarios.schema import (
    MAX_SCENARIO_BYTES,
    SNIFF_BYTES,
    is_scenario_file,
    sniff_toml,
)
from tests.scenarios.support import scenario_toml


def _literal(text: str) -> str:
    """`text` as an fnmatch pattern whose '[' is literal (its '*' stay wildcards)."""
    return text.replace("[", "[[]")


# The suite runs with filterwarnings=error, which the in-process runs inherit.
_SHOW_WARNINGS = ("-W", "always::pytest_edge.errors.EdgeWarning")
_HEAD = '[scenario]\nworkload = "wl:calls"\n'
_CRASH = '[scenario]\nworkload = "wl:counter"\nrecover = "wl:recover"\n'
_FAIL = '[[faults]]\nkind = "fail"\ntarget = "wl.fetch"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            _HEAD + "timeout = 1e10\n",
            "scenario.timeout=10000000000.0: must be a number of seconds from 0.001 to "
            "2147483647 (the longest timer a 32-bit OS clock takes, about 68 years)",
            id="timeout-past-the-os-timer",
        ),
        pytest.param(
            _HEAD.encode() + b'description = "caf\xe9"\n',
            "not UTF-8 text (byte 0xe9 at offset 51); TOML files are UTF-8",
            id="not-utf8",
        ),
        pytest.param(
            _HEAD + "timeout = \n",
            "not valid TOML: Invalid value (at line 3, column 11)",
            id="toml",
        ),
        pytest.param(
            '[scenario]\nworkload = ".wl:calls"\n',
            "scenario.workload='.wl:calls': '.wl:calls' is a relative module name; write the "
            "absolute name, e.g. 'package.module:function'",
            id="relative-module",
        ),
        pytest.param(
            _HEAD + _FAIL + 'exc = { type = "KeyboardInterrupt" }\n',
            "faults[0].exc.type='KeyboardInterrupt': not allowed; use an Exception subclass "
            "(KeyboardInterrupt, SystemExit, GeneratorExit and BaseException would end the "
            "pytest session, not the test)",
            id="keyboard-interrupt",
        ),
        pytest.param(
            _HEAD + _FAIL + 'exc = { type = "OSError", args = [1, 2, 3, 4, 5, 6, 7] }\n',
            "faults[0].exc.args=[1, 2, 3, 4, 5, 6, 7]: OSError takes at most 5 arguments*",
            id="oserror-args",
        ),
        pytest.param(
            _HEAD + _FAIL + 'exc = { type = "UnicodeError", args = [1, 2] }\n'
            '[[faults]]\nkind = "slow"\ntarget = "wl.fetch"\nseconds = 1e12\n',
            "faults[1].seconds=1000000000000.0: must be a number of seconds from 0 to 2147483647*",
            id="slow-seconds",
        ),
        pytest.param(
            _CRASH + '[crash]\nkill = "bogus"\ncycles = 2\n',
            "crash.kill='bogus': is not a kill point; use 'random', 'random-time:SECONDS'*",
            id="kill-point",
        ),
        pytest.param(
            _CRASH + '[crash]\nkill = "random-time:1e12"\n',
            "crash.kill='random-time:1e12': SECONDS in 'random-time:SECONDS' must be at most "
            "2147483647*",
            id="kill-delay",
        ),
        pytest.param(
            _HEAD + '[[faults]]\nkind = "memory_pressure"\nmb = 1e20\n',
            "faults[0].mb=1e+20: must be a number of MB > 0 and <= 8796093022207*",
            id="memory-mb",
        ),
        pytest.param(
            _HEAD + '[[faults]]\nkind = "slow"\ntarget = "wl.fetchh"\nseconds = 0\n',
            "faults[0].target='wl.fetchh': 'wl' has no attribute 'fetchh'",
            id="fault-target",
        ),
        pytest.param(
            _HEAD + "[expect]\nmax_error_rat = 0.1\n",
            "expect.max_error_rat: unknown key (did you mean 'max_error_rate'?)*",
            id="did-you-mean",
        ),
    ],
)
def test_each_bad_file_errors_alone_in_one_line_and_the_rest_runs(
    wl: pytest.Pytester, body: str | bytes, message: str
) -> None:
    wl.makefile(".toml", good=scenario_toml("good", "calls"))
    broken = wl.path / "broken.toml"
    if isinstance(body, bytes):
        broken.write_bytes(body)
    else:
        broken.write_text(body)
    result = wl.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([_literal(f"invalid scenario file: {broken}: {message}")])
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out
    assert "Traceback" not in out


def test_a_big_data_toml_is_never_parsed(wl: pytest.Pytester) -> None:
    # [scenario] past the sniffed head: a data file, not a scenario (main parsed it whole,
    # then collected it as a broken scenario because the text mentions [scenario]).
    rows = "".join(f'[[row]]\nid = {i}\ntext = "{"x" * 60}"\n' for i in range(40_000))
    data = wl.path / "data.toml"
    data.write_text(rows + "[scenario]\nbroken =\n")
    assert data.stat().st_size > 40 * SNIFF_BYTES
    wl.makefile(".toml", good=scenario_toml("good", "calls"))
    result = wl.runpytest()
    result.stdout.fnmatch_lines(["collected 1 item"])
    result.assert_outcomes(passed=1)


def test_a_big_scenario_warns_unless_under_a_configured_scenario_path(
    wl: pytest.Pytester,
) -> None:
    sub = wl.path / "long"
    sub.mkdir()
    big = sub / "big.toml"
    big.write_text(scenario_toml("big", "calls") + "# padding\n" * (MAX_SCENARIO_BYTES // 10))
    result = wl.runpytest(*_SHOW_WARNINGS)
    result.assert_outcomes()
    result.stdout.fnmatch_lines(
        [
            _literal(
                f"*ScenarioFileWarning: {big}: has a [scenario] table but is 1.0 MB, over the "
                "1 MB a scenario file may have; not collected (add its directory to the "
                "edge_scenario_paths ini key to collect it)"
            )
        ]
    )
    wl.runpytest("--edge-scenario-path", "long").assert_outcomes(passed=1)
    wl.makeini("[pytest]\nedge_scenario_paths = long\n")
    wl.runpytest().assert_outcomes(passed=1)
    # The flag adds to the ini key's paths (the help says so), it does not replace them.
    other = wl.path / "other"
    other.mkdir()
    (other / "big2.toml").write_text(
        scenario_toml("big2", "calls") + "# padding\n" * (MAX_SCENARIO_BYTES // 10)
    )
    wl.runpytest("--edge-scenario-path", "other").assert_outcomes(passed=2)


def test_every_toml_under_a_scenario_path_is_a_scenario(wl: pytest.Pytester) -> None:
    (wl.path / "scen").mkdir()
    (wl.path / "scen" / "notes.toml").write_text("[params]\nn = 1\n")
    result = wl.runpytest("--edge-scenario-path=scen")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*notes.toml: scenario: is required: a scenario file has a*"])


@pytest.mark.parametrize("table", ["scenaro", "Scenario", "scenarios"])
def test_a_misspelled_scenario_table_warns_with_the_fix(wl: pytest.Pytester, table: str) -> None:
    typo = wl.path / "typo.toml"
    typo.write_text(f'[{table}]\nworkload = "wl:calls"\n')
    wl.makefile(".toml", good=scenario_toml("good", "calls"))
    result = wl.runpytest(*_SHOW_WARNINGS)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            _literal(
                f"*typo.toml:1: ScenarioFileWarning: {typo}: table [{table}] looks like a "
                "misspelled [scenario] (did you mean [scenario]?); the file is not collected as "
                "a scenario"
            )
        ]
    )


def test_sniffing_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('title = "x"\n[scenario]\nworkload = "a:b"\n')
    assert sniff_toml(path).scenario
    assert is_scenario_file(path)
    path.write_text('scenario.workload = "a:b"\n')
    assert is_scenario_file(path)
    path.write_text("[tool.scenario]\n[scenarios_data]\nx = 1\n")
    assert not is_scenario_file(path)
    assert sniff_toml(path).near is None
    path.write_text("# [scenario]\n[data]\n")
    assert not is_scenario_file(path)


def test_the_warning_points_at_the_misspelled_table(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('# notes\n\n[scenaro]\nworkload = "a:b"\n')
    sniff = sniff_toml(path)
    assert (sniff.scenario, sniff.near, sniff.line) == (False, "scenaro", 3)
