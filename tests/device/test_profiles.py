"""The shipped catalog, user profile files, aliases and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_edge
from pytest_edge.profiles.catalog import (
    ProfileCatalog,
    ProfileError,
    UnknownProfileError,
    parse_profile,
)

REQUIRED = [
    "raspberry-pi-zero-2w",
    "raspberry-pi-4-2gb",
    "raspberry-pi-4-4gb",
    "raspberry-pi-4-8gb",
    "raspberry-pi-5-4gb",
    "raspberry-pi-5-8gb",
    "raspberry-pi-5-16gb",
    "jetson-nano-4gb",
    "jetson-orin-nano-8gb",
    "rock-5b-8gb",
    "macbook-air-m2-8gb",
    "mini-pc-n100-8gb",
]


def test_catalog_has_the_required_devices_each_with_a_source() -> None:
    profiles = {p.name: p for p in pytest_edge.list_profiles()}
    assert set(REQUIRED) <= set(profiles)
    for profile in profiles.values():
        assert profile.sources, f"{profile.name} has no source"
        assert all(s.startswith("https://") for s in profile.sources)
        assert 0 < profile.usable_memory_mb <= profile.memory_mb


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("raspberry-pi", "raspberry-pi-4-4gb"),
        ("rpi4", "raspberry-pi-4-4gb"),
        ("rpi5", "raspberry-pi-5-8gb"),
        ("pi-zero", "raspberry-pi-zero-2w"),
        ("pi-zero-2w", "raspberry-pi-zero-2w"),
        ("jetson", "jetson-orin-nano-8gb"),
        ("jetson-nano", "jetson-nano-4gb"),
        ("RPI4", "raspberry-pi-4-4gb"),
    ],
)
def test_aliases_resolve_to_concrete_models(alias: str, name: str) -> None:
    assert pytest_edge.load_profile(alias).name == name


def test_raspberry_pi_alias_carries_its_reason() -> None:
    reason = pytest_edge.load_profile("raspberry-pi").alias_reason
    assert reason is not None
    assert "Pi 4" in reason


def test_pi4_numbers_match_the_product_brief() -> None:
    pi4 = pytest_edge.load_profile("raspberry-pi-4-4gb")
    assert (pi4.memory_mb, pi4.cpu_cores, pi4.os_reserved_mb) == (4096, 4, 76)
    assert pi4.cpu_speed_factor == pytest.approx(1661 / 3305, abs=0.005)
    assert pi4.gpu is None
    assert pi4.uma is True


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(UnknownProfileError, match=r"'raspbery-pi'.*did you mean: raspberry-pi"):
        pytest_edge.load_profile("raspbery-pi")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    return path


def test_user_file_adds_a_profile(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [profiles.my-board]
        memory_mb = 1024
        os_reserved_mb = 100
        cpu_cores = 2
        aliases = ["mine"]
        storage = { kind = "eMMC", seq_write_mbps = 40 }
        """,
    )
    profile = pytest_edge.load_profile("mine", [path])
    assert (profile.name, profile.usable_memory_mb) == ("my-board", 924)
    assert profile.storage is not None
    assert profile.storage.seq_write_mbps == 40.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "memory_mb = '4GB'\ncpu_cores = 4",
            r"profile 'bad': memory_mb='4GB': must be a whole number >= 1",
        ),
        (
            "memory_mb = 512\ncpu_cores = 0",
            r"profile 'bad': cpu_cores=0: must be a whole number >= 1",
        ),
        ("memory_mb = 512", r"profile 'bad': cpu_cores: is required"),
        (
            "memory_mb = 512\ncpu_cores = 1\nram = 3",
            r"profile 'bad': ram: unknown key; allowed keys: aliases",
        ),
        (
            "memory_mb = 512\ncpu_cores = 1\nos_reserved_mb = 600",
            r"os_reserved_mb=600: must be smaller than memory_mb = 512",
        ),
        ("memory_mb = 512\ncpu_cores = 1\numa = 'yes'", r"uma='yes': must be True or False"),
        ("memory_mb = 512\ncpu_cores = 1\naliases = ['rpi4']", r"alias 'rpi4' is already used"),
        ("memory_mb = 512\ncpu_cores = 1\nstorage = { kind = 'SD', x = 1 }", r"storage\.x"),
        (
            "memory_md = 512\ncpu_cores = 1",
            r"memory_md: unknown key \(did you mean 'memory_mb'\?\)",
        ),
        ("memory_mb = 512\ncpu_cores = 1\ncpu_max_mhz = true", r"cpu_max_mhz=True: must be a"),
        ("memory_mb = 512\ncpu_cores = 1\nstorage = { kind = '' }", r"storage.kind='': must be"),
    ],
)
def test_bad_profile_file_names_file_profile_and_key(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _write(tmp_path, f"[profiles.bad]\n{body}\n")
    with pytest.raises(ProfileError, match=message) as info:
        ProfileCatalog.load([path])
    assert str(path) in str(info.value)


def test_file_that_is_not_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, "[profiles.x\n")
    with pytest.raises(ProfileError, match=r"devices\.toml: not valid TOML"):
        ProfileCatalog.load([path])


@given(
    memory=st.integers(min_value=1, max_value=1 << 20),
    reserved=st.integers(min_value=0, max_value=1 << 20),
    cores=st.integers(min_value=-2, max_value=512),
)
def test_parse_profile_accepts_exactly_the_valid_numbers(
    memory: int, reserved: int, cores: int
) -> None:
    data = {"memory_mb": memory, "os_reserved_mb": reserved, "cpu_cores": cores}
    valid = cores >= 1 and reserved < memory
    if valid:
        profile = parse_profile("p", data, "test")
        assert profile.usable_memory_mb == memory - reserved
    else:
        with pytest.raises(ProfileError, match="profile 'p'"):
            parse_profile("p", data, "test")
