"""Run a function in a limited child process: the enforcement level of a simulated device.

The child is started by the ``forkserver`` method (``spawn`` where there is none), never a bare
``fork()`` of a possibly threaded test process. Inside the child, before `fn` runs:

- glibc malloc arenas are capped at 2 (``mallopt(M_ARENA_MAX)``, and ``MALLOC_ARENA_MAX=2``
  for its own children), so threads do not reserve memory the budget would count;
- CPU affinity is set to ``min(device cores, host cores)`` of the CPUs the parent may use;
- the view is installed, so `fn` sees the device as in-process tests do;
- ``RLIMIT_DATA`` (``RLIMIT_AS`` where DATA is not enforced) is set to the child's current
  size plus the memory budget, so growth past the budget fails with ``MemoryError`` (the fast
  path for heap allocations);
- the parent samples the child's whole process tree (`pytest_edge.device.oom`): shared and
  file-backed mappings and subprocesses count too, and past the budget the tree is killed as
  the kernel's OOM killer would, raising `OomKilledError` (a ``MemoryError``).

The child dies with pytest: it reads a pipe whose only writer is the test process and kills
its own process tree when that closes (pytest ended by any signal), and on Linux its
parent-death signal is SIGKILL. The forkserver and the resource tracker then see their pipes
close and exit.

`fn`, its arguments, its result and its exception travel by pickle between processes the
test itself started (trusted data, never from outside).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

from pytest_edge import lifetime
from pytest_edge.device import hangdump, oom, probe
from pytest_edge.errors import EdgeError
from pytest_edge.machine import MIB, use_machine
from pytest_edge.profiles.model import DeviceProfile

_M_ARENA_MAX = -8  # glibc mallopt parameter number
_DUTY_PERIOD_S = 0.05


class IsolationError(EdgeError, RuntimeError):
    """The isolated call could not be set up or its result could not be sent back."""


class RemoteError(EdgeError, RuntimeError):
    """`fn` raised an exception that cannot be pickled; this carries its type and traceback."""

    def __init__(self, type_name: str, message: str, child_traceback: str) -> None:
        self.type_name = type_name
        self.child_traceback = child_traceback
        super().__init__(
            f"{type_name}: {message}\n(raised in the isolated child; it could not be pickled)\n"
            f"child traceback:\n{child_traceback}"
        )


class IsolatedChildDied(EdgeError, RuntimeError):
    """The child ended without reporting: killed by a signal, exited early or timed out.

    After a timeout, `stacks` holds every thread's stack of the child at that moment (what
    the hung workload was doing), and the message ends with them.
    """

    def __init__(self, how: str, limits: str, stacks: str = "") -> None:
        self.how = how
        self.limits = limits
        self.stacks = stacks
        message = f"isolated child died: {how}; limits in force: {limits}"
        if stacks:
            message += f"\n{stacks}"
        super().__init__(message)


@dataclass(frozen=True)
class IsolationLimits:
    """What the child is held to. None means: not limited."""

    memory_budget_bytes: int | None
    cpus: tuple[int, ...] | None
    duty_cycle: float | None = None  # fraction of wall time the child may run (SIGSTOP/CONT)
    profile: DeviceProfile | None = None  # installs the view in the child
    watchdog: bool = True  # sample the whole process tree (the simulated OOM killer)

    def describe(self, rlimit_name: str | None = None) -> str:
        parts = []
        if self.memory_budget_bytes is not None:
            how = rlimit_name or memory_rlimit_name() or "no rlimit available"
            if self.watchdog and oom.supported():
                how += " + process-tree PSS watchdog"
            parts.append(f"memory growth {self.memory_budget_bytes / MIB:.0f} MB ({how})")
        if self.cpus is not None:
            parts.append(self._describe_cpus())
        if self.duty_cycle is not None:
            parts.append(f"duty cycle {self.duty_cycle:.0%} (SIGSTOP/SIGCONT, approximate)")
        return ", ".join(parts) or "none"

    def applied_cpus(self) -> tuple[int, ...] | None:
        """The CPUs the child is really pinned to: those asked that this host allows."""
        if self.cpus is None:
            return None
        allowed = allowed_cpus()
        return tuple(c for c in self.cpus if c in allowed) or tuple(sorted(allowed))

    def _describe_cpus(self) -> str:
        applied = self.applied_cpus() or ()
        text = f"CPU affinity {{{', '.join(map(str, applied))}}}"
        cores = self.profile.cpu_cores if self.profile is not None else None
        if cores is not None and cores != len(applied):
            allowed = len(allowed_cpus())
            text += (
                f" ({len(applied)} of the simulated device's {cores} cores: "
                f"this host allows {allowed})"
            )
        return text


def allowed_cpus() -> frozenset[int]:
    """The CPUs this process may run on, from the kernel, not from a device view.

    Under a simulated device's view ``os.sched_getaffinity`` answers with the device's
    cores; ``/proc/self/status`` still tells the host's truth.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Cpus_allowed_list:"):
                cpus: set[int] = set()
                for part in line.split(":", 1)[1].strip().split(","):
                    low, _, high = part.partition("-")
                    cpus.update(range(int(low), int(high or low) + 1))
                return frozenset(cpus)
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


@dataclass
class IsolatedOutcome:
    value: Any
    peak_growth_bytes: int
    notes: list[str] = field(default_factory=list)
    watch: oom.TreeWatch | None = None  # the process-tree sampler, when it ran


def memory_rlimit_name() -> str | None:
    """The rlimit that bounds heap growth here: RLIMIT_DATA on Linux >= 4.7, else RLIMIT_AS.

    Only Linux is claimed: macOS accepts these limits but does not hold malloc to them, so
    there the answer is None and the report says memory is not enforced.
    """
    if sys.platform != "linux":
        return None
    release = platform.release().split(".")
    with contextlib.suppress(ValueError, IndexError):
        if (int(release[0]), int(release[1].split("-")[0])) >= (4, 7):
            return "RLIMIT_DATA"
    return "RLIMIT_AS"


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        # Children fork from the server: started with the system-call library preloaded
        # (when it can be), faults armed in them act at that layer (pytest_edge.faults.layer).
        from multiprocessing import forkserver

        from pytest_edge.faults.launch import library_in_environ

        with library_in_environ():
            forkserver.ensure_running()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _describe_callable(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def run_isolated(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    limits: IsolationLimits,
    timeout: float | None = None,
    peak_sink: Callable[[int], None] | None = None,
    rewrite_module: tuple[str, str] | None = None,
) -> IsolatedOutcome:
    """Call ``fn(*args, **kwargs)`` in a limited child; return its value or re-raise its error.

    `peak_sink` receives the child's peak memory growth in bytes whenever the child reported
    one, also when `fn` raised (when the child died or timed out: the tree's sampled peak, if
    it was sampled): the larger of the process tree's sampled PSS growth and the
    child's own exact peak RSS growth. `rewrite_module` (module name, file) asks the child to
    import that test module with pytest's assertion rewriting, so failed asserts explain
    themselves. Past the memory budget the tree is killed and `OomKilledError` raised.
    """
    __tracebackhide__ = True  # pytest shows the test's frames, not ours
    try:
        payload = pickle.dumps((fn, args, kwargs))
    except Exception as exc:
        raise IsolationError(
            f"run_isolated: cannot send {_describe_callable(fn)} and its arguments to the child "
            f"({type(exc).__name__}: {exc}); isolated functions must be importable module-level "
            "functions and their arguments picklable"
        ) from exc
    ctx = _context()
    stack_path = None
    if timeout is not None:  # where a hung child writes its threads' stacks (hangdump)
        handle, stack_path = tempfile.mkstemp(prefix="pytest-edge-stacks-", suffix=".txt")
        os.close(handle)
    try:
        return _run_child(ctx, payload, fn, limits, timeout, peak_sink, rewrite_module, stack_path)
    finally:
        if stack_path is not None:
            Path(stack_path).unlink(missing_ok=True)


def _run_child(
    ctx: Any,
    payload: bytes,
    fn: Callable[..., Any],
    limits: IsolationLimits,
    timeout: float | None,
    peak_sink: Callable[[int], None] | None,
    rewrite_module: tuple[str, str] | None,
    stack_path: str | None,
) -> IsolatedOutcome:
    __tracebackhide__ = True
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    lifeline_r, lifeline_w = ctx.Pipe(duplex=False)  # closes when this process ends
    watching = limits.watchdog and oom.supported()
    process = ctx.Process(
        target=_child_main,
        args=(child_conn, payload, limits, rewrite_module, lifeline_r, watching, stack_path),
        name="pytest-edge-isolated",
    )
    process.start()
    child_conn.close()
    lifeline_r.close()
    watch = None
    if watching:
        device = limits.profile.name if limits.profile is not None else "this host"
        label = f"isolated child running {_describe_callable(fn)}"
        watch = oom.TreeWatch(process.pid, limits.memory_budget_bytes, device, label)
    timed_out = False
    message: tuple[Any, ...] | None = None
    verdict = None
    stacks = ""
    try:
        message, timed_out, verdict = _wait(process, parent_conn, limits, timeout, watch)
        if timed_out and stack_path is not None and process.pid is not None:
            stacks = hangdump.collect(process.pid, stack_path, alive=process.is_alive)
    finally:
        with contextlib.suppress(ProcessLookupError, OSError):
            if process.pid is not None:
                os.kill(process.pid, signal.SIGCONT)
        if process.is_alive() and message is None:  # timed out or interrupted: the tree
            oom.kill_tree(process.pid)
        elif process.is_alive():  # it answered and is exiting; what it started is its own
            process.kill()
        process.join()
        parent_conn.close()
        lifeline_w.close()
    if verdict is not None:
        if peak_sink is not None:
            peak_sink(verdict.used_bytes)
        raise verdict
    if message is None and peak_sink is not None and watch is not None and watch.samples:
        peak_sink(watch.peak_pss_growth)  # sampled until the child died or was killed
    if message is not None and watch is not None:
        message = _with_tree_peak(message, watch.peak_pss_growth)
    if message is None:
        how = (
            f"no answer within the {timeout} s timeout (killed by pytest-edge)"
            if timed_out
            else _how_it_died(process.exitcode)
        )
        if timed_out and not stacks:
            stacks = "(the child wrote no stacks: it ended, or replaced the SIGUSR1 handler)"
        raise IsolatedChildDied(how, limits.describe(), stacks)
    if peak_sink is not None and isinstance(message[-1], int):
        peak_sink(message[-1])
    elif peak_sink is not None and message[0] == "ok":
        peak_sink(message[2])
    outcome = _unpack(message)
    outcome.watch = watch
    return outcome


def _with_tree_peak(message: tuple[Any, ...], tree_peak: int) -> tuple[Any, ...]:
    """The child's message with its peak raised to the tree's sampled PSS peak."""
    if message[0] == "ok":
        return (message[0], message[1], max(message[2], tree_peak), message[3])
    if isinstance(message[-1], int):
        return (*message[:-1], max(message[-1], tree_peak))
    return message


_Waited = tuple[tuple[Any, ...] | None, bool, "oom.OomKilledError | None"]


def _wait(
    process: Any,
    conn: Connection,
    limits: IsolationLimits,
    timeout: float | None,
    watch: oom.TreeWatch | None = None,
) -> _Waited:
    """(the child's message or None, whether the timeout expired, the OOM verdict or None).

    Between polls of the pipe the process tree is sampled every `watch.interval` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    duty = limits.duty_cycle
    pid = process.pid
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return None, True, None
        run_for = _DUTY_PERIOD_S * duty if duty else _DUTY_PERIOD_S
        if watch is not None and not duty:
            run_for = watch.interval
        if conn.poll(run_for):
            try:
                message: tuple[Any, ...] = conn.recv()
            except EOFError:
                return None, False, None
            if message[0] == "started":
                if watch is not None:
                    watch.begin(message[1], message[2])
                continue
            return message, False, None
        if watch is not None:
            verdict = watch.tick()
            if verdict is not None:
                return None, False, verdict
        if not process.is_alive():
            try:
                return (conn.recv() if conn.poll(0) else None), False, None
            except EOFError:
                return None, False, None
        if duty:
            try:
                os.kill(pid, signal.SIGSTOP)
                time.sleep(_DUTY_PERIOD_S * (1 - duty))
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # it ended in between; the next round sees that
                continue


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is None:
        return "it did not exit"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = ""
        if -exitcode == signal.SIGKILL:
            hint = " (the kernel OOM killer or another process killed it)"
        elif -exitcode == signal.SIGSEGV:
            hint = " (a crash in native code, possibly an allocation failure not checked)"
        return f"killed by signal {name} ({-exitcode}){hint}"
    return f"exited with status {exitcode} before reporting a result"


def _unpack(message: tuple[Any, ...]) -> IsolatedOutcome:
    __tracebackhide__ = True
    kind = message[0]
    if kind == "ok":
        _, value_bytes, peak, notes = message
        return IsolatedOutcome(pickle.loads(value_bytes), peak, notes)  # noqa: S301 (own child)
    if kind == "error":
        _, exc_bytes, type_name, text, memory_error, child_tb, _peak = message
        try:
            exc = pickle.loads(exc_bytes)  # noqa: S301 (our own child's exception)
        except Exception:
            _raise_remote(type_name, text, memory_error, child_tb)
        if isinstance(exc, BaseException):
            exc.add_note(f"raised in the isolated child; child traceback:\n{child_tb}")
            raise exc
    if kind == "remote-error":
        _, type_name, text, memory_error, child_tb, _peak = message
        _raise_remote(type_name, text, memory_error, child_tb)
    if kind == "result-unpicklable":
        _, type_name, text, _peak = message
        raise IsolationError(
            f"run_isolated: the result ({type_name}) cannot be pickled back to the test: {text}"
        )
    raise IsolationError(f"run_isolated: unexpected message from the child: {kind!r}")


def _raise_remote(type_name: str, text: str, memory_error: bool, child_tb: str) -> NoReturn:
    __tracebackhide__ = True
    if memory_error:
        # The budget's verdict must stay a MemoryError even when its subclass cannot travel.
        error = MemoryError(f"{type_name}: {text}")
        error.add_note(f"raised in the isolated child; child traceback:\n{child_tb}")
        raise error
    raise RemoteError(type_name, text, child_tb)


# -- the child side --------------------------------------------------------------------------


def _cap_arenas() -> None:
    os.environ["MALLOC_ARENA_MAX"] = "2"
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, 2)


def _set_memory_limit(budget: int) -> tuple[int, tuple[int, int]] | None:
    import resource

    name = memory_rlimit_name()
    if name is None:
        return None
    which = getattr(resource, name)
    current = probe.status_kb("VmData" if name == "RLIMIT_DATA" else "VmSize")
    if current is None:
        return None
    old = resource.getrlimit(which)
    soft = current + budget
    if old[1] != resource.RLIM_INFINITY:
        soft = min(soft, old[1])
    resource.setrlimit(which, (soft, old[1]))
    return which, old


def _import_rewritten(name: str, path: str) -> None:
    """Import a test module with pytest's assertion rewriting (best effort).

    Uses pytest's own `rewrite_asserts` (not a public API); when it is unavailable the plain
    import done by unpickling takes over and asserts fail without pytest's explanation.
    """
    import ast
    import importlib.util

    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:
        return
    source = Path(path).read_bytes()
    tree = ast.parse(source, filename=path)
    rewrite_asserts(tree, source, path, None)
    code = compile(tree, path, "exec", dont_inherit=True)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 (the test module pytest already imported)
    except BaseException:
        del sys.modules[name]
        raise


class _Lifeline:
    """The child's tie to the test process: its tree dies when the test process does.

    A daemon thread blocks on a pipe whose only writer is the test process; end of file
    while the child has not reported means pytest is gone (killed by any signal), so the
    child kills its descendants, then itself. On Linux the parent-death signal (SIGKILL)
    and the child-subreaper flag (orphaned descendants stay in this tree) are set as well.
    """

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.reported = False
        lifetime.prctl(lifetime.PR_SET_PDEATHSIG, signal.SIGKILL)
        lifetime.prctl(lifetime.PR_SET_CHILD_SUBREAPER, 1)
        import threading

        threading.Thread(target=self._watch, name="pytest-edge-lifeline", daemon=True).start()

    def _watch(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                self.pipe.recv_bytes()
        if self.reported:
            return
        me = os.getpid()
        for pid in reversed(oom.tree(me)[1:]):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.kill(me, signal.SIGKILL)


def _child_main(
    conn: Connection,
    payload: bytes,
    limits: IsolationLimits,
    rewrite_module: tuple[str, str] | None = None,
    lifeline_pipe: Connection | None = None,
    watched: bool = False,
    stack_path: str | None = None,
) -> None:
    _cap_arenas()  # before the lifeline's thread, which would take an arena of its own
    if stack_path is not None:
        hangdump.arm(stack_path)
    lifeline = _Lifeline(lifeline_pipe) if lifeline_pipe is not None else None
    notes: list[str] = []
    applied = limits.applied_cpus()
    if applied is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, applied)
    if rewrite_module is not None:
        with contextlib.suppress(Exception):
            _import_rewritten(*rewrite_module)
    fn, args, kwargs = pickle.loads(payload)  # noqa: S301 (sent by our own parent)
    view_cm: Any = contextlib.nullcontext()
    if limits.profile is not None:
        view_cm = _child_view(limits.profile)
    with view_cm:
        tracker = probe.PeakTracker()
        tracker.start()
        if watched:
            me = os.getpid()
            conn.send(("started", oom.pss_bytes(me), oom.rss_bytes(me)))
        restore = None
        if limits.memory_budget_bytes is not None:
            restore = _set_memory_limit(limits.memory_budget_bytes)
            if restore is None:
                notes.append("memory budget not enforced: no usable rlimit on this platform")
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:
            _lift(restore)
            child_tb = traceback.format_exc()
            peak = tracker.peak_growth_bytes()
            try:
                message: tuple[Any, ...] = (
                    "error",
                    pickle.dumps(exc),
                    type(exc).__qualname__,
                    str(exc),
                    isinstance(exc, MemoryError),
                    child_tb,
                    peak,
                )
            except Exception:
                message = (
                    "remote-error",
                    type(exc).__qualname__,
                    str(exc),
                    isinstance(exc, MemoryError),
                    child_tb,
                    peak,
                )
            del exc
            _report(conn, lifeline, message)
            return
        _lift(restore)
        peak = tracker.peak_growth_bytes()
        try:
            message = ("ok", pickle.dumps(value), peak, notes)
        except Exception as exc:
            message = ("result-unpicklable", type(value).__qualname__, str(exc), peak)
        _report(conn, lifeline, message)


def _report(conn: Connection, lifeline: _Lifeline | None, message: tuple[Any, ...]) -> None:
    if lifeline is not None:
        lifeline.reported = True
    conn.send(message)
    conn.close()


def _lift(restore: tuple[int, tuple[int, int]] | None) -> None:
    if restore is None:
        return
    import resource

    which, old = restore
    resource.setrlimit(which, old)


@contextlib.contextmanager
def _child_view(profile: DeviceProfile) -> Any:
    from pytest_edge.device.simulated import SimulatedMachine
    from pytest_edge.device.view import DeviceView

    machine = SimulatedMachine(profile)
    with use_machine(machine), DeviceView(machine):
        yield machine
