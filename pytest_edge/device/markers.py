"""Arguments of the edge markers, checked where they enter: bad ones raise `MarkerError`
naming the marker, the test and what is allowed (the plugin fails that test with it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pytest_edge.device.units import parse_size_mb
from pytest_edge.errors import EdgeInputError
from pytest_edge.schema import MAX_SECONDS, SECONDS_NOTE

if TYPE_CHECKING:
    from pytest_edge.profiles.model import DeviceProfile


class MarkerError(EdgeInputError):
    """An edge marker's arguments are not allowed; the message names the test and marker."""


def marker_profiles(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> list[str]:
    """``edge_profile("pi-zero", "rpi5")``: one or more profile names or aliases."""
    if kwargs:
        raise MarkerError(
            f"{where}: edge_profile takes profile names only, got keyword {next(iter(kwargs))!r}"
        )
    if not args or not all(isinstance(a, str) and a.strip() for a in args):
        raise MarkerError(
            f"{where}: edge_profile needs one or more profile names, e.g. "
            f"@pytest.mark.edge_profile('rpi4', 'jetson'); got {tuple(args)!r}"
        )
    return [a.strip() for a in args]


@dataclass(frozen=True)
class Requirements:
    """``edge_requires(memory_mb=..., cores=..., gpu=...)``."""

    memory_mb: float | None = None
    cores: int | None = None
    gpu: bool | None = None

    def missing(self, profile: DeviceProfile) -> str | None:
        """Why `profile` does not meet these requirements, or None when it does."""
        lacks = []
        if self.memory_mb is not None and profile.usable_memory_mb < self.memory_mb:
            lacks.append(
                f"needs {self.memory_mb:g} MB of memory, has {profile.usable_memory_mb} MB usable"
                f" ({profile.memory_mb} MB - {profile.os_reserved_mb} MB OS reserve)"
            )
        if self.cores is not None and profile.cpu_cores < self.cores:
            lacks.append(f"needs {self.cores} cores, has {profile.cpu_cores}")
        if self.gpu is not None and (profile.gpu is not None) != self.gpu:
            lacks.append(
                "needs a GPU, has none" if self.gpu else f"needs no GPU, has {profile.gpu}"
            )
        if not lacks:
            return None
        return f"edge_requires: device {profile.name} " + "; ".join(lacks)


def marker_requirements(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> Requirements:
    allowed = ("memory_mb", "cores", "gpu")
    if args:
        raise MarkerError(
            f"{where}: edge_requires takes keywords only ({', '.join(allowed)}), got {args!r}"
        )
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise MarkerError(
            f"{where}: edge_requires got unknown keyword {unknown[0]!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    if not kwargs:
        raise MarkerError(f"{where}: edge_requires needs at least one of {', '.join(allowed)}")
    memory = kwargs.get("memory_mb")
    if memory is not None:
        memory = parse_size_mb(memory, f"{where}: edge_requires(memory_mb=...)")
    cores = kwargs.get("cores")
    if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or cores < 1):
        raise MarkerError(f"{where}: edge_requires(cores={cores!r}): expected a whole number >= 1")
    gpu = kwargs.get("gpu")
    if gpu is not None and not isinstance(gpu, bool):
        raise MarkerError(f"{where}: edge_requires(gpu={gpu!r}): expected True or False")
    return Requirements(memory, cores, gpu)


def marker_budget_mb(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> float:
    """``edge_memory_budget("300 MB")``: the most a test's peak memory may grow."""
    if kwargs or len(args) != 1:
        raise MarkerError(
            f"{where}: edge_memory_budget takes one size, e.g. "
            f"@pytest.mark.edge_memory_budget('300 MB'); got args={tuple(args)!r} "
            f"kwargs={dict(kwargs)!r}"
        )
    return parse_size_mb(args[0], f"{where}: edge_memory_budget")


def marker_isolated_timeout(
    args: Sequence[Any], kwargs: Mapping[str, Any], where: str
) -> float | None:
    """``edge_isolated`` or ``edge_isolated(timeout=60)``."""
    unknown = sorted(set(kwargs) - {"timeout"})
    if args or unknown:
        raise MarkerError(
            f"{where}: edge_isolated takes no arguments except timeout=SECONDS; "
            f"got args={tuple(args)!r} kwargs={dict(kwargs)!r}"
        )
    timeout = kwargs.get("timeout")
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_SECONDS
    ):
        raise MarkerError(
            f"{where}: edge_isolated(timeout={timeout!r}): expected seconds > 0 and <= "
            f"{MAX_SECONDS} ({SECONDS_NOTE})"
        )
    return float(timeout)


@dataclass(frozen=True)
class EdgeMarks:
    """Everything the edge markers of one test say, parsed once at collection."""

    profiles: tuple[DeviceProfile, ...] | None = None
    requires: Requirements | None = None
    budget_mb: float | None = None
    isolated: bool = False
    isolated_timeout: float | None = None


class _Mark(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def args(self) -> tuple[Any, ...]: ...

    @property
    def kwargs(self) -> Mapping[str, Any]: ...


def read_marks(
    marks: Iterable[_Mark], where: str, resolve: Callable[[str], DeviceProfile]
) -> EdgeMarks:
    """Parse the edge markers among `marks` (closest first, as pytest yields them).

    The closest marker of each name wins, like ``get_closest_marker``. Raises `MarkerError`
    (or `UnknownProfileError` from `resolve`) naming `where`.
    """
    seen: dict[str, _Mark] = {}
    for mark in marks:
        if mark.name.startswith("edge_") and mark.name not in seen:
            seen[mark.name] = mark
    if not seen:
        return _NO_MARKS
    profiles = requires = budget = timeout = None
    profile_mark = seen.get("edge_profile")
    if profile_mark is not None:
        names = marker_profiles(profile_mark.args, profile_mark.kwargs, where)
        try:
            profiles = tuple(resolve(name) for name in names)
        except LookupError as exc:  # UnknownProfileError: say which marker of which test
            raise MarkerError(f"{where}: edge_profile: {str(exc).splitlines()[0]}") from None
    requires_mark = seen.get("edge_requires")
    if requires_mark is not None:
        requires = marker_requirements(requires_mark.args, requires_mark.kwargs, where)
    budget_mark = seen.get("edge_memory_budget")
    if budget_mark is not None:
        budget = marker_budget_mb(budget_mark.args, budget_mark.kwargs, where)
    isolated_mark = seen.get("edge_isolated")
    if isolated_mark is not None:
        timeout = marker_isolated_timeout(isolated_mark.args, isolated_mark.kwargs, where)
    isolated = isolated_mark is not None
    return EdgeMarks(profiles, requires, budget, isolated, timeout)


_NO_MARKS = EdgeMarks()
