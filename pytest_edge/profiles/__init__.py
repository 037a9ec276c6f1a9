"""Device profiles: what an edge device is, as data."""

from __future__ import annotations

from pytest_edge.profiles.model import DeviceProfile, StorageSpec

__all__ = ["DeviceProfile", "StorageSpec"]
