"""CrashHarness: kill -9 and power-loss cycles over a workload, checking every acknowledged write.

Usable without pytest; the ``edge_crash`` fixture is a thin wrapper. See README, "Crash and
power-loss harness".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict, Unpack

from pytest_edge import durable
from pytest_edge.crash.errors import (
    CrashHarnessError,
    CrashHarnessWarning,
    CrashTimeoutError,
    KillPointNotReachedError,
    WorkloadError,
)
from pytest_edge.crash.fsmodel import (
    CALL_RECORDS,
    STATE_RECORDS,
    VARIANTS,
    WAL_INDEX_NOTE,
    CrashState,
    FsModel,
    Snapshot,
    check_state_dir,
    cut_positions,
    iter_states,
)
from pytest_edge.crash.layer import LayerUnavailableError
from pytest_edge.crash.layer import choose as choose_layer
from pytest_edge.crash.report import CrashReport, CycleResult, Failure, Loss
from pytest_edge.crash.template import ChildExit, TemplateServer
from pytest_edge.errors import EdgeInputError
from pytest_edge.lifetime import owned_tempdir, sweep_stale

MODES = ("kill", "power-loss")
KILL_FORMS = (
    "'random', 'random-time:SECONDS', 'events:N', 'acks:N', 'crashpoint:NAME', "
    "'crashpoint:NAME:N', 'syscall:N' or 'syscall:CALL:N'"
)
#: ``syscall:CALL:N`` kinds: the Nth traced call of that kind (``any``: of every kind)
SYSCALL_KINDS = ("any", *CALL_RECORDS)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3", "-wal", "-journal", "-shm")


class ValueCheck(Protocol):
    """Accepts a recovered value that differs from the acknowledged one (e.g. a newer one).

    Values are the JSON round trip of what was acknowledged / recovered; ``DELETED`` stands
    for a deletion or an absent key.
    """

    def __call__(self, key: str, acknowledged: Any, recovered: Any) -> bool: ...


Target = Callable[[str], Any] | str


def _libc_calls() -> frozenset[str]:
    """The libc function names the system-call layer counts (empty without the layer)."""
    try:
        from pytest_edge.syscalls import KILL_CALLS
    except ImportError:
        return frozenset()
    return frozenset(KILL_CALLS)


@dataclass(frozen=True)
class KillSpec:
    """Where to kill the workload: random, random-time:S, acks:N, crashpoint:NAME[:N], syscall.

    ``random`` kills before a seeded random event (an ack, intent, crashpoint or traced file
    operation) and replays exactly; ``random-time:S`` kills after a seeded random delay of up
    to S seconds: the delay replays, the instruction it lands on depends on timing.
    ``syscall:N`` kills before the Nth traced system call of the cycle, ``syscall:CALL:N``
    before the Nth of one kind (``syscall:fsync:2``: between the writes that precede the
    second fsync and that fsync); these need the system-call layer.
    """

    kind: str
    count: int = 0
    name: str = ""
    seconds: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> KillSpec:
        if not isinstance(spec, str):
            raise EdgeInputError(f"kill={spec!r}: expected a string, one of {KILL_FORMS}")
        if spec == "random":
            return cls("random")
        head, _, rest = spec.partition(":")
        if head == "random-time":
            try:
                seconds = float(rest)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds < float("inf"):
                raise EdgeInputError(
                    f"kill={spec!r}: SECONDS in 'random-time:SECONDS' must be a number > 0"
                )
            return cls("time", seconds=seconds)
        if head in ("acks", "events"):
            if not rest.isdigit() or int(rest) < 1:
                raise EdgeInputError(f"kill={spec!r}: N in '{head}:N' must be an integer >= 1")
            return cls(head, int(rest))
        if head == "syscall":
            return cls._parse_syscall(spec, rest)
        if head == "crashpoint" and rest:
            name, sep, nth = rest.rpartition(":")
            if sep and nth.isdigit() and name:
                if int(nth) < 1:
                    raise EdgeInputError(f"kill={spec!r}: N in 'crashpoint:NAME:N' must be >= 1")
                return cls("crashpoint", int(nth), name)
            return cls("crashpoint", 1, rest)
        raise EdgeInputError(f"kill={spec!r} is not a kill point; use {KILL_FORMS}")

    @classmethod
    def _parse_syscall(cls, spec: str, rest: str) -> KillSpec:
        call, sep, nth = rest.rpartition(":")
        if not sep:
            call = "any"
        if call not in SYSCALL_KINDS and call not in _libc_calls():
            raise EdgeInputError(
                f"kill={spec!r}: CALL in 'syscall:CALL:N' must be one of "
                f"{', '.join(SYSCALL_KINDS)}, or a libc function the system-call layer "
                "counts (pwrite64, fdatasync, unlinkat, ...)"
            )
        if not (nth.isdigit() and int(nth) >= 1):
            form = "syscall:N" if call == "any" and not sep else "syscall:CALL:N"
            raise EdgeInputError(f"kill={spec!r}: N in '{form}' must be an integer >= 1")
        return cls("syscall", int(nth), call)

    def plan(self, rng: random.Random, random_events: int) -> dict[str, Any]:
        """The child's kill plan for one cycle (random points are drawn from *rng*)."""
        if self.kind == "random":
            return {"kind": "events", "events": rng.randint(1, random_events)}
        if self.kind == "syscall":
            return {"kind": "syscall", "call": self.name, "nth": self.count}
        if self.kind == "time":
            return {"kind": "time", "delay": rng.uniform(0.0, self.seconds)}
        if self.kind == "events":
            return {"kind": "events", "events": self.count}
        if self.kind == "acks":
            return {"kind": "acks", "acks": self.count}
        return {"kind": "crashpoint", "name": self.name, "nth": self.count}

    def __str__(self) -> str:
        if self.kind in ("acks", "events"):
            return f"{self.kind}:{self.count}"
        if self.kind == "crashpoint":
            return f"crashpoint:{self.name}:{self.count}"
        if self.kind == "syscall":
            return f"syscall:{self.name}:{self.count}"
        if self.kind == "time":
            return f"random-time:{self.seconds:g}"
        return "random"


def target_name(obj: Target, what: str) -> str:
    """``module:qualname`` for a module-level callable (or a string already in that form)."""
    if isinstance(obj, str):
        head, sep, tail = obj.partition(":")
        if not (sep and head and tail):
            raise EdgeInputError(f"{what}={obj!r}: expected 'module:function'")
        return obj
    module: str | None = getattr(obj, "__module__", None)
    qualname: str | None = getattr(obj, "__qualname__", None)
    if not callable(obj) or not module or not qualname or "<" in qualname:
        raise EdgeInputError(
            f"{what}={obj!r}: must be a module-level function or a 'module:function' string, "
            "so the child process can import it (lambdas and nested functions cannot be used)"
        )
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if not main_file:
            raise EdgeInputError(
                f"{what}={obj!r}: defined in an interactive __main__; use a module"
            )
        module = os.path.abspath(main_file)
    return f"{module}:{qualname}"


_ABSENT = "<absent>"


class Ledger:
    """Acknowledged values per key, plus values declared in flight after the acknowledgement."""

    def __init__(self, entries: Mapping[str, tuple[str | None, tuple[str | None, ...]]] = {}):
        self.entries: dict[str, tuple[str | None, tuple[str | None, ...]]] = dict(entries)
        self.version = 0

    def copy(self) -> Ledger:
        other = Ledger(self.entries)
        other.version = self.version
        return other

    def apply(self, record: Mapping[str, Any]) -> None:
        kind = record["t"]
        if kind == "ack":
            self.entries[record["key"]] = (record["v"], ())
            self.version += 1
        elif kind == "intent" and record["key"] in self.entries:
            value, alternatives = self.entries[record["key"]]
            self.entries[record["key"]] = (value, (*alternatives, record["v"]))
            self.version += 1

    def losses(
        self, recovered: Mapping[str, str] | None, check: ValueCheck | None
    ) -> tuple[Loss, ...]:
        """What recovery lost or changed (everything, when it raised: *recovered* is None)."""
        found: list[Loss] = []
        for key, (value, alternatives) in sorted(self.entries.items(), key=_natural):
            expected = "DELETED" if value is None else value
            if recovered is None:
                if value is not None:
                    found.append(Loss(key, "lost", expected, "<recover raised>"))
                continue
            got = recovered.get(key)
            allowed = (value, *alternatives)
            if got in allowed:
                continue
            if check is not None and check(key, _decode(value), _decode(got)):
                continue
            kind = "lost" if got is None else ("resurrected" if value is None else "changed")
            found.append(Loss(key, kind, expected, _ABSENT if got is None else got))
        return tuple(found)

    def settle(self, recovered: Mapping[str, str]) -> None:
        """After a passing recovery, what was recovered is what later cycles must keep."""
        for key, (value, alternatives) in list(self.entries.items()):
            got = recovered.get(key)
            if alternatives or got != value:
                self.entries[key] = (got, ())


def _natural(item: tuple[str, Any]) -> list[Any]:
    """Sort key: 'k2' before 'k10'."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", item[0])]


def _decode(text: str | None) -> Any:
    return durable.DELETED if text is None else json.loads(text)


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Complete JSON lines of a record file (a line torn by the kill is ignored)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return records


_FLAG_NAMES = (("O_CREAT", os.O_CREAT), ("O_TRUNC", os.O_TRUNC), ("O_APPEND", os.O_APPEND))


def format_record(index: int, record: Mapping[str, Any]) -> str:
    """One trace step, for humans (with the libc call, when the system-call layer saw it)."""
    text = _describe_record(record)
    call = record.get("sys")
    return f"#{index} {text}" + (f" [{call}]" if call else "")


def _describe_record(record: Mapping[str, Any]) -> str:
    kind = record["t"]
    if kind == "open":
        flags = int(record["flags"])
        names = [n for n, bit in _FLAG_NAMES if flags & bit] or ["existing"]
        return f"open {record['path']} ({'|'.join(names)})"
    if kind == "write":
        size = len(base64.b64decode(record["data"]))
        return f"write {record['path']} @{record['off']} ({size} bytes)"
    if kind in ("fsync", "dirsync", "unlink", "mkdir", "rmdir", "opendir", "import", "sfr"):
        return f"{kind} {record.get('path', '')}"
    if kind == "unobserved":
        return f"unobserved {record.get('path', '')}: {record.get('why', '')}"
    if kind == "trunc":
        path = record.get("path")
        return f"truncate {path} to {record['size']}" if path else f"truncate to {record['size']}"
    if kind in ("rename", "link"):
        return f"{kind} {record['src']} -> {record['dst']}"
    if kind in ("ack", "intent"):
        value = "DELETED" if record["v"] is None else record["v"]
        if len(value) > 60:
            value = value[:57] + "..."
        return f"{kind} {record['key']!r} = {value}"
    if kind == "cp":
        return f"crashpoint {record['name']!r}"
    return str(kind)


def _default_workroot() -> str | None:
    shm = "/dev/shm"  # noqa: S108 - tmpfs for crash states; mkdtemp makes a private dir
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


class CrashOptions(TypedDict, total=False):
    """How cycles run and are checked, as `CrashHarness.run` and `.session` pass them on."""

    #: ``"kill"`` (SIGKILL; the OS keeps what was written) or ``"power-loss"`` (it may not)
    mode: str
    #: accepts a recovered value that differs from the acknowledged one
    check: ValueCheck | None
    #: seconds a child may run per cycle
    timeout: float
    #: power loss: crash states checked per cycle at most
    max_states: int
    #: ``kill="random"``: the kill lands before one of the first N events
    random_events: int
    #: who observes the child's file I/O: ``"auto"`` (the system-call layer where it is
    #: available, else Python), ``"syscall"`` (required) or ``"python"``
    layer: str


class CrashSession:
    """One workload/recover pair on one state directory; run cycles one by one.

    ``CrashHarness.run`` drives a session for many cycles; the hypothesis helper drives one
    rule by rule. Close it (or use it as a context manager) to end the template process.
    """

    def __init__(
        self,
        workload: Target,
        recover: Target,
        *,
        state_dir: Path | str,
        seed: int,
        mode: str = "kill",
        check: ValueCheck | None = None,
        timeout: float = 30.0,
        max_states: int = 64,
        random_events: int = 200,
        random_variants: int = 4,
        layer: str = "auto",
        workroot: str | None = None,
        server: TemplateServer | None = None,
    ) -> None:
        if mode not in MODES:
            raise EdgeInputError(f"mode={mode!r}: use 'kill' or 'power-loss'")
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise EdgeInputError(f"timeout={timeout!r}: seconds per cycle, a number > 0")
        if not (isinstance(max_states, int) and max_states >= 1):
            raise EdgeInputError(f"max_states={max_states!r}: an integer >= 1")
        if not (isinstance(random_events, int) and random_events >= 1):
            raise EdgeInputError(f"random_events={random_events!r}: an integer >= 1")
        self.mode = mode
        self.seed = seed
        self.check = check
        self.timeout = float(timeout)
        self.max_states = max_states
        self.random_events = random_events
        self.variants = (*VARIANTS, *(f"random-{j}" for j in range(random_variants)))
        self.layer = choose_layer(layer)
        if server is not None and self.layer.name != server.layer.name == "python":
            if layer == "syscall":
                raise LayerUnavailableError(
                    f"layer='syscall': the shared template process runs without the "
                    f"system-call library ({server.layer.why})"
                )
            self.layer = server.layer
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        check_state_dir(self.state_dir)
        self.ledger = Ledger()
        self.report = CrashReport(
            mode=mode, seed=seed, observed_at=self.layer.name, observed_why=self.layer.why
        )
        self.cycle_no = 0
        self._warned: set[str] = set()
        targets = {
            "workload": target_name(workload, "workload"),
            "recover": target_name(recover, "recover"),
        }
        root = workroot or _default_workroot()
        sweep_stale("crash", [root, None])
        self._workdir = owned_tempdir("crash", root)
        self._owns_server = server is None
        try:
            self._server = (
                TemplateServer(targets, self._workdir, layer=self.layer)
                if server is None
                else server
            )
            if server is not None:
                server.adopt(self._workdir)
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise

    def close(self) -> None:
        if self._owns_server:
            self._server.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> CrashSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one cycle ------------------------------------------------------------------------------

    def cycle(self, kill: str | KillSpec = "random") -> Failure | None:
        """Run one crash cycle; returns the failure it found (also added to the report)."""
        spec = kill if isinstance(kill, KillSpec) else KillSpec.parse(kill)
        if spec.kind == "syscall" and self.layer.name != "syscall":
            raise LayerUnavailableError(
                f"kill={str(spec)!r}: system-call kill points need the system-call layer, "
                f"which this session does not use ({self.layer.why})"
            )
        self.cycle_no += 1
        n = self.cycle_no
        rng = random.Random(f"{self.seed}:{n}")  # noqa: S311 - seeded replay, not crypto
        plan = spec.plan(rng, self.random_events)
        records_path = self._workdir / f"records-{n}.jsonl"
        snapshot = Snapshot.read(self.state_dir) if self.mode == "power-loss" else None
        ended = self._run_workload(n, spec, plan, records_path)
        records = _read_records(records_path)
        kill_point = next((str(r["why"]) for r in records if r["t"] == "kill"), None)
        if kill_point and plan["kind"] == "events":
            # the layer's own words are "syscall: before call N (...)": a random point here
            kill_point = "random: " + kill_point.removeprefix("syscall: ")
        where = kill_point or ended
        self._raise_for_workload(n, spec, records, ended)
        acks = sum(1 for r in records if r["t"] == "ack")
        if self.mode == "kill":
            failure, result = self._check_kill(n, where, ended, records, acks)
        else:
            assert snapshot is not None
            model = FsModel(snapshot)
            for record in records:
                model.apply(record)
            # A timed kill can land between an operation and its record: the real directory
            # may then be one operation ahead of the trace, which is no sign of C writes.
            if plan["kind"] != "time":
                self._warn_untraced(model, records)
            self._note_dropped(model)
            unobserved = model.unobserved_files()
            if unobserved:
                failure, result = self._inconclusive(n, where, ended, records, acks, unobserved)
            else:
                failure, result = self._check_power_loss(
                    n, where, ended, records, acks, snapshot, rng
                )
        self.report.cycles.append(result)
        if failure is not None:
            self.report.failures.append(failure)
        records_path.unlink(missing_ok=True)
        return failure

    def _run_workload(self, n: int, spec: KillSpec, plan: dict[str, Any], records: Path) -> str:
        args = {
            "state_dir": str(self.state_dir),
            "record": str(records),
            "plan": plan,
            "trace": self.mode == "power-loss",
            "layer": self.layer.name,
        }
        pid = self._server.spawn("workload", args)
        delay = float(plan["delay"]) if plan["kind"] == "time" else None
        if delay is not None and delay < self.timeout:
            status = self._server.wait(pid, delay)
            if status is None:
                self._server.kill(pid)
                return f"random-time: killed after {delay:.4f} s"
        else:
            status = self._wait(
                pid,
                n,
                f"the workload ran for {self.timeout:g} s without reaching kill point "
                f"{str(spec)!r}; it was killed. Use a kill point the workload reaches, or a "
                "larger timeout=",
            )
        return "workload returned" if status.exit_code == 0 else status.describe()

    def _wait(self, pid: int, n: int, overdue: str) -> ChildExit:
        """The child's exit; past the timeout it is killed: `CrashTimeoutError` says *overdue*."""
        status = self._server.wait(pid, self.timeout)
        if status is None:
            self._server.kill(pid)
            raise CrashTimeoutError(f"cycle {n} (seed {self.seed}): {overdue}")
        return status

    def _raise_for_workload(
        self, n: int, spec: KillSpec, records: Sequence[Mapping[str, Any]], ended: str
    ) -> None:
        error = next((r for r in records if r["t"] == "error"), None)
        if error is not None:
            raise WorkloadError(
                f"cycle {n} (seed {self.seed}): the workload raised {error['error']}\n{error['tb']}"
            )
        if ended == "workload returned" and spec.kind not in ("random", "time", "events"):
            acks = sum(1 for r in records if r["t"] == "ack")
            raise KillPointNotReachedError(
                f"cycle {n} (seed {self.seed}): the workload returned before kill point "
                f"{str(spec)!r} was reached ({acks} acks in this cycle)"
            )
        # A timed kill may come before the child started: a crash at start-up, nothing lost.
        started = any(r["t"] == "start" for r in records)
        if not started and not ended.startswith("random-time"):
            raise CrashHarnessError(
                f"cycle {n} (seed {self.seed}): the workload child did not start ({ended})\n"
                + self._server.log_tail()
            )

    def _recover(self, n: int, dirs: Sequence[Path]) -> list[dict[str, Any]]:
        out = self._workdir / f"recovered-{n}.jsonl"
        pid = self._server.spawn("recover", {"dirs": [str(d) for d in dirs], "out": str(out)})
        status = self._wait(
            pid,
            n,
            f"recover did not finish within {self.timeout:g} s ({len(dirs)} state(s) to check)",
        )
        results = _read_records(out)
        out.unlink(missing_ok=True)
        if status.exit_code != 0 or len(results) != len(dirs):
            raise CrashHarnessError(
                f"cycle {n} (seed {self.seed}): the recover child ended ({status.describe()}) "
                f"after {len(results)} of {len(dirs)} states\n{self._server.log_tail()}"
            )
        return results

    def _check_kill(
        self, n: int, where: str, ended: str, records: Sequence[Mapping[str, Any]], acks: int
    ) -> tuple[Failure | None, CycleResult]:
        for record in records:
            self.ledger.apply(record)
        (result,) = self._recover(n, [self.state_dir])
        recovered = result.get("state")
        losses = self.ledger.losses(recovered, self.check)
        failure = None
        if losses or recovered is None:
            failure = Failure(n, self.seed, self.mode, where, losses, result.get("error"))
        elif recovered is not None:
            self.ledger.settle(recovered)
        return failure, CycleResult(n, where, ended, acks)

    def _check_power_loss(
        self,
        n: int,
        where: str,
        ended: str,
        records: Sequence[Mapping[str, Any]],
        acks: int,
        snapshot: Snapshot,
        rng: random.Random,
    ) -> tuple[Failure | None, CycleResult]:
        started = time.perf_counter()
        cuts = cut_positions(records)
        candidates = [(cut, variant) for cut in cuts for variant in self.variants]
        chosen = (
            candidates
            if len(candidates) <= self.max_states
            else rng.sample(candidates, self.max_states)
        )
        states, ledgers = self._build_states(n, snapshot, records, chosen)
        dirs = [self._workdir / f"c{n}" / f"s{j}" for j in range(len(states))]
        results = self._recover(n, dirs) if states else []
        failing: list[tuple[CrashState, Ledger, dict[str, Any], tuple[Loss, ...]]] = []
        passing: list[tuple[int, Ledger, dict[str, Any]]] = []
        for j, (state, ledger, result) in enumerate(zip(states, ledgers, results, strict=True)):
            losses = ledger.losses(result.get("state"), self.check)
            if losses or result.get("state") is None:
                failing.append((state, ledger, result, losses))
            elif result.get("state") is not None:
                passing.append((j, ledger, result))
        cycle_result = CycleResult(
            n, where, ended, acks, len(states), len(candidates), time.perf_counter() - started
        )
        failure = None
        if failing:
            state, _, result, losses = min(failing, key=lambda f: (f[0].cut, len(f[3])))
            trace = [
                format_record(i, r)
                for i, r in enumerate(records[: state.cut])
                if r["t"] in STATE_RECORDS or r["t"] in ("ack", "intent", "cp")
            ]
            failure = Failure(
                n,
                self.seed,
                self.mode,
                where,
                losses,
                result.get("error"),
                crash_state=(
                    f"power cut after trace step #{state.cut - 1} ({state.variant}): {state.detail}"
                ),
                trace=tuple(trace[-40:]),
            )
        elif passing:
            j, ledger, result = rng.choice(passing)
            ledger.settle(result["state"])
            self.ledger = ledger
            self._restore(dirs[j])
        shutil.rmtree(self._workdir / f"c{n}", ignore_errors=True)
        return failure, cycle_result

    def _build_states(
        self,
        n: int,
        snapshot: Snapshot,
        records: Sequence[Mapping[str, Any]],
        chosen: Sequence[tuple[int, str]],
    ) -> tuple[list[CrashState], list[Ledger]]:
        states: list[CrashState] = []
        ledgers: list[Ledger] = []
        seen: set[tuple[str, int]] = set()
        ledger = self.ledger.copy()
        position = 0
        for state, _model in iter_states(snapshot, records, chosen, f"{self.seed}:{n}"):
            while position < state.cut:
                ledger.apply(records[position])
                position += 1
            key = (_digest(state.snapshot), ledger.version)
            if key in seen:
                continue
            seen.add(key)
            state.snapshot.write(self._workdir / f"c{n}" / f"s{len(states)}")
            states.append(state)
            ledgers.append(ledger.copy())
        return states, ledgers

    def _restore(self, source: Path) -> None:
        """Make the state directory hold exactly what *source* holds."""
        for entry in list(self.state_dir.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in source.iterdir():
            if entry.is_dir():
                shutil.copytree(entry, self.state_dir / entry.name)
            else:
                shutil.copy2(entry, self.state_dir / entry.name)

    def _inconclusive(
        self,
        n: int,
        where: str,
        ended: str,
        records: Sequence[Mapping[str, Any]],
        acks: int,
        unobserved: Mapping[str, str],
    ) -> tuple[None, CycleResult]:
        """No crash state is built: files the trace cannot see make the verdict inconclusive.

        The cycle goes on as a kill cycle would (the directory as the workload left it), so
        the run still exercises the workload, but it can neither pass nor fail power loss.
        """
        for path, why in sorted(unobserved.items()):
            message = (
                f"{path} in {self.state_dir}: {why}; its writes cannot be observed, so no "
                "crash state of it can be built: the power-loss verdict is inconclusive"
            )
            if message not in self.report.inconclusive:
                self.report.inconclusive.append(message)
        for record in records:
            self.ledger.apply(record)
        return None, CycleResult(n, where, ended, acks, inconclusive=True)

    def _note_dropped(self, model: FsModel) -> None:
        for path in model.dropped_files():
            note = f"{path} dropped from every crash state: {WAL_INDEX_NOTE}"
            if note not in self.report.notes:
                self.report.notes.append(note)

    def _warn_untraced(self, model: FsModel, records: Sequence[Mapping[str, Any]]) -> None:
        """Warn about files that changed in ways the trace cannot explain."""
        expected = model.current().files
        actual = Snapshot.read(self.state_dir).files
        skip = {path for path, _ in model.unobserved.values()}
        for path in sorted(set(expected) | set(actual)):
            if expected.get(path) == actual.get(path) or path in self._warned or path in skip:
                continue
            self._warned.add(path)
            data = actual.get(path, b"")
            sqlite = path.endswith(_SQLITE_SUFFIXES) or data.startswith(b"SQLite format 3\x00")
            if self.layer.name == "syscall":
                why = (
                    "written by a call the system-call layer does not see (another process, "
                    "a direct system call); power-loss states do not include those writes"
                )
            elif sqlite:
                why = (
                    "an SQLite file written by C code, which the Python-level trace cannot "
                    f"see ({self.layer.why}); power-loss states cannot model it"
                )
            else:
                why = (
                    "written outside Python-level file operations (C code, mmap or another "
                    f"process; {self.layer.why}); power-loss states do not include those writes"
                )
            message = f"{path} in {self.state_dir} changed outside the trace: {why}"
            self.report.warnings.append(message)
            warnings.warn(message, CrashHarnessWarning, stacklevel=4)


def _digest(snapshot: Snapshot) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(snapshot.files):
        h.update(path.encode() + b"\0" + hashlib.blake2b(snapshot.files[path]).digest())
    for d in sorted(snapshot.dirs):
        h.update(b"d" + d.encode() + b"\0")
    return h.hexdigest()


class CrashHarness:
    """Runs crash cycles: ``run(workload, recover, state_dir=..., cycles=..., mode=...)``.

    *seed* is the default for runs that do not pass one (the pytest fixture passes the run
    seed, so ``--edge-seed`` replays them); an explicit ``seed=`` argument always wins.
    """

    def __init__(self, seed: int | None = None, workroot: str | None = None) -> None:
        self.seed = seed
        self.workroot = workroot

    def _seed(self, seed: int | None) -> int:
        if seed is not None:
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise EdgeInputError(f"seed={seed!r}: a non-negative integer")
            return seed
        return self.seed if self.seed is not None else secrets.randbelow(2**32)

    @contextmanager
    def session(
        self,
        workload: Target,
        recover: Target,
        *,
        state_dir: Path | str,
        seed: int | None = None,
        **options: Unpack[CrashOptions],
    ) -> Iterator[CrashSession]:
        """A session to drive cycle by cycle (used by the hypothesis state machine)."""
        session = CrashSession(
            workload,
            recover,
            state_dir=state_dir,
            seed=self._seed(seed),
            workroot=self.workroot,
            **options,
        )
        try:
            yield session
        finally:
            session.close()

    def run(
        self,
        workload: Target,
        recover: Target,
        *,
        state_dir: Path | str,
        cycles: int = 50,
        seed: int | None = None,
        kill: str = "random",
        stop_on_failure: bool = True,
        **options: Unpack[CrashOptions],
    ) -> CrashReport:
        """Run *cycles* crash cycles and return the report (call ``assert_ok()`` on it).

        *options* (`CrashOptions`: mode, check, timeout, max_states, random_events) go to
        the `CrashSession`, which holds their defaults.
        """
        if not (isinstance(cycles, int) and cycles >= 1):
            raise EdgeInputError(f"cycles={cycles!r}: an integer >= 1")
        spec = KillSpec.parse(kill)
        with self.session(workload, recover, state_dir=state_dir, seed=seed, **options) as session:
            for _ in range(cycles):
                failure = session.cycle(spec)
                # inconclusive: every later cycle would be too (the same files stay unseen)
                if (failure is not None or session.report.inconclusive) and stop_on_failure:
                    break
            return session.report
