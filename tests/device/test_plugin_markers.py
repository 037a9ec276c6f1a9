"""The edge markers and isolated runs, end to end."""

from __future__ import annotations

import pytest

from tests.markers import assert_bad_marker_errors_that_test_alone


def test_edge_profile_marker_pins_profiles(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest
        @pytest.mark.edge_profile("jetson", "pi-zero")
        def test_pinned(edge_device):
            print("ON", edge_device.profile.name, os.cpu_count())
        @pytest.mark.edge_profile("jetson")
        def test_plain():
            assert os.cpu_count() == 6
        """
    )
    result = pytester.runpytest("-v", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*ON jetson-orin-nano-8gb 6*"])
    result.stdout.fnmatch_lines(["*ON raspberry-pi-zero-2w 4*"])


def test_edge_requires_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.edge_requires(memory_mb=1024, gpu=True)
        def test_big(edge_device):
            pass
        """
    )
    result = pytester.runpytest("--edge-profile=pi-zero,jetson", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*edge_requires: device raspberry-pi-zero-2w needs 1024 MB of memory, has 448 MB "
            "usable (512 MB - 64 MB OS reserve); needs a GPU, has none"
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("edge_requires(ram=1)", "edge_requires got unknown keyword 'ram'*"),
        ("edge_requires(cores='four')", "*edge_requires(cores='four'): expected a whole number*"),
        ("edge_memory_budget('lots')", "*edge_memory_budget: 'lots' is not a memory size*"),
        ("edge_memory_budget()", "*edge_memory_budget takes one size*"),
        ("edge_profile()", "*edge_profile needs one or more profile names*"),
        ("edge_profile('rpi9')", "edge_profile: unknown edge profile 'rpi9'; did you mean*"),
        ("edge_isolated(timeout=-1)", "*edge_isolated(timeout=-1): expected seconds > 0*"),
        (
            "edge_isolated(timeout=1e10)",
            "edge_isolated(timeout=10000000000.0): expected seconds > 0 and <= 2147483647 "
            "(the longest timer a 32-bit OS clock takes, about 68 years)",
        ),
    ],
)
def test_a_bad_marker_argument_errors_that_test_alone_in_one_line(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    assert_bad_marker_errors_that_test_alone(pytester, marker, message)


def test_memory_budget_fails_with_the_measured_figure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.edge_memory_budget("40 MB")
        def test_over():
            block = bytearray(80 * 1024 * 1024)
        @pytest.mark.edge_memory_budget("200 MB")
        def test_under():
            block = bytearray(20 * 1024 * 1024)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*edge_memory_budget: peak memory growth * MB exceeds the budget of 40 MB*"]
    )


ISOLATED = """
import os
import pytest

MIB = 1024 * 1024

def grow(mb):
    return len(bytearray(mb * MIB))

def test_fits(edge_device):
    assert edge_device.run_isolated(grow, 100) == 100 * MIB
    assert 90 <= edge_device.last_peak_memory_mb <= 200

def test_out_of_memory(edge_device):
    with pytest.raises(MemoryError):
        edge_device.run_isolated(grow, 600)
    assert edge_device.last_peak_memory_mb is not None

def cpus():
    return len(os.sched_getaffinity(0)), os.cpu_count()

def test_child_sees_the_device(edge_device):
    assert edge_device.run_isolated(cpus)[1] == 4

@pytest.mark.edge_isolated
def test_whole_test_isolated(tmp_path):
    assert os.cpu_count() == 4
    block = bytearray(700 * MIB)
"""


def test_isolated_runs_hold_the_device_memory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ISOLATED)
    result = pytester.runpytest("--edge-profile=pi-zero", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_whole_test_isolated*", "*MemoryError*"])
    result.stdout.fnmatch_lines(["*of     448 MB*raspberry-pi-zero-2w*test_fits*isolated child*"])


def test_unpicklable_exception_and_dead_child(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, signal, threading
        import pytest
        from pytest_edge import RemoteError, IsolatedChildDied

        class Odd(Exception):
            def __init__(self):
                super().__init__("odd")
                self.lock = threading.Lock()

        def raise_odd():
            raise Odd()

        def die():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_remote_error(edge_device):
            with pytest.raises(RemoteError, match="Odd: odd") as info:
                edge_device.run_isolated(raise_odd)
            assert "raise_odd" in info.value.child_traceback

        def test_dead_child(edge_device):
            with pytest.raises(IsolatedChildDied, match="killed by signal SIGKILL.*memory growth"):
                edge_device.run_isolated(die)

        def test_lambda_is_refused(edge_device):
            from pytest_edge import IsolationError
            with pytest.raises(IsolationError, match="cannot send"):
                edge_device.run_isolated(lambda: 1)
        """
    )
    result = pytester.runpytest("--edge-profile=rpi4", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_summary_says_what_the_host_cannot_enforce(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--edge-profile=rock-5b")
    if len(__import__("os").sched_getaffinity(0)) < 8:
        result.stdout.fnmatch_lines(
            ["not enforced: rock-5b-8gb has 8 cores but this host lets us use *"]
        )


def test_failed_isolated_test_explains_its_assert(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.edge_isolated
        def test_fails():
            x = 3
            assert x == 4
        """
    )
    result = pytester.runpytest("--edge-profile=rpi4", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E   assert 3 == 4", "*raised in the isolated child; child traceback:*", "*assert x == 4"]
    )
    assert "def pytest_pyfunc_call" not in result.stdout.str()


def test_edge_device_memory_pressure_moves_the_view(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psutil
        MIB = 1024 * 1024
        def test_pressure(edge_device):
            before = psutil.virtual_memory().available
            edge_device.add_pressure(200 * MIB)
            assert before - psutil.virtual_memory().available >= 190 * MIB
            edge_device.remove_pressure(200 * MIB)
            assert abs(psutil.virtual_memory().available - before) < 20 * MIB
        """
    )
    pytester.runpytest("--edge-profile=rpi4").assert_outcomes(passed=1)
