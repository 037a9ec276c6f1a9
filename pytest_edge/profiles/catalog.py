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
from typing import Annotated, Any, ClassVar

from pytest_edge.errors import EdgeError
from pytest_edge.profiles.model import DeviceProfile
from pytest_edge.profiles.model import ProfileError as ProfileError  # re-exported: its old home
from pytest_edge.schema import Declared, Invalid, Number, Opt, Optional, Text, check_keys

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

_TOP_LEVEL = ("profiles", "speed_reference", "alias_reasons")
# Keys a [profiles.NAME] table may hold: every declared field of DeviceProfile.
_PROFILE_KEYS = tuple(o.name for o in DeviceProfile.declared())
_REQUIRED_KEYS = tuple(o.name for o in DeviceProfile.declared() if o.required)


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
class SpeedReference(Declared):
    """The CPU that ``cpu_speed_factor`` 1.0 stands for, and the benchmark behind the ratios."""

    error_type: ClassVar[type[Invalid]] = ProfileError

    cpu: Annotated[str, Opt(Text("a CPU name"))]
    benchmark: Annotated[str, Opt(Text("a benchmark name"))]
    source: Annotated[str, Opt(Text("a URL or citation"))]
    # The reference CPU's score in that benchmark: factor = a device's score / this.
    score: Annotated[float | None, Opt(Optional(Number(0.0, above=True)))] = None
    note: Annotated[str, Opt(Text(empty=True), "why the comparison is fair")] = ""


def _fail(origin: str, profile: str | None, message: str) -> ProfileError:
    where = f"{origin}: profile {profile!r}" if profile else origin
    return ProfileError(f"{where}: {message}")


def parse_profile(name: str, data: Mapping[str, Any], origin: str) -> DeviceProfile:
    """Build one `DeviceProfile` from its TOML table; `origin` names the file for errors."""
    try:
        check_keys(data, _PROFILE_KEYS, _REQUIRED_KEYS)
        return DeviceProfile(name=name, **data)
    except Invalid as exc:
        raise _fail(origin, name, str(exc)) from None


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
        try:
            check_keys(data, _TOP_LEVEL)
        except Invalid as exc:
            raise ProfileError(f"{origin}: {exc} (profiles go under [profiles.NAME])") from None
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict) or not profiles:
            raise ProfileError(f"{origin}: no profiles; define at least one [profiles.NAME] table")
        reasons = data.get("alias_reasons", {})
        if not isinstance(reasons, dict):
            raise ProfileError(f"{origin}: [alias_reasons] must map an alias to a reason")
        self.alias_reasons.update({str(k): str(v) for k, v in reasons.items()})
        reference = data.get("speed_reference")
        if reference is not None:
            try:
                self.speed_reference = SpeedReference.from_data(reference, "speed_reference")
            except ProfileError as exc:
                raise ProfileError(f"{origin}: {exc}") from None
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
