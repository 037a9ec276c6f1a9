"""The entry point wires every room: options in ``--help`` (argparse formats help text with %),
each room's declared settings and markers, ``-p no:edge``, the rooms' hooks."""

from __future__ import annotations

import importlib

import pytest

from pytest_edge.plugin import ROOMS
from pytest_edge.settings import MarkerSpec, Setting


def test_help_lists_every_edge_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*pytest-edge*",
            "*--edge-seed=N*",
            "*--edge-profile=NAME*",
            "*--edge-fail-on-regression=THRESHOLD*",
            "*'10%' or '0.10'*",
            "*--edge-report*",
        ]
    )


def test_every_room_is_registered_and_declares_its_settings_and_markers(
    pytestconfig: pytest.Config,
) -> None:
    for name in ROOMS:
        module = importlib.import_module(name)
        assert pytestconfig.pluginmanager.is_registered(module), name
        assert all(isinstance(s, Setting) for s in module.SETTINGS), name
        assert all(isinstance(m, MarkerSpec) for m in module.MARKERS), name
    flags = {s.flag for name in ROOMS for s in importlib.import_module(name).SETTINGS}
    assert {"--edge-seed", "--edge-profile", "--edge-compare", "--edge-report"} <= flags


def test_no_edge_disables_every_room(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(edge_seed):\n    pass\n")
    result = pytester.runpytest("-p", "no:edge")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'edge_seed' not found*"])
    assert "edge: seed" not in result.stdout.str()


def test_scenario_devices_come_through_the_hook(pytester: pytest.Pytester) -> None:
    """A conftest answers ``pytest_edge_scenario_devices`` before the device capability."""
    pytester.makeconftest(
        """
        import pytest
        from pytest_edge.scenarios.runner import Device

        @pytest.hookimpl(tryfirst=True)
        def pytest_edge_scenario_devices(config, scenario):
            return [Device("host"), Device("elsewhere")]
        """
    )
    pytester.makepyfile(wl="def run(state_dir):\n    return None\n")
    pytester.syspathinsert()
    (pytester.path / "one.toml").write_text(
        '[scenario]\nname = "one"\nworkload = "wl:run"\ntimeout = 60\n'
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", "one.toml")
    result.stdout.fnmatch_lines(["one.toml::one[[]host[]]", "one.toml::one[[]elsewhere[]]"])


def test_one_room_can_be_disabled_alone(pytester: pytest.Pytester) -> None:
    """Rooms only meet through hooks: without the device room the others still work."""
    pytester.makepyfile("def test_one(edge_seed):\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:pytest_edge.device.plugin", "--edge-report=r.md"
    )
    result.assert_outcomes(passed=1)
    text = (pytester.path / "r.md").read_text()
    assert "## pytest-edge report" in text
    assert "### Device" not in text
