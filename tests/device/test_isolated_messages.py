"""What `run_isolated` says when its child does not answer: the child's own stacks after a
timeout, and the limits that were really applied (issue 14)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_edge.device import hangdump
from pytest_edge.device.isolated import (
    IsolatedChildDied,
    IsolationLimits,
    allowed_cpus,
    run_isolated,
)
from pytest_edge.profiles import ProfileCatalog
from tests.device.hang_workload import wait_in_two_threads


def test_a_timeout_shows_every_thread_of_the_child_not_the_harness() -> None:
    with pytest.raises(IsolatedChildDied) as caught:
        run_isolated(wait_in_two_threads, (), {}, IsolationLimits(None, None), timeout=4.0)
    stacks = caught.value.stacks
    assert stacks.startswith("stacks of the child's 2 threads at the timeout")
    assert "in _spin_forever" in stacks
    assert "in wait_in_two_threads" in stacks
    assert "_child_main" not in stacks  # the bootstrap below the workload is trimmed
    assert "multiprocessing" not in stacks
    assert "in _watch" not in stacks  # the child's lifeline thread is not the workload's
    assert str(caught.value).endswith(stacks)


def test_the_stack_file_is_removed_after_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private temp dir: other pytest runs on the machine create and remove their own stack
    # files in the shared /tmp at any moment, which made a before/after comparison there flaky.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(IsolatedChildDied) as caught:
        run_isolated(wait_in_two_threads, (), {}, IsolationLimits(None, None), timeout=0.5)
    assert caught.value.stacks  # the stack file was really used
    assert list(tmp_path.glob("pytest-edge-stacks-*")) == []


def test_trim_keeps_the_workload_frames_of_each_thread() -> None:
    dump = "\n".join(
        [
            "Thread 0x01 (most recent call first):",
            '  File "/x/isolated.py", line 9 in _watch',
            "",
            "Current thread 0x02 (most recent call first):",
            '  File "/w/app.py", line 3 in work',
            '  File "/x/isolated.py", line 7 in _child_main',
            '  File "/usr/lib/python3.11/multiprocessing/process.py", line 108 in run',
        ]
    )
    assert hangdump.trim(dump).splitlines() == [
        "stacks of the child's 1 thread at the timeout (most recent call first):",
        "Current thread 0x02 (most recent call first):",
        '  File "/w/app.py", line 3 in work',
    ]


def test_cpu_affinity_names_what_was_applied_and_the_device_cores_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = ProfileCatalog.load().resolve("raspberry-pi-4")
    assert profile.cpu_cores == 4
    monkeypatch.setattr("pytest_edge.device.isolated.allowed_cpus", lambda: frozenset({0, 1}))
    limits = IsolationLimits(None, (0, 1, 2, 3), profile=profile)
    assert limits.applied_cpus() == (0, 1)
    assert limits.describe() == (
        "CPU affinity {0, 1} (2 of the simulated device's 4 cores: this host allows 2)"
    )
    assert replace(limits, cpus=(0, 1)).describe().startswith("CPU affinity {0, 1} (2 of")
    assert IsolationLimits(None, (0,)).describe() == "CPU affinity {0}"


def die_at_once() -> None:
    os._exit(3)


def test_the_died_message_names_the_real_host_cpus_under_a_device_view() -> None:
    """The bug: under the view, the host's CPUs were read from the view (the device's)."""
    from pytest_edge.device.session import isolation_limits
    from pytest_edge.device.simulated import SimulatedMachine
    from pytest_edge.device.view import DeviceView
    from pytest_edge.machine import use_machine

    profile = ProfileCatalog.load().resolve("raspberry-pi-4")
    host = sorted(allowed_cpus())
    if len(host) >= profile.cpu_cores:
        pytest.skip("the host has as many CPUs as the device: nothing to tell apart")
    machine = SimulatedMachine(profile)
    with use_machine(machine), DeviceView(machine):
        limits = isolation_limits(profile, None)
        with pytest.raises(IsolatedChildDied) as caught:
            run_isolated(die_at_once, (), {}, limits, timeout=30)
    cpus = ", ".join(map(str, host))
    assert f"CPU affinity {{{cpus}}} ({len(host)} of the simulated device's 4 cores" in str(
        caught.value
    )
