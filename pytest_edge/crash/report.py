"""The result of a crash run: cycles, acknowledged writes, losses, and how to replay them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_edge.crash.errors import InconclusiveError, LostWritesError


@dataclass(frozen=True)
class Loss:
    """One acknowledged write that recovery did not return as acknowledged."""

    key: str
    kind: str  # "lost" | "changed" | "resurrected"
    expected: str  # canonical JSON, or "DELETED"
    got: str  # canonical JSON, or "<absent>"

    def describe(self) -> str:
        return f"{self.kind} {self.key!r}: acknowledged {self.expected}, recovered {self.got}"


@dataclass(frozen=True)
class Failure:
    """A cycle (and for power loss, a crash state) where recovery broke the promise."""

    cycle: int
    seed: int
    mode: str
    kill_point: str
    losses: tuple[Loss, ...]
    recover_error: str | None = None
    crash_state: str | None = None
    trace: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [
            f"cycle {self.cycle} (seed {self.seed}, mode {self.mode}): kill point {self.kill_point}"
        ]
        if self.recover_error:
            lines.append(f"  recover raised: {self.recover_error}")
        lines += [f"  {loss.describe()}" for loss in self.losses[:50]]
        if len(self.losses) > 50:
            lines.append(f"  ... and {len(self.losses) - 50} more")
        if self.crash_state:
            lines.append(f"  crash state: {self.crash_state}")
        if self.trace:
            lines.append("  operation trace up to the power cut:")
            lines += [f"    {step}" for step in self.trace]
        return "\n".join(lines)


@dataclass(frozen=True)
class CycleResult:
    """What one crash cycle did."""

    cycle: int
    kill_point: str
    ended: str
    acks: int
    states_checked: int = 0
    states_possible: int = 0
    check_seconds: float = 0.0  # power loss: building the states and recovering each
    inconclusive: bool = False  # power loss: a file the trace cannot see; no state was built


@dataclass
class CrashReport:
    """Everything a crash run found; ``assert_ok()`` raises unless the verdict is ``pass``.

    ``verdict``: ``"fail"`` (an acknowledged write was lost), ``"inconclusive"`` (nothing was
    acknowledged in the whole run, or, power loss, a file was written where the trace cannot
    see, e.g. through a writable shared map; never a pass, never a fail) or ``"pass"``.
    ``observed_at`` names the layer that saw the child's file I/O (``"syscall"`` or
    ``"python"``) and ``observed_why`` why not the system-call one.
    """

    mode: str
    seed: int
    cycles: list[CycleResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    observed_at: str = "python"
    observed_why: str = ""
    inconclusive: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cycles_run(self) -> int:
        return len(self.cycles)

    @property
    def acked_writes(self) -> int:
        return sum(c.acks for c in self.cycles)

    @property
    def lost_writes(self) -> int:
        return sum(len(f.losses) for f in self.failures)

    @property
    def states_checked(self) -> int:
        return sum(c.states_checked for c in self.cycles)

    @property
    def states_possible(self) -> int:
        return sum(c.states_possible for c in self.cycles)

    @property
    def states_per_second(self) -> float:
        """Crash states built and recovered per second of checking (power-loss mode)."""
        seconds = sum(c.check_seconds for c in self.cycles)
        return self.states_checked / seconds if seconds else 0.0

    @property
    def verdict(self) -> str:
        """``"fail"``, ``"inconclusive"`` or ``"pass"`` (see the class docstring)."""
        if self.failures:
            return "fail"
        return "inconclusive" if self.inconclusive_reasons() else "pass"

    def inconclusive_reasons(self) -> list[str]:
        """Why the run can neither pass nor fail: files unseen, or nothing acknowledged."""
        reasons = list(self.inconclusive)
        if self.acked_writes == 0:
            reasons.append(
                f"no write was acknowledged in {self.cycles_run} cycle(s), so none could be "
                "checked: every kill came before the workload's first ack (with kill='random', "
                "raise random_events above the calls it makes before acknowledging, or use "
                "'acks:N'), or the workload never calls pytest_edge.ack"
            )
        return reasons

    @property
    def ok(self) -> bool:
        """The verdict is ``pass``: no write lost, and (power loss) every file observable."""
        return self.verdict == "pass"

    @property
    def observed(self) -> str:
        """``observed at: LAYER`` and, for the Python layer, why."""
        why = f" ({self.observed_why})" if self.observed_why else ""
        return f"observed at: {self.observed_at}{why}"

    def summary(self) -> str:
        text = (
            f"crash harness ({self.mode}, seed {self.seed}): {self.cycles_run} cycles, "
            f"{self.acked_writes} acknowledged writes, {self.lost_writes} lost or changed"
        )
        if self.mode == "power-loss":
            text += (
                f", {self.states_checked} crash states checked "
                f"(of {self.states_possible} candidates); verdict {self.verdict}; "
                f"{self.observed}"
            )
        return text

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f.describe() for f in self.failures]
        lines += [f"inconclusive: {i}" for i in self.inconclusive_reasons()]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.failures:
            lines.append(f"replay: pass seed={self.seed} (or run pytest with --edge-seed)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for reports and scenario results."""
        return {
            "mode": self.mode,
            "seed": self.seed,
            "cycles_run": self.cycles_run,
            "acked_writes": self.acked_writes,
            "lost_writes": self.lost_writes,
            "states_checked": self.states_checked,
            "states_possible": self.states_possible,
            "states_per_second": round(self.states_per_second, 1),
            "ok": self.ok,
            "verdict": self.verdict,
            "observed_at": self.observed_at,
            "observed_why": self.observed_why,
            "cycles": [asdict(c) for c in self.cycles],
            "failures": [asdict(f) for f in self.failures],
            "inconclusive": self.inconclusive_reasons(),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    def assert_ok(self) -> None:
        """Raise unless the verdict is ``pass``, with the full report.

        `LostWritesError` when an acknowledged write was lost; `InconclusiveError` when
        nothing was acknowledged or a file the trace cannot see kept the verdict from being
        reached.
        """
        if self.failures:
            raise LostWritesError(str(self))
        if self.verdict == "inconclusive":
            raise InconclusiveError(str(self))
