"""Cheap readings of this process's own memory: resident size and its peak since a reset.

Linux keeps the peak resident size in ``VmHWM``; writing ``5`` to ``/proc/self/clear_refs``
(Linux >= 4.0) resets it, so a test's peak can be measured without sampling. Elsewhere the
probe falls back to sampling RSS at the start and end (labelled ``sampled``).
"""

from __future__ import annotations

import os

import psutil

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROCESS: psutil.Process | None = None


def _read(path: str) -> bytes:
    # os.open/os.read: no buffered file object, about half the cost of open() per call.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 16384)
    finally:
        os.close(fd)


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm`` when available."""
    try:
        return int(_read("/proc/self/statm").split()[1]) * _PAGE
    except OSError:
        global _PROCESS
        if _PROCESS is None:
            _PROCESS = psutil.Process()
        return int(_PROCESS.memory_info().rss)


def status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmData``, ...) in bytes, or None."""
    try:
        text = _read("/proc/self/status")
    except OSError:
        return None
    start = text.find(b"\n" + field.encode() + b":")
    if start < 0:
        return None
    return int(text[start:].split(None, 2)[1]) * 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark; False where that is not possible."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class PeakTracker:
    """Peak resident growth of this process between `start()` and `peak_growth_bytes()`."""

    def __init__(self) -> None:
        self.baseline = 0
        self.exact = False

    def start(self) -> None:
        self.exact = reset_peak()
        self.baseline = rss_bytes()

    def peak_growth_bytes(self) -> int:
        peak = status_kb("VmHWM") if self.exact else None
        if peak is None:
            peak = rss_bytes()
        return max(0, peak - self.baseline)

    @property
    def method(self) -> str:
        return "peak RSS (VmHWM)" if self.exact else "sampled RSS"
