"""Which layer observes a crash child's file I/O: the system-call library, or Python patches.

The system-call layer (`pytest_edge.syscalls`, an ``LD_PRELOAD`` library) sees every libc
file call of the child: SQLite's own writes, C extensions, references bound at import. Where
it cannot be used (not built, not Linux), the Python-level tracer of `pytest_edge.crash._child`
stays, and the report says so and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_edge.errors import EdgeInputError

LAYERS = ("auto", "syscall", "python")


class LayerUnavailableError(EdgeInputError):
    """``layer="syscall"`` (or a ``syscall:`` kill point) where the library cannot be used."""


@dataclass(frozen=True)
class Layer:
    """The chosen layer and why (``why`` is empty when the syscall layer is in use)."""

    name: str  # "syscall" | "python"
    why: str = ""

    def describe(self) -> str:
        return f"observed at: {self.name}" + (f" ({self.why})" if self.why else "")

    def preload(self, env: dict[str, str]) -> dict[str, str]:
        """*env* with the library preloaded when this layer is the system-call one."""
        if self.name != "syscall":
            return env
        from pytest_edge import syscalls

        return syscalls.preload_env(env)


def _unavailable_reason() -> str | None:
    try:
        from pytest_edge import syscalls
    except ImportError as exc:  # a build of pytest-edge without the layer
        return f"pytest_edge.syscalls cannot be imported: {exc}"
    return syscalls.unavailable_reason()


def choose(layer: str) -> Layer:
    """``auto``: the system-call layer when it is available, else Python with the reason."""
    if layer not in LAYERS:
        raise EdgeInputError(f"layer={layer!r}: use one of {', '.join(map(repr, LAYERS))}")
    if layer == "python":
        return Layer("python", "layer='python' was asked for")
    reason = _unavailable_reason()
    if reason is None:
        return Layer("syscall")
    if layer == "syscall":
        raise LayerUnavailableError(
            f"layer='syscall': the system-call layer is unavailable: {reason}"
        )
    return Layer("python", f"system-call layer unavailable: {reason}")
