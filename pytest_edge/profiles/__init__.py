"""Device profiles: what an edge device is, as data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.profiles.catalog import (
        ProfileCatalog,
        ProfileError,
        UnknownProfileError,
        list_profiles,
        load_profile,
    )
    from pytest_edge.profiles.model import (
        DeviceProfile,
        StorageSpec,
    )

__all__ = [
    "DeviceProfile",
    "ProfileCatalog",
    "ProfileError",
    "StorageSpec",
    "UnknownProfileError",
    "list_profiles",
    "load_profile",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "DeviceProfile": "pytest_edge.profiles.model",
    "ProfileCatalog": "pytest_edge.profiles.catalog",
    "ProfileError": "pytest_edge.profiles.catalog",
    "StorageSpec": "pytest_edge.profiles.model",
    "UnknownProfileError": "pytest_edge.profiles.catalog",
    "list_profiles": "pytest_edge.profiles.catalog",
    "load_profile": "pytest_edge.profiles.catalog",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
