"""Device profiles: what an edge device is, as data."""

from __future__ import annotations

from pytest_edge.profiles.catalog import (
    ProfileCatalog,
    ProfileError,
    UnknownProfileError,
    list_profiles,
    load_profile,
)
from pytest_edge.profiles.model import DeviceProfile, StorageSpec

__all__ = [
    "DeviceProfile",
    "ProfileCatalog",
    "ProfileError",
    "StorageSpec",
    "UnknownProfileError",
    "list_profiles",
    "load_profile",
]
