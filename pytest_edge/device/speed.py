"""A device's CPU speed relative to this host: the one formula behind every speed estimate.

The catalog gives each profile a ``cpu_speed_factor``: its single-core speed relative to the
catalog's reference CPU. ``--edge-host-speed-factor`` puts this host on the same scale (1.0,
as fast as the reference, when not given). Their ratio projects host throughput onto the
device and sets the CPU share of a throttled child; it is an estimate, never a measurement.
A profile without a factor (``cpu_speed_unknown`` in the catalog) gets no projection, and a
throughput floor on it is checked at host speed with a `DeviceSpeedUnknownWarning`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge.errors import EdgeWarning

if TYPE_CHECKING:
    from pytest_edge.profiles.model import DeviceProfile

#: How a projected device figure is made, for every report that shows one.
PROJECTION = (
    "an estimate, not a measurement: the throughput measured on this host x the device's "
    "cpu_speed_factor (single-core speed relative to the catalog's reference CPU) / the "
    "host's speed factor (--edge-host-speed-factor; 1.0, as fast as the reference CPU, when "
    "not given). CPU-bound scaling only: storage and memory bandwidth are not modelled"
)

#: The words of every check that fell back to this host's speed.
HOST_SPEED = "checked at host speed: device speed unknown"


class DeviceSpeedUnknownWarning(EdgeWarning):
    """A throughput floor on a device without a speed factor was checked at host speed."""


def device_speed_factor(
    profile: DeviceProfile | None, host_speed_factor: float | None = None
) -> float | None:
    """Device speed / host speed (below 1: the device is slower); None when unknown."""
    if profile is None or not profile.cpu_speed_factor:
        return None
    return profile.cpu_speed_factor / (host_speed_factor or 1.0)


def unknown_speed_reason(profile: DeviceProfile | None) -> str:
    """Why a profile has no speed factor, for the warning (the catalog's reason if it has one)."""
    if profile is not None and profile.cpu_speed_unknown:
        return profile.cpu_speed_unknown
    return "its profile has no cpu_speed_factor"
