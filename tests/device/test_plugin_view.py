"""`--edge-profile` end to end: the view, restoration, several profiles, bad names and files."""

from __future__ import annotations

import multiprocessing
import os

import psutil
import pytest

VIEW_TEST = """
import multiprocessing, os
import psutil
import pytest
from pytest_edge import current_machine

MIB = 1024 * 1024

@pytest.fixture
def seen_in_fixture():
    return os.cpu_count(), psutil.virtual_memory().total // MIB

def test_device_facts(seen_in_fixture):
    assert seen_in_fixture == (4, 4096)
    assert psutil.virtual_memory().total == 4096 * MIB
    assert psutil.swap_memory().total == 0
    assert psutil.cpu_count() == psutil.cpu_count(logical=False) == 4
    assert os.cpu_count() == multiprocessing.cpu_count() == 4
    assert os.sched_getaffinity(0) == {0, 1, 2, 3}
    assert len(psutil.cpu_percent(percpu=True)) == 4
    assert psutil.cpu_freq().max == 1500.0
    machine = current_machine()
    assert machine.simulated and machine.profile.name == "raspberry-pi-4-4gb"
    assert machine.memory().total_bytes == 4096 * MIB

def test_available_memory_shrinks_as_the_test_allocates():
    before = psutil.virtual_memory().available
    assert before <= (4096 - 76) * MIB
    block = bytearray(300 * MIB)
    after = psutil.virtual_memory().available
    assert before - after >= 250 * MIB
    del block
"""


def _originals() -> tuple[object, ...]:
    return (
        psutil.virtual_memory,
        psutil.swap_memory,
        psutil.cpu_count,
        psutil.cpu_freq,
        psutil.cpu_percent,
        os.cpu_count,
        getattr(os, "sched_getaffinity", None),
        multiprocessing.cpu_count,
    )


def test_view_shows_the_device_in_tests_and_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(VIEW_TEST)
    result = pytester.runpytest("--edge-profile=raspberry-pi")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "edge: raspberry-pi -> raspberry-pi-4-4gb, 4096 MB, 4 cores "
            "(view; memory enforced in isolated tests)"
        ]
    )


def test_everything_is_restored_even_when_tests_fail(pytester: pytest.Pytester) -> None:
    before = _originals()
    pytester.makepyfile(
        """
        import os, psutil, pytest
        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("teardown fails")
        def test_fails():
            assert os.cpu_count() == 1
        def test_teardown_error(broken):
            pass
        """
    )
    result = pytester.runpytest("--edge-profile=pi-zero")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    assert _originals() == before
    assert all(a is b for a, b in zip(_originals(), before, strict=True))


def test_without_a_profile_nothing_is_patched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import os, psutil
        def test_real():
            assert psutil.virtual_memory.__module__ == "psutil"
            assert os.cpu_count() == {os.cpu_count()}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "edge: raspberry" not in result.stdout.str()


def test_several_profiles_parametrize_edge_device_tests_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        def test_device(edge_device):
            assert os.cpu_count() == edge_device.profile.cpu_cores
            print("RAN", edge_device.profile.name)
        def test_plain():
            assert os.cpu_count() == 4  # first profile: raspberry-pi-zero-2w
        """
    )
    result = pytester.runpytest("--edge-profile=pi-zero,jetson", "-v", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_device?raspberry-pi-zero-2w? RAN raspberry-pi-zero-2w",
            "PASSED",
            "*test_device?jetson-orin-nano-8gb? RAN jetson-orin-nano-8gb",
        ]
    )
    result.stdout.fnmatch_lines(["edge: jetson -> jetson-orin-nano-8gb, 8192 MB, 6 cores*"])


def test_edge_device_without_profile_is_the_host(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_host(edge_device):
            assert edge_device.profile.name == "host"
            assert not edge_device.simulated
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_unknown_profile_is_a_usage_error_with_suggestions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--edge-profile=raspbery-pi")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--edge-profile: unknown edge profile 'raspbery-pi'; did you mean: raspberry-pi*"]
    )


def test_precedence_cli_then_env_then_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nedge_profile = jetson-nano\n")
    pytester.makepyfile(
        """
        import os
        def test_x(request):
            print("PROFILE", os.cpu_count())
        """
    )
    pytester.runpytest("-s").stdout.fnmatch_lines(["edge: jetson-nano -> jetson-nano-4gb*"])
    monkeypatch.setenv("PYTEST_EDGE_PROFILE", "jetson")
    pytester.runpytest("-s").stdout.fnmatch_lines(["edge: jetson -> jetson-orin-nano-8gb*"])
    pytester.runpytest("-s", "--edge-profile=rpi5").stdout.fnmatch_lines(
        ["edge: rpi5 -> raspberry-pi-5-8gb*"]
    )
    monkeypatch.setenv("PYTEST_EDGE_PROFILE", "nope")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*the PYTEST_EDGE_PROFILE environment variable: unknown edge profile 'nope'*"]
    )


def test_profile_file_from_option_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        devices="[profiles.my-board]\nmemory_mb = 1024\ncpu_cores = 2\naliases = ['mine']\n",
    )
    pytester.makepyfile(
        """
        import os
        def test_x():
            assert os.cpu_count() == 2
        """
    )
    result = pytester.runpytest("--edge-profile-file=devices.toml", "--edge-profile=mine")
    result.assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nedge_profile_files = devices.toml\nedge_profile = my-board\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_bad_profile_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", devices="[profiles.my-board]\nmemory_mb = -1\ncpu_cores = 2\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--edge-profile-file=devices.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*devices.toml: profile 'my-board': memory_mb=-1: must be a whole number >= 1*"]
    )


def test_xdist_same_outcome_and_summary_from_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest
        @pytest.mark.parametrize("i", range(4))
        def test_x(i, edge_device):
            assert os.cpu_count() == 4
            block = bytearray((i + 1) * 20 * 1024 * 1024)
        """
    )
    result = pytester.runpytest("-n", "2", "--edge-profile=rpi4")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*edge devices*",
            "*highest peak memory growth per test*",
            "*MB of    4020 MB*raspberry-pi-4-4gb*test_x*",
        ]
    )
    assert result.stdout.str().count("of    4020 MB") == 4


def test_bad_host_speed_factor_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--edge-host-speed-factor=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edge-host-speed-factor: '0' is not a number > 0*"])


def test_edge_profile_marker_works_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest
        pytestmark = pytest.mark.edge_profile("pi-zero")
        def test_x():
            assert os.cpu_count() == 4
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_cpu_throttle_is_reported_as_an_approximation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--edge-profile=rpi4,m2-air", "--edge-cpu-throttle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "edge: rpi4 -> raspberry-pi-4-4gb, 4096 MB, 4 cores (view; memory enforced in "
            "isolated tests; isolated CPU duty-cycled to 50%, an approximation)",
            "edge: m2-air -> macbook-air-m2-8gb, 8192 MB, 8 cores (view; memory enforced in "
            "isolated tests)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "not enforced: macbook-air-m2-8gb: no cpu_speed_factor, so no CPU throttling",
            "not enforced: CPU throttling assumes this host is as fast as the reference CPU*",
        ]
    )


def test_reference_implementation_sees_the_simulated_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from reference_impl.memory_management import DeviceMemoryProfiler

        def test_profile():
            profile = DeviceMemoryProfiler().get_profile()
            assert profile.simulated
            assert profile.total_memory_mb == 4096
            assert profile.cpu_count == 4
            assert profile.os_reserved_mb == 0
            assert profile.accelerator == "tegra"
            assert profile.is_uma is True
            assert profile.available_memory_mb <= 4096
        """
    )
    pytester.runpytest("--edge-profile=jetson-nano").assert_outcomes(passed=1)
