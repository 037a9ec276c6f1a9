"""The simulated OOM killer: the memory of an isolated child's whole process tree, held to the
device's usable memory the way the kernel's OOM accounting sees it.

An rlimit stops ``malloc`` but not ``mmap.mmap(-1, n)`` (a shared mapping), a mapped file
under ``/dev/shm`` or a subprocess. A real device's kernel counts all of them, so the parent
of an isolated child samples the child and all its descendants:

- every tick it reads each process's resident size from ``/proc/PID/statm`` (constant cost
  per process) and finds descendants through ``/proc/PID/task/TID/children``; the next tick
  comes before the tree could use half the remaining headroom growing at 4 GB/s (or the
  fastest growth seen): every 50 ms far from the budget, down to every 2 ms close to it;
- proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``: anonymous, shared and
  file-backed pages, a shared page split between the processes that map it) costs about
  9 µs per resident MB and holds the child's memory-map lock while it walks, so it is read
  only when the resident total could matter: past the budget (PSS <= RSS, so below it there
  is nothing to decide), or for the peak at a new high (8 MB or 10% above the last reading),
  at most 0.5% of the time (between readings the peak follows the resident total less the
  shared part the last reading found);
- past the budget, the tree is stopped (SIGSTOP, so nothing forks in between) and killed
  (SIGKILL), as the kernel's OOM killer does, and `OomKilledError` names the top consumers.

Growth is counted over the child's own size when it started (the interpreter and pytest-edge
are not the workload), the same basis as the rlimit and the reported peak.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from pytest_edge.errors import EdgeError

MIB = 1024 * 1024
MAX_TICK_S = 0.050  # sampling interval far from the budget (and with no budget)
MIN_TICK_S = 0.002  # sampling interval close to it
# The fastest the tree is assumed to grow (page faults of a few processes at once); the next
# sample comes before growth at this rate, or the fastest seen, could use half the headroom.
_ASSUMED_RATE = 4 * 1024 * MIB  # bytes per second
_PEAK_PSS_DUTY = 0.005  # most of the time spent reading smaps_rollup for the peak alone
_CHECK_PSS_DUTY = 0.25  # ... while the resident total is past the budget but PSS was not
_NEW_HIGH = 8 * MIB  # resident growth since the last PSS reading that makes a new reading
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TOP = 3


class OomKilledError(EdgeError, MemoryError):
    """The isolated child's process tree passed the device's usable memory and was killed."""

    def __init__(
        self, used_bytes: int, budget_bytes: int, device: str, top: list[Consumer]
    ) -> None:
        self.used_bytes = used_bytes
        self.budget_bytes = budget_bytes
        self.device = device
        self.top = top
        consumers = ", ".join(f"pid {c.pid} {c.command!r} {c.pss_bytes / MIB:.0f} MB" for c in top)
        super().__init__(
            f"killed by the simulated OOM killer at {used_bytes / MIB:.0f} MB of "
            f"{budget_bytes / MIB:.0f} MB on {device} (the isolated child's process tree, "
            f"proportional set size incl. shared and file-backed mappings, growth over its "
            f"start); top consumers: {consumers or 'none left to read'}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (OomKilledError, (self.used_bytes, self.budget_bytes, self.device, self.top))


@dataclass(frozen=True)
class Consumer:
    """One process of the tree at the verdict: its pid, command and proportional set size."""

    pid: int
    command: str
    pss_bytes: int


def _read(path: str, size: int = 65536) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all its threads'), [] when it is gone or this is not Linux."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in _read(f"/proc/{pid}/task/{tid}/children").split())
    return found


def tree(root: int) -> list[int]:
    """`root` and all its descendants, parents before children."""
    order = [root]
    index = 0
    while index < len(order):
        order.extend(children(order[index]))
        index += 1
    return order


def rss_bytes(pid: int) -> int:
    """Resident size of `pid` (anonymous, file-backed and shared pages), 0 when it is gone."""
    try:
        return int(_read(f"/proc/{pid}/statm", 256).split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size of `pid` from ``smaps_rollup``, 0 when it is gone."""
    try:
        text = _read(f"/proc/{pid}/smaps_rollup", 4096)
    except OSError:
        return 0
    start = text.find(b"\nPss:")
    return 0 if start < 0 else int(text[start:].split(None, 2)[1]) * 1024


def command(pid: int) -> str:
    try:
        raw = _read(f"/proc/{pid}/cmdline", 4096).rstrip(b"\0").replace(b"\0", b" ")
    except OSError:
        return "?"
    text = raw.decode("utf-8", "replace")
    return text[:77] + "..." if len(text) > 80 else text


def supported() -> bool:
    """True where a process tree's memory can be read (Linux with ``smaps_rollup``)."""
    return os.path.exists(f"/proc/{os.getpid()}/smaps_rollup") and bool(
        os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    )


def kill_tree(root: int) -> None:
    """Stop the tree (so nothing forks meanwhile), then SIGKILL every process in it."""
    seen: list[int] = []
    for _ in range(3):  # a process forked before its parent stopped shows up next round
        new = [pid for pid in tree(root) if pid not in seen]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        seen.extend(new)
    for pid in reversed(seen):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class TreeWatch:
    """Samples a child's process tree; `tick` returns the verdict once it passes `budget`.

    `budget` None only measures (the peak). The baselines are the child's PSS and RSS when
    it started the workload (`begin`); before that nothing is counted.
    """

    root: int
    budget: int | None
    device: str
    label: str = "isolated child"  # the root's name in the verdict (its cmdline is the server's)
    baseline_pss: int | None = None
    baseline_rss: int = 0
    peak_pss_growth: int = 0
    samples: int = 0
    max_overshoot: int = 0  # PSS growth past the budget at the verdict
    latency_s: float | None = None  # estimated time from crossing the budget to the kill
    _last_rss_growth: int = 0
    _last_time: float = 0.0
    _shared: int = 0  # RSS growth minus PSS growth at the last PSS reading
    _fastest: float = 0.0  # fastest growth seen between two ticks, bytes per second
    _crossed_at: float | None = None
    _pss_mark: int = -1  # RSS growth at the last PSS reading
    _pss_next: float = 0.0  # earliest time of the next PSS reading for a new high
    _check_next: float = 0.0  # ... while RSS is past the budget and PSS was not
    _spent: float = 0.0

    def begin(self, pss: int, rss: int) -> None:
        self.baseline_pss = pss
        self.baseline_rss = rss

    @property
    def interval(self) -> float:
        """Seconds to the next tick: shorter as the tree nears its budget."""
        if self.budget is None:
            return MAX_TICK_S
        headroom = self.budget - (self._last_rss_growth - self._shared)
        wait = headroom / (2 * max(_ASSUMED_RATE, self._fastest))
        return min(MAX_TICK_S, max(MIN_TICK_S, wait))

    def tick(self) -> OomKilledError | None:
        """Sample the tree once; the verdict (the tree already killed) or None."""
        if self.baseline_pss is None:
            return None
        started = time.perf_counter()
        try:
            return self._tick(started, self.baseline_pss)
        finally:
            self._spent += time.perf_counter() - started

    def _tick(self, now: float, baseline_pss: int) -> OomKilledError | None:
        self.samples += 1
        pids = tree(self.root)
        rss_growth = sum(rss_bytes(pid) for pid in pids) - self.baseline_rss
        over = self.budget is not None and rss_growth > self.budget
        if over and self._crossed_at is None:
            self._crossed_at = self._crossing(now, rss_growth)
        if self._last_time:
            rate = (rss_growth - self._last_rss_growth) / max(now - self._last_time, 1e-6)
            self._fastest = max(self._fastest, rate)
        self._last_rss_growth, self._last_time = rss_growth, now
        # Between readings PSS growth is estimated as the resident growth less the shared
        # part the last reading found; a page shared earlier and written since makes PSS grow
        # under an unchanged RSS, so past the budget PSS is read again at least every 4 costs.
        estimate = rss_growth - self._shared
        likely = self.budget is not None and estimate > self.budget
        recheck = over and now >= self._check_next
        new_high = rss_growth > self._pss_mark + max(self._pss_mark // 10, _NEW_HIGH)
        if not likely and not recheck and (not new_high or now < self._pss_next):
            self.peak_pss_growth = max(self.peak_pss_growth, estimate)
            return None
        self._pss_mark = rss_growth
        pss = {pid: pss_bytes(pid) for pid in pids}
        cost = time.perf_counter() - now
        self._pss_next = now + cost / _PEAK_PSS_DUTY
        self._check_next = now + cost / _CHECK_PSS_DUTY
        growth = sum(pss.values()) - baseline_pss
        self._shared = max(0, rss_growth - growth)
        self.peak_pss_growth = max(self.peak_pss_growth, growth)
        if self.budget is None or growth <= self.budget:
            return None
        top = sorted(pss.items(), key=lambda item: item[1], reverse=True)[:_TOP]
        consumers = [
            Consumer(pid, self.label if pid == self.root else command(pid), size)
            for pid, size in top
            if size > 0
        ]
        kill_tree(self.root)
        self.max_overshoot = growth - self.budget
        if self._crossed_at is not None:
            self.latency_s = time.perf_counter() - self._crossed_at
        return OomKilledError(growth, self.budget, self.device, consumers)

    def _crossing(self, now: float, rss_growth: int) -> float:
        """When the resident total passed the budget, interpolated between two samples."""
        assert self.budget is not None
        rise = rss_growth - self._last_rss_growth
        if self._last_time == 0.0 or rise <= 0:
            return now
        return now - (now - self._last_time) * (rss_growth - self.budget) / rise

    @property
    def seconds_spent(self) -> float:
        """Time the parent spent sampling (the watchdog's own cost)."""
        return self._spent
