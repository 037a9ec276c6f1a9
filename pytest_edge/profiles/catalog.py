"""Load, validate and look up device profiles from TOML catalogs.

The shipped catalog is ``catalog.toml`` next to this module; users add their own files in the
same form. Profile files are data (TOML), never code. Every problem raises `ProfileError`
naming the file, the profile and the key or value at fault, and what is allowed.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_edge.errors import EdgeError, EdgeInputError
from pytest_edge.profiles.model import DeviceProfile, StorageSpec

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

_INT_KEYS = ("memory_mb", "os_reserved_mb", "cpu_cores", "swap_mb")
_FLOAT_KEYS = ("cpu_max_mhz", "cpu_speed_factor", "memory_bandwidth_gbps")
_STR_KEYS = ("description", "cpu_model", "gpu")
_ALLOWED_KEYS = frozenset(
    (*_INT_KEYS, *_FLOAT_KEYS, *_STR_KEYS, "aliases", "uma", "storage", "sources")
)
_REQUIRED_KEYS = ("memory_mb", "cpu_cores")
_STORAGE_KEYS = frozenset(("kind", "seq_write_mbps", "fsync_latency_ms"))
_TOP_LEVEL = frozenset(("profiles", "speed_reference", "alias_reasons"))


class ProfileError(EdgeInputError):
    """A profile file or a profile entry is not valid."""


class UnknownProfileError(EdgeError, LookupError):
    """No profile or alias has this name; `suggestions` holds the nearest names."""

    def __init__(self, name: str, suggestions: list[str], known: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = (
            f"did you mean: {', '.join(suggestions)}?"
            if suggestions
            else f"known profiles: {', '.join(known)}"
        )
        super().__init__(
            f"unknown edge profile {name!r}; {hint} (`pytest-edge profiles` lists them all)"
        )


@dataclass(frozen=True)
class SpeedReference:
    """The CPU that ``cpu_speed_factor`` 1.0 stands for, and the benchmark behind the ratios."""

    cpu: str
    benchmark: str
    source: str


def _fail(origin: str, profile: str | None, message: str) -> ProfileError:
    where = f"{origin}: profile {profile!r}" if profile else origin
    return ProfileError(f"{where}: {message}")


def _number(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float)


def parse_profile(name: str, data: Mapping[str, Any], origin: str) -> DeviceProfile:
    """Build one `DeviceProfile` from its TOML table; `origin` names the file for errors."""
    unknown = sorted(set(data) - _ALLOWED_KEYS)
    if unknown:
        raise _fail(
            origin,
            name,
            f"unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(_ALLOWED_KEYS))}",
        )
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise _fail(origin, name, f"missing required key {key!r}")
    values: dict[str, Any] = {}
    for key in _INT_KEYS:
        if key in data:
            value = data[key]
            if not _number(value, integer=True) or value < 0:
                raise _fail(
                    origin, name, f"{key} = {value!r}: expected a whole number >= 0 (MB = MiB)"
                )
            values[key] = value
    for key in _FLOAT_KEYS:
        if key in data:
            value = data[key]
            if not _number(value, integer=False) or value <= 0:
                raise _fail(origin, name, f"{key} = {value!r}: expected a number > 0")
            values[key] = float(value)
    for key in _STR_KEYS:
        if key in data:
            if not isinstance(data[key], str):
                raise _fail(origin, name, f"{key} = {data[key]!r}: expected a string")
            values[key] = data[key]
    if values["cpu_cores"] < 1:
        raise _fail(origin, name, f"cpu_cores = {values['cpu_cores']!r}: expected at least 1")
    if values["memory_mb"] < 1:
        raise _fail(origin, name, f"memory_mb = {values['memory_mb']!r}: expected at least 1")
    reserved = values.get("os_reserved_mb", 0)
    if reserved >= values["memory_mb"]:
        raise _fail(
            origin,
            name,
            f"os_reserved_mb = {reserved} must be smaller than memory_mb = {values['memory_mb']}",
        )
    if "uma" in data:
        if not isinstance(data["uma"], bool):
            raise _fail(origin, name, f"uma = {data['uma']!r}: expected true or false")
        values["uma"] = data["uma"]
    for key in ("aliases", "sources"):
        if key in data:
            items = data[key]
            if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                raise _fail(origin, name, f"{key} = {items!r}: expected a list of strings")
            values[key] = tuple(items)
    if "storage" in data:
        values["storage"] = _parse_storage(data["storage"], name, origin)
    return DeviceProfile(name=name, **values)


def _parse_storage(raw: Any, name: str, origin: str) -> StorageSpec:
    if not isinstance(raw, dict):
        raise _fail(origin, name, f"storage = {raw!r}: expected a table like {{ kind = 'NVMe' }}")
    unknown = sorted(set(raw) - _STORAGE_KEYS)
    if unknown:
        raise _fail(
            origin,
            name,
            f"storage.{unknown[0]}: unknown key; allowed: {', '.join(sorted(_STORAGE_KEYS))}",
        )
    kind = raw.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _fail(origin, name, f"storage.kind = {kind!r}: expected a name like 'microSD'")
    numbers: dict[str, float] = {}
    for key in ("seq_write_mbps", "fsync_latency_ms"):
        if key in raw:
            if not _number(raw[key], integer=False) or raw[key] <= 0:
                raise _fail(origin, name, f"storage.{key} = {raw[key]!r}: expected a number > 0")
            numbers[key] = float(raw[key])
    return StorageSpec(kind=kind, **numbers)


class ProfileCatalog:
    """Profiles by canonical name, with their aliases; later files may add or replace profiles."""

    def __init__(self) -> None:
        self._profiles: dict[str, DeviceProfile] = {}
        self._aliases: dict[str, str] = {}
        self.alias_reasons: dict[str, str] = {}
        self.speed_reference: SpeedReference | None = None

    @classmethod
    def load(cls, extra_files: Iterable[str | Path] = ()) -> ProfileCatalog:
        """The shipped catalog plus `extra_files`, in order."""
        catalog = cls()
        catalog.add_file(CATALOG_PATH)
        for path in extra_files:
            catalog.add_file(Path(path))
        return catalog

    def add_file(self, path: Path) -> None:
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{origin}: cannot read profile file ({exc.strerror})") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{origin}: not valid TOML ({exc})") from exc
        self.add_data(data, origin)

    def add_data(self, data: Mapping[str, Any], origin: str) -> None:
        unknown = sorted(set(data) - _TOP_LEVEL)
        if unknown:
            raise ProfileError(
                f"{origin}: unknown top-level key {unknown[0]!r}; "
                f"allowed: {', '.join(sorted(_TOP_LEVEL))} (profiles go under [profiles.NAME])"
            )
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict) or not profiles:
            raise ProfileError(f"{origin}: no profiles; define at least one [profiles.NAME] table")
        reasons = data.get("alias_reasons", {})
        if not isinstance(reasons, dict):
            raise ProfileError(f"{origin}: [alias_reasons] must map an alias to a reason")
        self.alias_reasons.update({str(k): str(v) for k, v in reasons.items()})
        reference = data.get("speed_reference")
        if reference is not None:
            if not isinstance(reference, dict) or not all(
                isinstance(reference.get(k), str) for k in ("cpu", "benchmark", "source")
            ):
                raise ProfileError(
                    f"{origin}: [speed_reference] needs string keys cpu, benchmark and source"
                )
            self.speed_reference = SpeedReference(
                reference["cpu"], reference["benchmark"], reference["source"]
            )
        for name, table in profiles.items():
            if not isinstance(table, dict):
                raise _fail(origin, name, "expected a table of keys")
            if name.lower() != name or " " in name:
                raise _fail(origin, name, "profile names are lower-case without spaces")
            profile = parse_profile(name, table, origin)
            reason = next((reasons[a] for a in profile.aliases if a in reasons), None)
            if reason is not None:
                profile = _with_reason(profile, str(reason))
            self._register(profile, origin)

    def _register(self, profile: DeviceProfile, origin: str) -> None:
        old = self._profiles.get(profile.name)
        if old is not None:
            for alias in old.aliases:
                self._aliases.pop(alias, None)
        if profile.name in self._aliases:
            raise _fail(
                origin,
                profile.name,
                f"name is already an alias of {self._aliases[profile.name]!r}",
            )
        for alias in profile.aliases:
            owner = self._aliases.get(alias)
            if alias in self._profiles or (owner is not None and owner != profile.name):
                raise _fail(
                    origin,
                    profile.name,
                    f"alias {alias!r} is already used by {owner or alias!r}",
                )
        self._profiles[profile.name] = profile
        for alias in profile.aliases:
            self._aliases[alias] = profile.name

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def profiles(self) -> list[DeviceProfile]:
        return [self._profiles[name] for name in self.names()]

    def aliases(self) -> dict[str, str]:
        return dict(sorted(self._aliases.items()))

    def resolve(self, name_or_alias: str) -> DeviceProfile:
        """The profile called `name_or_alias` (case-insensitive), or `UnknownProfileError`."""
        key = name_or_alias.strip().lower()
        if key in self._profiles:
            return self._profiles[key]
        if key in self._aliases:
            return self._profiles[self._aliases[key]]
        everything = [*self._profiles, *self._aliases]
        nearest = difflib.get_close_matches(key, everything, n=4, cutoff=0.5)
        raise UnknownProfileError(name_or_alias, nearest, self.names())


def _with_reason(profile: DeviceProfile, reason: str) -> DeviceProfile:
    from dataclasses import replace

    return replace(profile, alias_reason=reason)


@lru_cache(maxsize=1)
def _shipped() -> ProfileCatalog:
    return ProfileCatalog.load()


def load_profile(name_or_alias: str, extra_files: Iterable[str | Path] = ()) -> DeviceProfile:
    """The profile with this name or alias, from the shipped catalog plus `extra_files`."""
    files = tuple(extra_files)
    catalog = ProfileCatalog.load(files) if files else _shipped()
    return catalog.resolve(name_or_alias)


def list_profiles(extra_files: Iterable[str | Path] = ()) -> list[DeviceProfile]:
    """Every profile, sorted by name, from the shipped catalog plus `extra_files`."""
    files = tuple(extra_files)
    catalog = ProfileCatalog.load(files) if files else _shipped()
    return catalog.profiles()
