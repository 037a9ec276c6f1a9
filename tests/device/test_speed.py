"""The device speed factor: the profile's speed over the host's, the one formula for estimates."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_edge.device.speed import device_speed_factor
from pytest_edge.profiles.catalog import ProfileCatalog


def test_ratio_of_device_to_host_and_none_when_unknown() -> None:
    pi = ProfileCatalog.load().resolve("raspberry-pi-4-4gb")
    assert pi.cpu_speed_factor is not None
    assert device_speed_factor(pi) == pi.cpu_speed_factor
    assert device_speed_factor(pi, 2.0) == pytest.approx(pi.cpu_speed_factor / 2.0)
    assert device_speed_factor(dataclasses.replace(pi, cpu_speed_factor=None), 2.0) is None
    assert device_speed_factor(None, 2.0) is None
