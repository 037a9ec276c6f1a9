"""Scenario files: a full example loads; every mistake names the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edge.scenarios import ScenarioError, is_scenario_file, load_scenario

FULL = """
[scenario]
name = "full"
description = "every key"
profile = "raspberry-pi"
workload = "json:dumps"
recover = "json:loads"
timeout = 30

[params]
documents = 100

[[faults]]
kind = "disk_full"
path = "{state_dir}"

[crash]
cycles = 5
mode = "power-loss"
kill = "acks:3"

[expect]
lost_acked_writes = 0
max_peak_memory_mb = 300
min_throughput = { value = 50, unit = "docs/s" }
max_error_rate = 0.25
check = "json:dumps"
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_example_loads(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, FULL))
    assert scenario.name == "full"
    assert scenario.profile == "raspberry-pi"
    assert scenario.timeout == 30.0
    assert scenario.params == {"documents": 100}
    assert scenario.faults == ({"kind": "disk_full", "path": "{state_dir}"},)
    assert scenario.crash is not None
    assert (scenario.crash.cycles, scenario.crash.mode, scenario.crash.kill) == (
        5,
        "power-loss",
        "acks:3",
    )
    assert scenario.expect.min_throughput is not None
    assert scenario.expect.min_throughput.value == 50.0
    assert scenario.expect.max_error_rate == 0.25


def test_minimal_scenario_gets_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, '[scenario]\nworkload = "json:dumps"\n', "tiny.toml"))
    assert scenario.name == "tiny"
    assert scenario.crash is None
    assert scenario.timeout > 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[scenario]\nname = "x"\n', r"scenario.workload: is required"),
        (
            '[scenario]\nworkload = "json:dumps"\nworkers = 3\n',
            r"scenario.workers: unknown key; allowed keys: .*workload",
        ),
        (
            '[scenario]\nworkload = "nosuchmodule_xyz:run"\n',
            r"scenario.workload='nosuchmodule_xyz:run': cannot import module 'nosuchmodule_xyz'",
        ),
        (
            '[scenario]\nworkload = "json:nope"\n',
            r"scenario.workload='json:nope': 'json' has no attribute 'nope'",
        ),
        ('[scenario]\nworkload = "json.dumps"\n', r"not of the form 'module:function'"),
        (
            '[scenario]\nworkload = "json:dumps"\ntimeout = "fast"\n',
            r"scenario.timeout='fast': must be a number of seconds from 0.001 to 2147483647",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\ntimeout = -1\n',
            r"scenario.timeout=-1: must be a number of seconds from 0.001 to 2147483647",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[crash]\ncycles = 3\n',
            r"\[crash\] needs \[scenario\] recover",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\nrecover = "json:loads"\n'
            '[crash]\nmode = "reboot"\n',
            r"crash.mode='reboot': unknown; use one of 'kill', 'power-loss'",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\nrecover = "json:loads"\n[crash]\ncycles = 0\n',
            r"crash.cycles=0: must be a whole number >= 1",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[expect]\nmax_error_rate = 1.5\n',
            r"expect.max_error_rate=1.5: must be a number from 0 to 1",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[expect]\nlost_acked_writes = 0\n',
            r"lost_acked_writes: needs a \[crash\] table",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[expect]\nmin_throughput = { value = 5 }\n',
            r"expect.min_throughput.unit: is required",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[expect]\nmax_peak_memory_mb = true\n',
            r"expect.max_peak_memory_mb=True: must be a finite number >= 0",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[[faults]]\npath = "/x"\n',
            r"faults\[0\]: expected a table with a 'kind'",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\n[extras]\na = 1\n',
            r"extras: unknown key; allowed keys: crash, expect, faults, params, scenario",
        ),
        ("[scenario]\nworkload = \n", r"not valid TOML"),
        (
            '[scenario]\nworkload = "json:dumps"\n[[faults]]\nkind = "io_error"\npath = "/x"\n'
            "nth = 0\n",
            r"faults\[0\].nth=0: must be a whole number >= 1",
        ),
        (
            '[scenario]\nworkload = "json:dumps"\ntimout = 3\n',
            r"scenario.timout: unknown key \(did you mean 'timeout'\?\)",
        ),
    ],
)
def test_bad_files_name_file_key_and_rule(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError, match=match) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


def test_only_toml_with_a_scenario_table_is_a_scenario(tmp_path: Path) -> None:
    assert is_scenario_file(_write(tmp_path, FULL, "a.toml"))
    assert not is_scenario_file(_write(tmp_path, "[tool.x]\na = 1\n", "pyproject.toml"))
    assert not is_scenario_file(_write(tmp_path, FULL, "a.txt"))
    assert is_scenario_file(_write(tmp_path, "[scenario]\nworkload = \n", "broken.toml"))
