"""Machine facts read from a fake /proc and /sys tree, and the override stack."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from pytest_edge.machine import MIB, HostMachine, current_machine, use_machine


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_cgroup_v2_limit_bounds_total_and_available(tmp_path: Path) -> None:
    _write(tmp_path, "/proc/self/cgroup", "0::/app\n")
    _write(tmp_path, "/sys/fs/cgroup/app/memory.max", f"{512 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/app/memory.current", f"{100 * MIB}\n")
    reading = HostMachine(tmp_path).memory()
    assert reading.total_bytes == min(512 * MIB, psutil.virtual_memory().total)
    assert reading.available_bytes <= 412 * MIB
    assert reading.cgroup_limit_bytes == 512 * MIB


def test_cgroup_v2_max_means_unlimited(tmp_path: Path) -> None:
    _write(tmp_path, "/proc/self/cgroup", "0::/\n")
    _write(tmp_path, "/sys/fs/cgroup/memory.max", "max\n")
    _write(tmp_path, "/sys/fs/cgroup/memory.current", "1000\n")
    assert HostMachine(tmp_path).cgroup_memory() is None


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", f"{256 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.usage_in_bytes", f"{56 * MIB}\n")
    assert HostMachine(tmp_path).cgroup_memory() == (256 * MIB, 56 * MIB, "cgroup-v1")


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.usage_in_bytes", "1\n")
    assert HostMachine(tmp_path).cgroup_memory() is None


def test_meminfo_available_is_read(tmp_path: Path) -> None:
    _write(tmp_path, "/proc/meminfo", "MemTotal: 1000 kB\nMemAvailable:     2048 kB\n")
    machine = HostMachine(tmp_path)
    assert machine.meminfo_available_bytes() == 2048 * 1024
    reading = machine.memory()
    assert reading.available_bytes == 2048 * 1024
    assert reading.bounded_by == "meminfo"


def test_big_little_frequencies(tmp_path: Path) -> None:
    for core, khz in enumerate([1800000, 1800000, 2400000, 2400000]):
        _write(tmp_path, f"/sys/devices/system/cpu/cpu{core}/cpufreq/cpuinfo_max_freq", f"{khz}\n")
    assert HostMachine(tmp_path).cpu_max_freq_mhz() == {0: 1800.0, 1: 1800.0, 2: 2400.0, 3: 2400.0}


@pytest.mark.parametrize(
    ("files", "kind", "gpu", "uma"),
    [
        ({"/proc/device-tree/compatible": "nvidia,p3768\0nvidia,tegra234\0"}, "tegra", True, True),
        ({"/etc/nv_tegra_release": "# R35"}, "tegra", True, True),
        (
            {"/proc/driver/nvidia/gpus/0000:01:00.0/information": "Model: X"},
            "discrete",
            True,
            False,
        ),
        (
            {"/proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\0"},
            "integrated",
            False,
            True,
        ),
        ({"/sys/class/drm/version": "drm 1.1.0"}, "none", False, False),
        ({}, "unknown", None, None),
    ],
)
def test_accelerator_detection(
    tmp_path: Path, files: dict[str, str], kind: str, gpu: bool | None, uma: bool | None
) -> None:
    for path, text in files.items():
        _write(tmp_path, path, text)
    accel = HostMachine(tmp_path).accelerator()
    assert (accel.kind, accel.gpu, accel.uma) == (kind, gpu, uma)
    assert accel.evidence


def test_use_machine_overrides_and_restores(tmp_path: Path) -> None:
    host = current_machine()
    fake = HostMachine(tmp_path)
    with use_machine(fake):
        assert current_machine() is fake
    assert current_machine() is host


def test_use_machine_restores_on_error(tmp_path: Path) -> None:
    host = current_machine()
    with pytest.raises(RuntimeError), use_machine(HostMachine(tmp_path)):
        raise RuntimeError("boom")
    assert current_machine() is host


def test_lazy_public_api() -> None:
    import pytest_edge

    assert pytest_edge.current_machine is current_machine
    assert "current_machine" in pytest_edge.__all__
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = pytest_edge.no_such_name  # type: ignore[attr-defined]


def test_all_matches_lazy_exports() -> None:
    import pytest_edge

    assert sorted(pytest_edge.__all__) == sorted(pytest_edge._EXPORTS)
    for name in pytest_edge.__all__:
        assert getattr(pytest_edge, name) is not None
