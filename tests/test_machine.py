"""Machine facts read from a fake /proc and /sys tree, and the override stack."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from pytest_edge.machine import (
    MIB,
    HostMachine,
    PressureRecord,
    current_machine,
    parse_pressure,
    use_machine,
)


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


# --- cgroup accounting as the kernel counts it, and PSI ------------------------------------------


def test_cgroup_v2_page_cache_is_not_counted_as_used(tmp_path: Path) -> None:
    # Working set = memory.current - inactive_file (memory.stat), as kubelet and docker count it.
    _write(tmp_path, "/proc/self/cgroup", "0::/app\n")
    _write(tmp_path, "/sys/fs/cgroup/app/memory.max", f"{1000 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/app/memory.current", f"{900 * MIB}\n")
    _write(
        tmp_path,
        "/sys/fs/cgroup/app/memory.stat",
        f"anon {250 * MIB}\nfile {640 * MIB}\nactive_file {40 * MIB}\ninactive_file {600 * MIB}\n",
    )
    assert HostMachine(tmp_path).cgroup_memory() == (1000 * MIB, 300 * MIB, "cgroup-v2")


def test_cgroup_v1_page_cache_is_not_counted_as_used(tmp_path: Path) -> None:
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", f"{256 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.usage_in_bytes", f"{200 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/memory/memory.stat", f"total_inactive_file {150 * MIB}\n")
    assert HostMachine(tmp_path).cgroup_memory() == (256 * MIB, 50 * MIB, "cgroup-v1")


def test_a_parent_slice_limit_applies(tmp_path: Path) -> None:
    _write(tmp_path, "/proc/self/cgroup", "0::/edge.slice/app.service\n")
    _write(tmp_path, "/sys/fs/cgroup/edge.slice/app.service/memory.max", "max\n")
    _write(tmp_path, "/sys/fs/cgroup/edge.slice/app.service/memory.current", f"{50 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/edge.slice/memory.max", f"{512 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/edge.slice/memory.current", f"{200 * MIB}\n")
    limit, used, source = HostMachine(tmp_path).cgroup_memory() or (0, 0, "")
    assert (limit, used) == (512 * MIB, 200 * MIB)
    assert source == "cgroup-v2 /edge.slice memory.max"


def test_the_smallest_of_memory_max_and_memory_high_up_the_tree_applies(tmp_path: Path) -> None:
    _write(tmp_path, "/proc/self/cgroup", "0::/a/b\n")
    _write(tmp_path, "/sys/fs/cgroup/a/b/memory.max", f"{900 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/a/b/memory.high", "max\n")
    _write(tmp_path, "/sys/fs/cgroup/a/b/memory.current", f"{100 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/a/memory.max", f"{2000 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/a/memory.high", f"{700 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/a/memory.current", f"{400 * MIB}\n")
    machine = HostMachine(tmp_path)
    assert machine.cgroup_memory() == (700 * MIB, 400 * MIB, "cgroup-v2 /a memory.high")
    reading = machine.memory()
    assert reading.cgroup_limit_bytes == 700 * MIB
    assert reading.available_bytes <= 300 * MIB


def test_the_level_with_least_room_binds(tmp_path: Path) -> None:
    # The child's own limit is smaller, but the parent is nearly full: the parent binds.
    _write(tmp_path, "/proc/self/cgroup", "0::/p/c\n")
    _write(tmp_path, "/sys/fs/cgroup/p/c/memory.max", f"{300 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/p/c/memory.current", f"{10 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/p/memory.max", f"{1000 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/p/memory.current", f"{950 * MIB}\n")
    assert HostMachine(tmp_path).cgroup_memory() == (
        1000 * MIB,
        950 * MIB,
        "cgroup-v2 /p memory.max",
    )
    assert HostMachine(tmp_path).memory().cgroup_limit_bytes == 300 * MIB


def test_an_invisible_own_cgroup_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    # Without a cgroup namespace /proc/self/cgroup names the host path; the mount is the root.
    _write(tmp_path, "/proc/self/cgroup", "0::/docker/abc123\n")
    _write(tmp_path, "/sys/fs/cgroup/memory.max", f"{256 * MIB}\n")
    _write(tmp_path, "/sys/fs/cgroup/memory.current", f"{56 * MIB}\n")
    assert HostMachine(tmp_path).cgroup_memory() == (256 * MIB, 56 * MIB, "cgroup-v2")


PSI_TEXT = (
    "some avg10=1.50 avg60=0.75 avg300=0.10 total=123456\n"
    "full avg10=0.50 avg60=0.25 avg300=0.00 total=6789\n"
)


def test_psi_is_parsed() -> None:
    pressure = parse_pressure(PSI_TEXT)
    assert pressure.some == PressureRecord(1.5, 0.75, 0.1, 123456)
    assert pressure.full == PressureRecord(0.5, 0.25, 0.0, 6789)


def test_psi_without_a_full_line() -> None:
    pressure = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert pressure.full is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "some avg10=x avg60=0 avg300=0 total=0\n",
        "some avg10=1 avg60=0 total=0\n",
        "full avg10=0 avg60=0 avg300=0 total=0\n",
        "some avg10=1 avg60=0 avg300=0 total=-5\n",
    ],
)
def test_malformed_psi_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"pressure"):
        parse_pressure(text)


def test_psi_is_read_through_the_root(tmp_path: Path) -> None:
    machine = HostMachine(tmp_path)
    assert machine.memory_pressure() is None
    _write(tmp_path, "/proc/pressure/memory", PSI_TEXT)
    pressure = machine.memory_pressure()
    assert pressure is not None
    assert pressure.some.total_us == 123456


def test_psi_on_this_host() -> None:
    try:
        text = Path("/proc/pressure/memory").read_text()
    except OSError:
        assert HostMachine().memory_pressure() is None
        pytest.skip("no /proc/pressure/memory on this kernel")
    assert text.startswith("some ")
    pressure = HostMachine().memory_pressure()
    assert pressure is not None
    assert pressure.some.total_us >= 0
