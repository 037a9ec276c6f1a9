"""A device's CPU speed relative to this host: the one formula behind every speed estimate.

The catalog gives each profile a ``cpu_speed_factor``: its single-core speed relative to the
catalog's reference CPU. ``--edge-host-speed-factor`` puts this host on the same scale (1.0,
as fast as the reference, when not given). Their ratio projects host throughput onto the
device and sets the CPU share of a throttled child; it is an estimate, never a measurement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_edge.profiles.model import DeviceProfile

#: How a projected device figure is made, for every report that shows one.
PROJECTION = (
    "an estimate, not a measurement: the throughput measured on this host x the device's "
    "cpu_speed_factor (single-core speed relative to the catalog's reference CPU) / the "
    "host's speed factor (--edge-host-speed-factor; 1.0, as fast as the reference CPU, when "
    "not given). CPU-bound scaling only: storage and memory bandwidth are not modelled"
)


def device_speed_factor(
    profile: DeviceProfile | None, host_speed_factor: float | None = None
) -> float | None:
    """Device speed / host speed (below 1: the device is slower); None when unknown."""
    if profile is None or not profile.cpu_speed_factor:
        return None
    return profile.cpu_speed_factor / (host_speed_factor or 1.0)
